"""The compute's allocation agent with real prolog/epilog processes; usage counters; cgroups."""

import errno
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

from twisted.internet import defer, inotify, reactor, task
from twisted.internet.protocol import ProcessProtocol
from twisted.python import filepath
from twisted.internet.task import Clock
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from csm.errors import CSMError, ErrorCode
from csm.node import usage
from csm.node.allocation import AllocationAgent, script_environment
from csm.node.cgroup import AllocationCgroups, format_cpus, is_cgroup2, parse_cpus, remove_tree
from csm.node import scripts
from csm.node.scripts import run_script
from tests.fakenvml import FakeGpu, FakeNvml

SCRIPT = """#!/bin/sh
echo "$@|$CSM_ALLOCATION_ID|$CSM_PRIMARY_JOB_ID|$CSM_SECONDARY_JOB_ID|$CSM_USER_NAME|$CSM_STEP_ID" >> %(log)s
case "$CSM_ALLOCATION_ID" in
  13) echo "bad node" >&2; exit 4;;
  14) sleep 30 & touch %(log)s.spawned; sleep 30;;
  15) sleep 1;;
esac
exit 0
"""


def body(allocation_id, script, **more):
    return dict({"script": script, "kind": "allocation", "allocation_id": allocation_id, "primary_job_id": 77,
                 "secondary_job_id": 1, "user_name": "alice", "user_flags": "u1 u2", "system_flags": "s1",
                 "timeout": 30}, **more)


class AgentTests(TestCase):
    def setUp(self):
        self.dir = self.mktemp()
        os.makedirs(self.dir)
        self.log = os.path.join(self.dir, "calls")
        paths = []
        for name in ("privileged_prolog", "privileged_epilog"):
            path = os.path.join(self.dir, name)
            with open(path, "w") as f:
                f.write(SCRIPT % {"log": self.log})
            os.chmod(path, stat.S_IRWXU)
            paths.append(path)
        self.agent = AllocationAgent(reactor, "n01", paths[0], paths[1], "", nvml=FakeNvml([FakeGpu()]))
        self.addCleanup(self.agent.stop)

    def calls(self):
        with open(self.log) as f:
            return [line.strip() for line in f]

    @defer.inlineCallbacks
    def test_prolog_and_epilog(self):
        answer = yield self.agent.handle(body(12, "prolog"))
        self.assertEqual(self.calls(), ["--type allocation --user_flags u1 u2 --sys_flags s1|12|77|1|alice|"])
        counters = answer["counters"]
        self.assertEqual(sorted(counters), sorted(usage.COUNTERS))
        self.assertGreater(counters["cpu_usage"], 0)  # node-wide busy time: no cgroup here
        self.assertEqual(counters["gpu_energy"], 123456)  # the fake GPU's mJ as J
        self.assertIn(12, self.agent.active)
        again = yield self.agent.handle(body(12, "prolog"))  # sent again after it finished
        self.assertEqual((again["counters"], len(self.calls())), (counters, 1))
        final = yield self.agent.handle(body(12, "epilog"))
        self.assertEqual(self.agent.active, {})
        self.assertEqual([g["gpu_id"] for g in final["gpus"]], [0])
        self.assertTrue(all(name.startswith("cpu_") for name in final["cpus"]))

    @defer.inlineCallbacks
    def test_baseline_read_while_the_prolog_runs(self):
        """The prolog waits (up to 20 s) for a file the baseline reading writes: it can only
        succeed when the reading does not wait for the script."""
        marker = os.path.join(self.dir, "read")
        script = os.path.join(self.dir, "waiting_prolog")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nfor i in $(seq 200); do [ -e %s ] && exit 0; sleep 0.1; done\nexit 3\n" % marker)
        os.chmod(script, stat.S_IRWXU)
        agent = AllocationAgent(reactor, "n04", script, "", "")
        read = agent.read_counters

        def read_counters(allocation_id):
            open(marker, "w").close()
            return read(allocation_id)
        agent.read_counters = read_counters
        answer = yield agent.handle(body(18, "prolog"))
        self.assertIn("counters", answer)
        yield agent.handle(body(18, "epilog"))

    @defer.inlineCallbacks
    def test_final_readings_taken_while_the_epilog_runs(self):
        """The final reading waits (up to 10 s) for a file the epilog writes: it only finds it
        when the epilog does not wait for the reading."""
        marker = os.path.join(self.dir, "epilog-started")
        script = os.path.join(self.dir, "marking_epilog")
        with open(script, "w") as f:
            f.write("#!/bin/sh\ntouch %s\n" % marker)
        os.chmod(script, stat.S_IRWXU)
        agent = AllocationAgent(reactor, "n04", "", script, "")
        yield agent.handle(body(19, "prolog"))
        read = agent.read_counters

        def read_counters(allocation_id):
            for _ in range(100):
                if os.path.exists(marker):
                    return read(allocation_id)
                time.sleep(0.1)
            raise AssertionError("the epilog did not start while the final counters were read")
        agent.read_counters = read_counters
        answer = yield agent.handle(body(19, "epilog"))
        self.assertIn("counters", answer)
        self.assertNotIn(19, agent.active)

    @defer.inlineCallbacks
    def test_failing_prolog(self):
        error = yield self.assertFailure(self.agent.handle(body(13, "prolog")), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_SCRIPT_FAILURE)
        self.assertIn("exited 4: bad node", error.errmsg)
        self.assertEqual(self.agent.active, {})

    @defer.inlineCallbacks
    def test_hanging_prolog_is_killed_with_its_children(self):
        """The script's timeout is advanced to on a Clock once the script has started a child
        that holds its output open; killed with its group, it ends at once (without the group
        kill the handle would wait out the child's 30 s and the test time out)."""
        clock = Clock()
        agent = AllocationAgent(ClockedReactor(clock), "n01", self.agent.scripts["prolog"], "", "")
        self.addCleanup(agent.stop)
        spawned = created(self, self.log + ".spawned")
        d = agent.handle(body(14, "prolog", timeout=3.5))
        yield spawned
        clock.advance(3.4)
        self.assertNoResult(d)
        clock.advance(0.1)
        error = yield self.assertFailure(d, CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_TIMEOUT)

    @defer.inlineCallbacks
    def test_collisions_and_joins(self):
        first = self.agent.handle(body(15, "prolog"))
        same = self.agent.handle(body(15, "prolog"))  # a resend joins
        error = yield self.assertFailure(defer.maybeDeferred(self.agent.handle, body(15, "epilog")), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_EPILOG_PROLOG_COLLISION)
        results = yield defer.gatherResults([first, same])
        self.assertEqual(results[0], results[1])
        self.assertEqual(len(self.calls()), 1)
        ending = self.agent.handle(body(15, "epilog"))
        error = yield self.assertFailure(defer.maybeDeferred(self.agent.handle, body(15, "prolog")), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_PROLOG_EPILOG_COLLISION)
        yield ending

    @defer.inlineCallbacks
    def test_step_scripts_and_no_script(self):
        yield self.agent.handle({"script": "prolog", "kind": "step", "allocation_id": 12, "step_id": 3,
                                 "user_flags": "trace", "timeout": 30})
        self.assertEqual(self.calls(), ["--type step --user_flags trace|12||||3"])
        quiet = AllocationAgent(reactor, "n02", "", "", "")
        answer = yield quiet.handle(body(16, "prolog"))
        self.assertIn("counters", answer)
        yield quiet.handle(body(16, "epilog"))

    @defer.inlineCallbacks
    def test_missing_script(self):
        agent = AllocationAgent(reactor, "n03", os.path.join(self.dir, "nothing"), "", "")
        error = yield self.assertFailure(defer.maybeDeferred(self.agent.handle, body(13, "bogus")), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_INVALID_PARAM)
        error = yield self.assertFailure(agent.handle(body(17, "prolog")), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_SCRIPT_FAILURE)
        self.assertIn("missing or not executable", error.errmsg)


def created(test, path):
    """Fires when the file ``path`` is made (inotify: no polling)."""
    path = os.path.abspath(path)
    notifier = inotify.INotify()
    notifier.startReading()
    test.addCleanup(notifier.loseConnection)
    made = defer.Deferred()

    def event(_, what, mask):
        if what.asTextMode().path == path and not made.called:
            made.callback(None)
    notifier.watch(filepath.FilePath(os.path.dirname(path)), mask=inotify.IN_CREATE, callbacks=[event])
    return made


#: the paths run_script can take here: posix_spawn + pidfd (PIDFD) where the kernel gives pidfds
SPAWN_PATHS = (True, False) if scripts.PIDFD else (False,)
NO_PIDFDS = None if scripts.PIDFD else "this kernel gives no pidfds (Linux 5.3): only spawnProcess runs scripts"


def reap_if_ours(pid):
    """Kills and reaps ``pid`` while it is an unreaped child of ours (a reaped one's number may be
    another process's by now)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass


class ScriptTests(TestCase):
    """run_script itself: started by posix_spawn in a session of its own (no setsid program), or,
    without pidfds, by Twisted's spawnProcess through setsid."""

    timeout = 20  # a group kill that misses the script's child waits out its 30 s

    def script(self, text):
        path = os.path.join(self.mktemp() + "-script")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, stat.S_IRWXU)
        return path

    @defer.inlineCallbacks
    def check_group_kill(self):
        marker = self.mktemp()
        path = self.script("#!/bin/sh\nsleep 30 & : > %s; sleep 30\n" % marker)
        clock = Clock()
        started = created(self, marker)
        d = run_script(ClockedReactor(clock), path, timeout=3.0, group=True)
        yield started
        clock.advance(3.0)
        self.assertEqual((yield d), (137, ""))

    def test_group_kill_needs_no_setsid_program(self):
        self.patch(scripts, "SETSID", None)
        return self.check_group_kill()
    test_group_kill_needs_no_setsid_program.skip = NO_PIDFDS

    def test_group_kill_without_pidfds(self):
        self.patch(scripts, "PIDFD", False)
        return self.check_group_kill()

    @defer.inlineCallbacks
    def test_output_status_and_signals(self):
        path = self.script("#!/bin/sh\necho out; echo err >&2; [ -n \"$1\" ] && kill -PIPE $$; exit 3\n")
        for pidfd in SPAWN_PATHS:
            self.patch(scripts, "PIDFD", pidfd)
            self.assertEqual((yield run_script(reactor, path, group=True)), (3, "out\nerr\n"))
            # the daemon ignores SIGPIPE; the script gets the default action back
            self.assertEqual((yield run_script(reactor, path, ["pipe"], group=True)), (128 + 13, "out\nerr\n"))

    @defer.inlineCallbacks
    def test_missing_or_not_executable(self):
        path = self.script("#!/bin/sh\nexit 0\n")
        os.chmod(path, stat.S_IRUSR)
        for pidfd in SPAWN_PATHS:
            self.patch(scripts, "PIDFD", pidfd)
            for missing in (path, path + "-none"):
                self.assertEqual((yield run_script(reactor, missing, group=True)),
                                 (127, "%s is missing or not executable" % missing))

    def test_unwatched_script_is_not_left_running(self):
        """No pidfd for a spawned script (out of descriptors): it is killed and reaped, and the
        answer says why."""
        path = self.script("#!/bin/sh\nsleep 30\n")
        spawned, spawn = [], os.posix_spawn

        def recorded(*args, **kw):
            spawned.append(spawn(*args, **kw))
            self.addCleanup(reap_if_ours, spawned[0])
            return spawned[0]

        def no_pidfd(pid):
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        self.patch(scripts.os, "posix_spawn", recorded)
        self.patch(scripts.os, "pidfd_open", no_pidfd)
        result = self.successResultOf(run_script(reactor, path, group=True))
        self.assertEqual(result, (126, "cannot run %s: %s" % (path, os.strerror(errno.EMFILE))))
        self.assertRaises(ChildProcessError, os.waitpid, spawned[0], os.WNOHANG)  # gone and reaped
    test_unwatched_script_is_not_left_running.skip = NO_PIDFDS

    @defer.inlineCallbacks
    def test_not_a_program(self):
        path = self.script("no interpreter line, not a program\n")
        code, output = yield run_script(reactor, path, group=True)
        self.assertEqual((code, output), (126, "cannot run %s: Exec format error" % path))
    test_not_a_program.skip = NO_PIDFDS

    @defer.inlineCallbacks
    def test_interpreter_missing(self):
        """A script that is there and executable but whose #! interpreter is not (execve's ENOENT)
        is not called missing: 126 and the interpreter named, as a shell would."""
        path = self.script("#!/nonexistent/sh\nexit 0\n")
        self.assertEqual((yield run_script(reactor, path, group=True)),
                         (126, "cannot run %s: its interpreter (#!) is missing or not executable" % path))
    test_interpreter_missing.skip = NO_PIDFDS

    def test_daemon_stopping_while_a_script_runs(self):
        """A reactor that stops while a script runs (the daemon's shutdown: its descriptors are
        closed) answers status 255 and why, not a TypeError from a status never read."""
        marker = os.path.abspath(self.mktemp())
        open(marker, "w").close()
        self.addCleanup(os.remove, marker)  # the script ends once the marker is gone
        path = os.path.abspath(self.script("#!/bin/sh\nwhile [ -e %s ]; do sleep 0.1; done\n" % marker))
        code = ("from twisted.internet import reactor\nfrom csm.node.scripts import run_script\n"
                "d = run_script(reactor, %r, group=True)\nd.addBoth(lambda r: print(repr(r)))\n"
                "reactor.callWhenRunning(reactor.stop)\nreactor.run()\n" % path)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run([sys.executable, "-c", code], cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=15,
                             env=dict(os.environ, PYTHONPATH=root)).stdout
        self.assertEqual(out, "%r\n" % ((255, "%s was still running when the daemon stopped" % path),))
    test_daemon_stopping_while_a_script_runs.skip = NO_PIDFDS


class EnvironmentTests(SynchronousTestCase):
    def test_allocation_and_step_variables(self):
        env = script_environment(body(5, "prolog"), "n01")
        self.assertEqual((env["CSM_ALLOCATION_ID"], env["CSM_PRIMARY_JOB_ID"], env["CSM_SECONDARY_JOB_ID"],
                          env["CSM_USER_NAME"]), ("5", "77", "1", "alice"))
        step = script_environment({"kind": "step", "allocation_id": 5, "step_id": 2}, "n01")
        self.assertEqual(step["CSM_STEP_ID"], "2")
        self.assertNotIn("CSM_USER_NAME", step)


class SampleScriptTests(SynchronousTestCase):
    """conf/prologs: the shipped privileged prolog and epilog."""

    def test_no_tools_needed(self):
        # it knows what it is without basename or sed, and starts no process at all, logger
        # neither (each one is time and CPU every job waits for): every tool on its PATH leaves
        # a mark when run
        conf = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "prologs")
        tools, marks = self.mktemp(), self.mktemp()
        os.makedirs(tools)
        os.makedirs(marks)
        for tool in ("basename", "sed", "logger", "cat", "date", "dirname", "printf", "echo", "true"):
            with open(os.path.join(tools, tool), "w") as f:
                f.write("#!/bin/sh\n: > %s/%s\n" % (marks, tool))
            os.chmod(os.path.join(tools, tool), stat.S_IRWXU)
        env = {"PATH": tools, "CSM_ALLOCATION_ID": "5", "CSM_PRIMARY_JOB_ID": "77",
               "CSM_SECONDARY_JOB_ID": "1", "CSM_USER_NAME": "alice"}
        for kind in ("prolog", "epilog"):
            out = subprocess.run([os.path.join(conf, "privileged_" + kind), "--type", "allocation", "--user_flags",
                                  "u1 u2", "--sys_flags", "s1"], env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, check=True).stdout
            self.assertEqual(out, "csm %s type=allocation allocation=5 job=77.1 step= user=alice user_flags=[u1 u2] "
                                  "sys_flags=[s1]\n" % kind)
        self.assertEqual(os.listdir(marks), [])


class UsageTests(SynchronousTestCase):
    def tree(self):
        root = self.mktemp()
        for path, text in {
                "proc/stat": "cpu  100 0 50 1000 10 0 0 0 0 0\ncpu0 60 0 20 500 5 0 0 0\ncpu1 40 0 30 500 5 0 0 0\n",
                "sys/class/powercap/intel-rapl:0/energy_uj": "5000000\n",
                "sys/class/powercap/intel-rapl:0:0/energy_uj": "7000000\n",
                "sys/class/powercap/intel-rapl:1/energy_uj": "3000000\n",
                "sys/class/infiniband/mlx5_0/ports/1/counters/port_rcv_data": "100\n",
                "sys/class/infiniband/mlx5_0/ports/1/counters/port_xmit_data": "25\n"}.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w") as f:
                f.write(text)
        return root

    def test_node_counters(self):
        root = self.tree()
        tick = usage.CLOCK_TICK_NS
        self.assertEqual(usage.cpu_times(root), {"cpu": 150 * tick, "cpu_0": 80 * tick, "cpu_1": 70 * tick})
        values = usage.counters(root=root)
        self.assertEqual((values["energy"], values["ib_rx"], values["ib_tx"]), (8, 400, 100))
        self.assertEqual((values["cpu_usage"], values["memory_usage_max"], values["gpu_usage"]), (150 * tick, -1, -1))
        values = usage.counters({"cpu_usage": 42, "memory_usage_max": 9}, root=root)
        self.assertEqual((values["cpu_usage"], values["memory_usage_max"]), (42, 9))
        self.assertEqual(usage.counters(root=root, sources=usage.Sources(root).refresh(0)), usage.counters(root=root))

    def test_sources_looked_for_again_after_a_minute(self):
        root = self.tree()
        sources = usage.Sources(root)
        self.assertEqual((len(sources.refresh(100.0).ib), len(sources.rapl)), (1, 2))
        shutil.rmtree(os.path.join(root, "sys/class/infiniband"))
        self.assertEqual(len(sources.refresh(159.0).ib), 1)  # as found at 100 s
        self.assertEqual(sources.refresh(160.0).ib, [])
        self.assertEqual(len(sources.refresh(10.0).rapl), 2)  # the clock went back: looked for again

    def test_unreadable_counters(self):
        values = usage.counters(root=self.mktemp(), gpus=usage.GpuUsageMeter(FakeNvml(init_error=9)))
        self.assertEqual(set(values.values()), {-1})

    def test_gpu_busy_time_and_memory(self):
        gpus = usage.GpuUsageMeter(FakeNvml([FakeGpu(gpu_util=50, memory_used=100)]))
        gpus.sample(10.0)
        gpus.sample(12.0)
        self.assertEqual(gpus.per_gpu(), [{"gpu_id": 0, "gpu_usage": 1000000, "max_gpu_memory": 100}])
        gpus.pause()
        gpus.sample(100.0)  # a new interval: the idle time between is not counted
        self.assertEqual(gpus.per_gpu()[0]["gpu_usage"], 1000000)


class ReadingPlaceTests(SynchronousTestCase):
    """Where the agent reads a node's counters: a thread while a reading may block (NVML, the
    InfiniBand ports' counters), the reactor once a reading found neither."""

    def agent(self, root, nvml=None):
        agent = AllocationAgent(Clock(), "n01", "", "", "", nvml=nvml, root=root)
        self.threaded = []

        def off_reactor(function, *args):
            self.threaded.append(function.__name__)
            return defer.succeed(function(*args))
        agent.off_reactor = off_reactor
        return agent

    def pairs(self, agent, count=3):
        for allocation_id in range(1, count + 1):
            for script in ("prolog", "epilog"):
                answer = self.successResultOf(agent.handle(body(allocation_id, script)))
                self.assertGreater(answer["counters"]["cpu_usage"], 0)

    def without_library(self):
        """NVML's library missing, as on a node without GPUs (looked for at the library's boundary)."""
        from csm.node import nvml
        looked = []
        self.patch(nvml, "library_present", lambda name=None: looked.append(name) or False)
        return looked

    def test_on_the_reactor_without_nvml_and_infiniband(self):
        looked = self.without_library()
        root = UsageTests.tree(self)
        shutil.rmtree(os.path.join(root, "sys/class/infiniband"))
        agent = self.agent(root)
        self.pairs(agent)
        self.assertEqual(self.threaded, ["read_counters"])  # the first, which found neither
        self.assertEqual(len(looked), 1)  # the missing library is not looked for at every reading

    def test_back_on_a_thread_once_infiniband_ports_appear(self):
        """Ports found by the minute's search (a driver loaded after the start): the reading
        that finds them is on a thread already (their counters are device queries)."""
        self.without_library()
        root = UsageTests.tree(self)
        ports = os.path.join(root, "sys/class/infiniband")
        shutil.move(ports, ports + ".later")
        agent = self.agent(root)
        self.pairs(agent, count=1)
        self.assertEqual(self.threaded, ["read_counters"])
        shutil.move(ports + ".later", ports)
        agent.reactor.advance(61)
        self.pairs(agent, count=1)
        self.assertEqual(self.threaded, ["read_counters"] * 3)

    def test_on_a_thread_with_infiniband(self):
        self.without_library()
        agent = self.agent(UsageTests.tree(self))
        self.pairs(agent)
        self.assertEqual(self.threaded, ["read_counters"] * 6)

    def test_on_a_thread_with_gpus(self):
        root = UsageTests.tree(self)
        shutil.rmtree(os.path.join(root, "sys/class/infiniband"))
        agent = self.agent(root, FakeNvml([FakeGpu()]))
        self.addCleanup(agent.stop)
        self.pairs(agent)
        self.assertEqual([name for name in self.threaded if name != "sample"], ["read_counters"] * 6)

    def counted(self, name):
        """The calls of ``usage.<name>`` (a root each) from now on; an agent on a node without NVML."""
        self.without_library()
        calls, real = [], getattr(usage, name)
        self.patch(usage, name, lambda root="/": calls.append(root) or real(root))
        return calls

    def test_sysfs_not_searched_at_every_reading(self):
        searched = self.counted("ib_ports")
        self.pairs(self.agent(UsageTests.tree(self)))
        self.assertEqual(len(searched), 1)

    def test_a_gpu_not_sampled_yet_is_read_as_unused(self):
        """An allocation younger than the first GPU sample still names every GPU (the final
        reading raced the first sample on the thread pool and found none)."""
        agent = self.agent(UsageTests.tree(self), FakeNvml([FakeGpu(), FakeGpu()]))
        self.assertEqual(agent.read_counters(1)["gpus"], [{"gpu_id": 0, "gpu_usage": 0, "max_gpu_memory": 0},
                                                          {"gpu_id": 1, "gpu_usage": 0, "max_gpu_memory": 0}])

    def test_proc_stat_read_once_a_reading(self):
        reads = self.counted("cpu_times")
        reading = self.agent(UsageTests.tree(self)).read_counters(1)
        self.assertEqual(len(reads), 1)
        self.assertEqual(reading["counters"]["cpu_usage"], reading["cpus"]["cpu"])


def writable_cgroup2():
    """A cgroup v2 directory this test may make children in, or None (a v1-only or read-only host)."""
    for path in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if is_cgroup2(path) and os.access(os.path.join(path, "cgroup.procs"), os.W_OK):
            return path
    return None


class RealCgroupTests(TestCase):
    """The agent makes and removes the allocation's cgroup on the host's cgroup v2 tree."""

    def setUp(self):
        parent = writable_cgroup2()
        if parent is None:
            raise SkipTest("no writable cgroup v2 file system on this host")
        self.root = os.path.join(parent, "csm-test-%d" % os.getpid())
        # remove_tree waits out EBUSY: a loaded kernel may still be tearing down the job's cgroup
        self.addCleanup(lambda: os.path.isdir(self.root) and remove_tree(self.root))
        self.agent = AllocationAgent(reactor, "n01", "", "", self.root, nvml=FakeNvml([]))
        self.addCleanup(self.agent.stop)

    @defer.inlineCallbacks
    def test_prolog_makes_and_epilog_removes_the_cgroup(self):
        self.assertTrue(self.agent.cgroups.available, self.agent.cgroups.why_not)
        answer = yield self.agent.handle(body(21, "prolog"))
        path = os.path.join(self.root, "allocation_21")
        self.assertEqual(answer["cgroup"]["path"], path)
        self.assertTrue(os.path.isdir(path))
        # a job's process in the cgroup: its CPU time is the allocation's, and the epilog ends it
        ended = Ended()
        job = reactor.spawnProcess(ended, "/bin/sh", ["sh", "-c", "while :; do :; done"])
        self.addCleanup(lambda: job.pid and os.kill(job.pid, 9))
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(job.pid))
        yield task.deferLater(reactor, 0.3, lambda: None)
        self.assertGreater(self.agent.cgroups.usage(21)["cpu_usage"], 0)
        yield self.agent.handle(body(21, "epilog"))
        self.assertFalse(os.path.exists(path))
        yield ended.done  # cgroup.kill: the job is gone
        self.assertIsNone(job.pid)


class Ended(ProcessProtocol):
    """``done`` fires when the process has ended."""

    def __init__(self):
        self.done = defer.Deferred()

    def processEnded(self, reason):
        self.done.callback(None)


class ClockedReactor:
    """The reactor, its time taken from a ``Clock``: real processes, timers advanced by the test."""

    def __init__(self, clock):
        self.clock = clock

    def callLater(self, *args, **kw):
        return self.clock.callLater(*args, **kw)

    def seconds(self):
        return self.clock.seconds()

    def __getattr__(self, name):
        return getattr(reactor, name)


class RecoveryScriptTests(TestCase):
    """The soft failure recovery handler runs the site's script as the prolog runs its own."""

    @defer.inlineCallbacks
    def test_a_child_holding_the_output_is_killed_at_the_timeout(self):
        from types import SimpleNamespace
        from csm.api import compute_handlers, multicast
        marker = os.path.abspath(self.mktemp())
        path = os.path.abspath(self.mktemp() + "-recovery")
        with open(path, "w") as f:
            # the child says it runs (the marker) once the script has ended and been reaped: the
            # timeout then kills the child alone (the marker made before the script's exit let a
            # loaded machine kill the script too, which then "exited 137")
            f.write("#!/bin/sh\nscript=$$\n(while kill -0 $script 2>/dev/null; do sleep 0.05; done; : > %s; "
                    "exec sleep 120) &\necho $! > %s.pid\nexit 0\n" % (marker, marker))
        os.chmod(path, stat.S_IRWXU)
        clock = Clock()
        daemon = SimpleNamespace(node_name="c01", reactor=ClockedReactor(clock),
                                 config=SimpleNamespace(recovery_script=path))
        started = created(self, marker)
        d = compute_handlers.soft_failure_recovery(SimpleNamespace(daemon=daemon), {"timeout": 10})
        yield started
        clock.advance(10 - multicast.LEVEL_MARGIN)
        # without a group of its own only the (ended) script was killed: the sleep kept the
        # output pipe and the answer waited two minutes, past this test's timeout
        self.assertEqual((yield d), {"node": "c01", "ran": True})
        with open(marker + ".pid") as f:
            child = int(f.read())
        # killed: gone, or a zombie not yet reaped by init (its output closes before its state
        # reads Z, so a loaded machine may show it running a moment after the answer)
        deadline = time.monotonic() + 10
        while True:
            try:
                with open("/proc/%d/stat" % child) as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                break
            if state == "Z" or time.monotonic() > deadline:
                self.assertEqual(state, "Z")
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
    test_a_child_holding_the_output_is_killed_at_the_timeout.timeout = 20


class CgroupTests(SynchronousTestCase):
    def test_cpu_lists(self):
        self.assertEqual(parse_cpus("0-3,8,10-11"), [0, 1, 2, 3, 8, 10, 11])
        self.assertEqual(format_cpus([4, 5]), "4,5")

    def test_skipped_where_not_cgroup2(self):
        cgroups = AllocationCgroups(self.mktemp())
        self.assertFalse(cgroups.available)
        self.assertIn("not on a cgroup v2", cgroups.why_not)
        self.assertEqual(cgroups.create(1, 2), {})
        self.assertEqual(cgroups.usage(1), {"cpu_usage": -1, "memory_usage_max": -1})
        self.assertFalse(cgroups.remove(1))
        self.assertIn("off", AllocationCgroups("").why_not)
