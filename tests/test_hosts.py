"""csm.hosts: namespaces made, reached, cut, and removed however their maker ends."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm import hosts
from csm.cluster import PROJECT

#: Makes a network of two hosts, says so, and waits to be ended.
MAKER = """
import sys, time
from csm.hosts import Network
network = Network().start()
for name in ("alpha", "beta"):
    network.add(name)
print(network.prefix, network._state, flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    sys.exit(1)
"""
#: Connects to beta:7000 from the host it runs in; prints its host name and what happened.
PROBE = ("import socket, sys\n"
         "try:\n"
         "    socket.create_connection(('beta', 7000), timeout=5).close(); print(socket.gethostname(), 'ok')\n"
         "except OSError as exc:\n"
         "    print(socket.gethostname(), exc.errno)\n")


def ours(prefix):
    """Namespaces and /etc/netns entries whose name starts with ``prefix``."""
    found = []
    for directory in (hosts.NETNS_DIR, hosts.ETC_NETNS):
        if os.path.isdir(directory):
            found += [name for name in os.listdir(directory) if name.startswith(prefix)]
    return found


class HostsTests(SynchronousTestCase):
    def setUp(self):
        reason = hosts.unavailable()
        if reason:
            raise SkipTest(reason)

    def maker(self):
        proc = subprocess.Popen([sys.executable, "-c", MAKER], stdout=subprocess.PIPE, text=True,
                                stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=PROJECT))
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        prefix, self.state = proc.stdout.readline().split()
        self.assertTrue(prefix.startswith(hosts.PREFIX), prefix)
        self.assertEqual(len(ours(prefix)), 5)  # bridge, alpha, beta; two hosts files
        return proc, prefix

    def test_names_addresses_and_a_cut_link(self):
        network = hosts.Network().start()
        self.addCleanup(network.stop)
        alpha, beta, gamma = (network.add(name) for name in ("alpha", "beta", "gamma"))
        listener = subprocess.Popen(beta.command([sys.executable, "-c", "import socket, time\n"
                                                  "s = socket.create_server(('beta', 7000)); print(1, flush=True)\n"
                                                  "time.sleep(60)"]), stdout=subprocess.PIPE, text=True)
        self.addCleanup(lambda: (listener.kill(), listener.wait()))
        listener.stdout.readline()

        def probe(host):
            return host.run([sys.executable, "-c", PROBE], capture_output=True, text=True).stdout.split()

        self.assertEqual(probe(alpha), ["alpha", "ok"])
        network.cut("alpha", "beta")
        self.assertEqual(probe(alpha), ["alpha", "113"])  # EHOSTUNREACH
        self.assertEqual(probe(gamma), ["gamma", "ok"])  # only that link
        network.heal("alpha", "beta")
        self.assertEqual(probe(alpha), ["alpha", "ok"])
        # the host's own network never saw the bridge's addresses
        out = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
        self.assertNotIn(beta.address + "/", out)
        network.stop()
        self.assertEqual(ours(network.prefix), [])

    def test_sigterm_and_ctrl_c_remove_everything(self):
        for signum in (signal.SIGTERM, signal.SIGINT):
            proc, prefix = self.maker()
            proc.send_signal(signum)
            proc.wait(30)
            self.assertEqual(ours(prefix), [], signum)

    def test_stop_gives_the_signal_handlers_back(self):
        code = ("import signal\n"
                "from csm.hosts import Network\n"
                "signal.signal(signal.SIGHUP, lambda signum, frame: None)  # the program's own\n"
                "signals = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)\n"
                "before = [signal.getsignal(signum) for signum in signals]\n"
                "network = Network().start()\n"
                "during = [signal.getsignal(signum) for signum in signals]\n"
                "network.stop()\n"
                "print([a is not b for a, b in zip(before, during)],\n"
                "      [signal.getsignal(signum) for signum in signals] == before)\n")
        proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=PROJECT))
        self.assertEqual(proc.stdout, "[True, True, False] True\n")

    def test_a_killed_runs_leftovers_go_at_the_next_start(self):
        proc, prefix = self.maker()
        sleeper = subprocess.Popen(["ip", "netns", "exec", prefix + "alpha", "sh", "-c", "echo; exec sleep 60"],
                                   stdout=subprocess.PIPE)
        sleeper.stdout.readline()  # it runs in alpha
        proc.kill()
        proc.wait()
        self.assertEqual(len(ours(prefix)), 5)  # SIGKILL: nothing could clean up
        self.assertTrue(os.path.isdir(self.state))
        live = tempfile.mkdtemp(prefix="%s%d-" % (hosts.STATE_PREFIX, os.getpid()))  # a live run's
        self.addCleanup(shutil.rmtree, live, True)
        gone = tempfile.mkdtemp(prefix="%s%d-" % (hosts.STATE_PREFIX, proc.pid))  # one whose namespaces went
        self.addCleanup(shutil.rmtree, gone, True)
        network = hosts.Network().start()
        self.addCleanup(network.stop)
        self.assertEqual(ours(prefix), [])
        # the state folders of dead runs too, found by their namespaces' hosts files or by name
        self.assertEqual([os.path.isdir(folder) for folder in (self.state, gone, live)], [False, False, True])
        self.assertEqual(sleeper.wait(10), -signal.SIGKILL)  # what ran in them is gone too

    def test_not_root_says_so_in_one_line(self):
        from csm.cluster import OTHER_USER_PYTHON, other_user_pythonpath
        proc = subprocess.run(["runuser", "-u", "nobody", "--", "env", "PYTHONPATH=" + other_user_pythonpath(),
                               OTHER_USER_PYTHON, "-c", "from csm.demo import start_hosts; print(start_hosts())"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/")
        self.assertEqual(proc.stdout, "csm-demo: network namespaces need root; running every daemon on loopback "
                                      "instead\nNone\n")
