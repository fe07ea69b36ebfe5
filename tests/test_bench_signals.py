"""A benchmark told to stop (SIGTERM or SIGINT) still runs its ``finally``: the cluster it started stops."""

import os
import signal
import subprocess
import sys

from twisted.trial.unittest import TestCase

from csm.cluster import PROJECT

SCRIPT = """
import time
from bench.results import stop_on_signals
stop_on_signals()
try:
    print("started", flush=True)
    time.sleep(60)
finally:
    print("cluster stopped", flush=True)
"""


class StopOnSignalsTests(TestCase):
    def interrupt(self, signum):
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], cwd=PROJECT, stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True, env=dict(os.environ, PYTHONPATH=PROJECT))
        self.assertEqual(proc.stdout.readline(), "started\n")
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=30)
        self.assertEqual(out, "cluster stopped\n")
        self.assertEqual(proc.returncode, 128 + signum)

    def test_sigterm(self):
        self.interrupt(signal.SIGTERM)

    def test_sigint(self):
        self.interrupt(signal.SIGINT)
