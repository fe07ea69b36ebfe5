"""csm-pam-login without a daemon: root and the exempt list get in, anyone else is refused
in the account phase, and a session is never refused."""

import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT


class PamLoginCommandTests(SynchronousTestCase):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.exempt = os.path.join(self.dir, "whitelist")
        with open(self.exempt, "w") as f:
            f.write("# admins\ndiagadmin\n")

    def run_as_pam(self, user, phase):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": PROJECT, "PAM_TYPE": phase}
        if user is not None:
            env["PAM_USER"] = user
        proc = subprocess.run([sys.executable, "-m", "csm.node.pam", "--socket", os.path.join(self.dir, "none.sock"),
                               "--exempt", self.exempt], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, timeout=60)
        return proc.returncode, proc.stdout

    def test_no_daemon(self):
        self.assertEqual(self.run_as_pam("root", "account"), (0, ""))
        self.assertEqual(self.run_as_pam("diagadmin", "account"), (0, ""))
        code, out = self.run_as_pam("alice", "account")
        self.assertEqual(code, 1)
        self.assertEqual(out.count("\n"), 1)
        self.assertIn("csm-pam-login: alice refused: Can not connect to daemon", out)
        self.assertEqual(self.run_as_pam("alice", "open_session"), (0, ""))
        code, out = self.run_as_pam(None, "account")
        self.assertEqual((code, out), (1, "csm-pam-login: no PAM_USER (run it from pam_exec)\n"))
