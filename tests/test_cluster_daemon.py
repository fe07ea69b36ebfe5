"""``csm.cluster.Daemon``: what a test is told when a daemon exits at start."""

import os
import shutil
import subprocess
import tempfile
from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import Daemon


class WaitSocketTests(SynchronousTestCase):
    def test_a_daemon_that_exits_at_start_is_reported_with_its_output(self):
        """The error quotes the end of the daemon's output: the test's clean-up removes the
        folder its message points to (a master that exited 1 in test_system_patroni left nothing)."""
        run_dir = tempfile.mkdtemp(prefix="csm-daemon-")
        self.addCleanup(shutil.rmtree, run_dir, True)
        config = {"csm": {"net": {"local_client_listen": {"socket": os.path.join(run_dir, "master.sock")}}}}
        daemon = Daemon(SimpleNamespace(run_dir=run_dir), "master", "master", config)
        with open(daemon.out, "w") as out:
            out.write("starting\nConfigError: csm.db.host: no such host\n")
        with open(daemon.out + ".stderr", "wb") as err:
            daemon.process = subprocess.Popen(["sh", "-c", "echo twistd stopped >&2; exit 1"], stderr=err)
        daemon.process.wait()
        error = self.assertRaises(RuntimeError, daemon.wait_socket, 5.0)
        self.assertIn("master exited with 1", str(error))
        self.assertIn("ConfigError: csm.db.host: no such host\ntwistd stopped", str(error))
