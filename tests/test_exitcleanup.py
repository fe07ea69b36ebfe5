"""A test process ended by SIGTERM, SIGINT or SIGHUP leaves no process and no folder behind
(csm.exitcleanup): its fixtures are started in a child process, which is then signalled."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid

from twisted.trial.unittest import SynchronousTestCase

from csm import exitcleanup
from csm.cluster import PROJECT

MARK = "CSM_EXITCLEANUP_TEST"

#: Starts the fixtures named in argv[1:], prints what they made as one JSON line, then waits.
CHILD = textwrap.dedent("""
    import json, sys, tempfile, time
    import tests  # the process's temporary folder
    made = {"folders": [tempfile.gettempdir()]}
    if "reactor" in sys.argv:  # as in a trial worker: the reactor has run and taken SIGTERM
        from twisted.internet import reactor
        reactor.callWhenRunning(reactor.stop)
        reactor.run()
    if "dbfixture" in sys.argv:
        from tests import dbfixture
        made["folders"].append(dbfixture.server().directory)
    if "cluster" in sys.argv:
        from csm.cluster import LocalCluster
        cluster = LocalCluster(tempfile.mkdtemp(), computes=1, aggregators=1, utilities=0, tls=False,
                               fast_db=True).start()
        made["folders"].append(cluster.run_dir)
        made["daemons"] = [daemon.process.pid for daemon in cluster.daemons.values()]
    print(json.dumps(made), flush=True)
    time.sleep(300)  # a blocking wait, as a system test's
""")


class SignalledFixtureTests(SynchronousTestCase):
    """The child is killed in a blocking wait; everything it started carries a mark to find it by."""

    def start(self, *fixtures):
        self.mark = uuid.uuid4().hex
        env = dict(os.environ, PYTHONPATH=PROJECT, **{MARK: self.mark})
        env.pop("CSM_KEEP_TEST_DIRS", None)
        self.child = subprocess.Popen([sys.executable, "-c", CHILD] + list(fixtures), cwd=PROJECT, env=env,
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.addCleanup(self.reap)
        line = self.child.stdout.readline()
        if not line:
            self.fail("the child exited with %s before its fixtures started" % self.child.wait())
        made = json.loads(line)
        self.assertTrue(all(os.path.isdir(folder) for folder in made["folders"]), made)
        self.assertTrue(self.left(), "the fixtures started no process")
        return made

    def left(self):
        return exitcleanup.marked_processes(MARK, self.mark)

    def reap(self):
        if self.child.poll() is None:
            self.child.kill()
        self.child.wait()
        self.child.stdout.close()
        exitcleanup.kill_groups(self.left())

    def assertNothingLeft(self, made, signum):
        self.assertEqual(self.child.wait(60), -signum)  # it dies of the signal (SIGINT: of
        # KeyboardInterrupt, which Python ends with SIGINT too), after cleaning up
        deadline = time.monotonic() + 10
        while self.left() and time.monotonic() < deadline:  # the postmaster's children end after it
            time.sleep(0.1)
        self.assertEqual(self.left(), [])
        self.assertEqual([folder for folder in made["folders"] if os.path.exists(folder)], [])

    def test_sigterm_stops_a_cluster_and_the_database(self):
        made = self.start("reactor", "dbfixture", "cluster")
        self.child.send_signal(signal.SIGTERM)
        self.assertNothingLeft(made, signal.SIGTERM)

    def test_sigint_and_sighup(self):
        for signum in (signal.SIGINT, signal.SIGHUP):
            made = self.start("dbfixture")
            self.child.send_signal(signum)
            self.assertNothingLeft(made, signum)


class HandlerTests(SynchronousTestCase):
    """The handlers come and go with what is registered (run in a child: this process has its own)."""

    def run_child(self, code):
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=PROJECT, text=True,
                              env=dict(os.environ, PYTHONPATH=PROJECT), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)

    def test_previous_handlers_return_after_the_last_unregister(self):
        result = self.run_child("""
            import signal
            from csm import exitcleanup
            mine = lambda signum, frame: None
            signal.signal(signal.SIGTERM, mine)  # a program's own handler is left alone
            exitcleanup.register(print, "a")
            exitcleanup.register(print, "b")
            print(signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGHUP) is exitcleanup._on_signal,
                  signal.getsignal(signal.SIGINT) is exitcleanup._on_signal)
            exitcleanup.unregister(print)
            print(signal.getsignal(signal.SIGTERM) is mine, signal.getsignal(signal.SIGHUP) is signal.SIG_DFL,
                  signal.getsignal(signal.SIGINT) is signal.default_int_handler)
            """)
        self.assertEqual(result.stdout.split("\n"), ["True True True", "True True True", ""])

    def test_sigint_raises_keyboardinterrupt_after_the_calls(self):
        result = self.run_child("""
            import os, signal
            from csm import exitcleanup
            exitcleanup.register(print, "cleaned")
            try:
                os.kill(os.getpid(), signal.SIGINT)
            except KeyboardInterrupt:
                print("interrupted")
            """)
        self.assertEqual((result.returncode, result.stdout), (0, "cleaned\ninterrupted\n"))

    def test_newest_first_once_and_on_despite_a_failure(self):
        result = self.run_child("""
            import os, signal
            from csm import exitcleanup
            exitcleanup.register(print, "first")
            exitcleanup.register(print, "first")
            exitcleanup.register(int, "not a number")
            exitcleanup.register(print, "second")
            os.kill(os.getpid(), signal.SIGHUP)
            """)
        self.assertEqual((result.returncode, result.stdout), (-signal.SIGHUP, "second\nfirst\n"))


    def test_a_registration_from_a_thread_runs_on_the_main_threads_handlers(self):
        """A fixture started in a thread (deferToThread) registers without touching the handlers,
        which only the main thread may set ("signal only works in main thread"); the handlers the
        main thread sets run its call too."""
        result = self.run_child("""
            import os, signal, threading
            from csm import exitcleanup
            worker = threading.Thread(target=exitcleanup.register, args=(print, "thread"))
            worker.start()
            worker.join()
            exitcleanup.register(print, "main")
            os.kill(os.getpid(), signal.SIGTERM)
            """)
        self.assertEqual((result.returncode, result.stdout), (-signal.SIGTERM, "main\nthread\n"))


class LeftoverTests(SynchronousTestCase):
    """What tools/run_tests.py does after trial: find the run's processes by their mark, kill their groups."""

    def test_marked_processes_and_their_groups_are_killed(self):
        mark = uuid.uuid4().hex
        # a process in a session of its own (as pg_ctl's postmaster) with a child that carries no mark
        leader = subprocess.Popen(["sh", "-c", "env -u %s sleep 300 & exec sleep 300" % MARK],
                                  env=dict(os.environ, **{MARK: mark}), start_new_session=True,
                                  stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: leader.poll() is None and (leader.kill(), leader.wait()))
        deadline = time.monotonic() + 10
        while len(_group(leader.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(_group(leader.pid)), 2)
        self.assertEqual(exitcleanup.marked_processes(MARK, mark), [leader.pid])
        self.assertEqual(exitcleanup.kill_groups([leader.pid]), [leader.pid])
        self.assertEqual(leader.wait(10), -signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _group(leader.pid) and time.monotonic() < deadline:  # the unmarked child went with its group
            time.sleep(0.05)
        self.assertEqual(_group(leader.pid), [])

    def test_a_group_member_that_ignores_sigterm_is_killed(self):
        """The marked leader goes at SIGTERM, an unmarked member that ignores it stays: it gets the
        SIGKILL too (that came only while the marked pid itself was alive)."""
        mark = uuid.uuid4().hex
        leader = subprocess.Popen(["sh", "-c", "env -u %s sh -c 'trap \"\" TERM; exec sleep 300' & exec sleep 300"
                                   % MARK], env=dict(os.environ, **{MARK: mark}), start_new_session=True,
                                  stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: leader.poll() is None and (leader.kill(), leader.wait()))
        self.addCleanup(lambda: _group(leader.pid) and os.killpg(leader.pid, signal.SIGKILL))
        deadline = time.monotonic() + 10
        while _commands(leader.pid) != ["sleep", "sleep"] and time.monotonic() < deadline:
            time.sleep(0.05)  # both exec'd: the member's trap is set
        self.assertEqual(_commands(leader.pid), ["sleep", "sleep"])
        exitcleanup.kill_groups([leader.pid], grace=1.0)
        deadline = time.monotonic() + 10
        while _group(leader.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(_group(leader.pid), [])


_group = exitcleanup.group_members


def _commands(pgid):
    """The command names of the live processes of group ``pgid``, sorted."""
    names = []
    for pid in _group(pgid):
        try:
            with open("/proc/%d/comm" % pid) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return sorted(names)
