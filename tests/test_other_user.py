"""Commands run as another user by the system tests work from a clone only root can read."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT

SCRIPT = """
import json, sys, tempfile
from csm.cluster import LocalCluster
cluster = LocalCluster(tempfile.mkdtemp(), computes=0, aggregators=0, utilities=0, tls=False, db=False)
print(json.dumps(cluster.cli("master", "csm_node_attributes_query", "-n", "c01", user="nobody")))
"""


class OtherUserTests(SynchronousTestCase):
    def test_command_as_nobody_from_a_private_clone(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a command as another user")
        private = tempfile.mkdtemp()  # 0700, as ``mktemp -d``
        self.addCleanup(shutil.rmtree, private, True)
        clone = os.path.join(private, "clone")
        for name in ("csm", "conf"):
            shutil.copytree(os.path.join(PROJECT, name), os.path.join(clone, name),
                            ignore=shutil.ignore_patterns("__pycache__"))
        mode = os.stat(os.path.join(clone, "csm", "cli", "main.py")).st_mode
        proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=clone, env=dict(os.environ, PYTHONPATH=clone),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                              timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rc, out = json.loads(proc.stdout)
        # the command ran (no daemon here), rather than failing to import csm
        self.assertEqual(rc, 18, out)
        self.assertIn("Can not connect to daemon", out)
        self.assertEqual(os.stat(private).st_mode & 0o777, 0o700)  # no permission was widened
        self.assertEqual(os.stat(os.path.join(clone, "csm", "cli", "main.py")).st_mode, mode)
