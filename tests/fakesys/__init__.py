"""The fake node of the ``tests/test_node_*`` suites.

``root/`` is a 2-socket x86 node's /proc, /sys and /etc (symlinks as the kernel makes
them); ``commands/`` holds what ``dmidecode -t 17``, ``dmidecode -t 4`` and
``nvme smart-log`` print on it.
"""

import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "root")
COMMANDS = {
    ("dmidecode", "-t", "17"): "dmidecode-t17.txt",
    ("dmidecode", "-t", "4"): "dmidecode-t4.txt",
    ("nvme", "smart-log", "/dev/nvme0n1"): "nvme-smart-log.json",
}


class FakeRunner:
    """A command runner answering from ``commands/``; records every argv it is given."""

    def __init__(self, outputs=None):
        self.outputs = dict(outputs or {})
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        key = tuple(argv[:3])
        if key in self.outputs:
            return self.outputs[key]
        name = COMMANDS.get(key)
        if name is None:
            return None
        with open(os.path.join(HERE, "commands", name), "rb") as handle:
            return handle.read()


def copy_root(testcase):
    """A private copy of the fake root that a test may rewrite; its path."""
    target = os.path.abspath(testcase.mktemp())
    shutil.copytree(ROOT, target, symlinks=True)
    return target


def write(root, rel, content):
    """Replace (or create) the file ``rel`` under ``root``."""
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(content, bytes) else "w") as handle:
        handle.write(content)


def remove(root, rel):
    """Delete a file or a whole directory under ``root``."""
    path = os.path.join(root, rel)
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.remove(path)


def capture_log(testcase, owner):
    """Route ``owner.log`` (a module or an object) to a list for the test; the list."""
    from twisted.logger import Logger
    events = []
    testcase.patch(owner, "log", Logger(namespace="csmd", observer=events.append))
    return events
