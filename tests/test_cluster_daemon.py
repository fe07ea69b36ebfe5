"""``csm.cluster``: what a test is told when a daemon exits at start; the ports it picks."""

import os
import shutil
import subprocess
import tempfile
from types import SimpleNamespace

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import Daemon, free_port


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


class FreePortTests(SynchronousTestCase):
    def test_below_the_ephemeral_range_and_never_twice(self):
        """No outgoing connection can take a port before its daemon listens on it, and two
        daemons of a cluster never get the same one."""
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
        ports = [free_port() for _ in range(100)]
        self.assertEqual(len(set(ports)), 100)
        self.assertLess(max(ports), first)
