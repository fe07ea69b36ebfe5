"""Privileged inventory tools (``dmidecode``, ``nvme``) run with a time limit.

A runner is any callable ``run(argv) -> bytes | None``; tests pass one that returns
fixture text.  The default, ``CommandRunner``, gives None (and never spawns) when the
process is not root or the tool is not installed.
"""

import os
import shutil
import subprocess

from twisted.logger import Logger

from csm.node.sysfs import decode

log = Logger(namespace="csmd")


def spawn(argv, timeout):
    """Run ``argv``; its stdout when it exits 0 within ``timeout`` seconds, else None."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        log.info("inventory: {argv} failed: {error}", argv=argv[0], error=error)
        return None
    return proc.stdout if proc.returncode == 0 else None


class CommandRunner:
    """``run(argv) -> bytes | None`` for tools that need root; blocking (use a thread)."""

    def __init__(self, timeout=10.0, which=shutil.which, geteuid=os.geteuid, spawn=spawn):
        self.timeout = timeout
        self.which = which
        self.geteuid = geteuid
        self.spawn = spawn

    def __call__(self, argv):
        if self.geteuid() != 0:
            log.debug("inventory: not root, {tool} skipped", tool=argv[0])
            return None
        path = self.which(argv[0])
        if path is None:
            log.debug("inventory: {tool} not installed", tool=argv[0])
            return None
        return self.spawn([path] + list(argv[1:]), self.timeout)


def dmidecode(run, dmi_type):
    """The records of one SMBIOS type as dicts of their ``Key: value`` lines."""
    text = decode(run(["dmidecode", "-t", str(dmi_type)]))
    records = []
    current = None
    for line in (text or "").splitlines():
        if line.startswith("Handle "):
            current = {} if ("DMI type %d," % dmi_type) in line else None
            if current is not None:
                records.append(current)
        elif current is not None and line.startswith("\t") and not line.startswith("\t\t"):
            key, found, value = line.strip().partition(":")
            if found:
                current[key.strip()] = value.strip()
    return records
