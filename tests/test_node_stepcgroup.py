"""Step cgroups: what is written for CAST's components, and what is refused before anything is made.

This host's cgroup v2 tree offers no cpuset or memory controller (the system
tests use it for the rest), so these tests give ``StepCgroups`` a directory
laid out as the kernel lays out an allocation's cgroup with both controllers:
the kernel is the one thing faked.
"""

import errno
import os

from twisted.trial.unittest import TestCase

from csm.errors import CSMError, ErrorCode
from csm.node import stepcgroup
from csm.node.stepcgroup import StepCgroups


def _fake_allocation(root, allocation_id=5, controllers="cpuset memory", cpus="0-3"):
    path = os.path.join(root, "allocation_%d" % allocation_id)  # made with its parents
    os.makedirs(path)
    for name, text in (("cgroup.controllers", controllers), ("cgroup.subtree_control", ""),
                       ("cpuset.cpus.effective", cpus)):
        with open(os.path.join(path, name), "w") as f:
            f.write(text + "\n")
    return path


class FakeTreeTests(TestCase):
    def setUp(self):
        self.root = self.mktemp()
        self.cgroups = StepCgroups(self.root)
        self.cgroups.allocations.available = True  # the directory stands for a cgroup v2 file system
        self.allocation = _fake_allocation(self.root)
        self.written = []
        real = stepcgroup.write_value

        def record(path, value):
            self.written.append((os.path.relpath(path, self.root), value))
            real(path, value)
        self.patch(stepcgroup, "write_value", record)

    def create(self, components, name="step_1", pid=0):
        return self.cgroups.create(5, name, components, pid)

    def assertRefused(self, code, text, components, name="step_1"):
        error = self.assertRaises(CSMError, self.create, components, name)
        self.assertEqual(error.errcode, code, error.errmsg)
        self.assertIn(text, error.errmsg)
        self.assertFalse(os.path.exists(os.path.join(self.allocation, name)))

    def test_cpuset_and_memory_with_cast_names(self):
        made = self.create([{"type": "cpuset", "params": ["cpuset.cpus", "cpuset.mems"], "values": ["1-2", "0"]},
                            {"type": "memory", "params": ["memory.limit_in_bytes", "memory.soft_limit_in_bytes"],
                             "values": ["1048576", "-1"]}], pid=os.getpid())
        step = os.path.join(self.allocation, "step_1")
        self.assertEqual(made["written"], {"cpuset.cpus": "1-2", "cpuset.mems": "0", "memory.max": "1048576",
                                           "memory.high": "max"})
        self.assertEqual(self.written, [("allocation_5/cgroup.subtree_control", "+cpuset"),
                                        ("allocation_5/cgroup.subtree_control", "+memory"),
                                        ("allocation_5/step_1/cpuset.cpus", "1-2"),
                                        ("allocation_5/step_1/cpuset.mems", "0"),
                                        ("allocation_5/step_1/memory.max", "1048576"),
                                        ("allocation_5/step_1/memory.high", "max"),
                                        ("allocation_5/step_1/cgroup.procs", str(os.getpid()))])
        self.assertTrue(os.path.isdir(step))

    def test_cpus_outside_the_allocation(self):
        self.assertRefused(ErrorCode.CSMERR_CGROUP_EINVAL, "CPUs 4,5 are outside the allocation's 0,1,2,3",
                           [{"type": "cpuset", "params": ["cpuset.cpus"], "values": ["2-5"]}])
        self.assertEqual(self.written, [])

    def test_controller_not_offered(self):
        os.unlink(os.path.join(self.allocation, "cgroup.controllers"))
        with open(os.path.join(self.allocation, "cgroup.controllers"), "w") as f:
            f.write("cpu\n")
        self.assertRefused(ErrorCode.CSMERR_CGROUP_FAIL, "the cpuset, memory controllers are not offered",
                           [{"type": "cpuset"}, {"type": "memory"}])

    def test_mismatched_params_and_values(self):
        self.assertRefused(ErrorCode.CSMERR_CGROUP_EINVAL, "2 params but 1 values",
                           [{"type": "memory", "params": ["memory.max", "memory.high"], "values": ["1"]}])

    def test_params_that_are_not_lists(self):
        self.assertRefused(ErrorCode.CSMERR_CGROUP_EINVAL, "params and values are lists",
                           [{"type": "memory", "params": "memory.max", "values": "1"}])

    def test_reserved_and_bad_names(self):
        for name in ("login", "jsm", "..", "a/b", "cgroup.procs", ""):
            self.assertRaises(CSMError, self.create, [{"type": "cpuacct"}], name)

    def test_a_write_the_kernel_refuses_leaves_nothing(self):
        def refuse(path, value):
            if path.endswith("cpuset.cpus"):
                raise OSError(errno.EINVAL, "Invalid argument")
        self.patch(stepcgroup, "write_value", refuse)
        self.assertRefused(ErrorCode.CSMERR_CGROUP_FAIL, "cannot write '1' to",
                           [{"type": "cpuset", "params": ["cpuset.cpus"], "values": ["1"]}])

    def test_unknown_allocation_and_step(self):
        error = self.assertRaises(CSMError, self.cgroups.create, 6, "s", [{"type": "cpuacct"}])
        self.assertEqual((error.errcode, error.errmsg), (ErrorCode.CSMERR_CGROUP_FAIL,
                                                         "allocation 6 has no cgroup on this node"))
        error = self.assertRaises(CSMError, self.cgroups.delete, 5, "nosuch")
        self.assertIn("no step cgroup nosuch", error.errmsg)


class NotCgroup2Tests(TestCase):
    def test_a_tree_that_is_not_v2(self):
        root = self.mktemp()
        _fake_allocation(root)
        cgroups = StepCgroups(root)
        before = sorted(os.listdir(os.path.join(root, "allocation_5")))
        for call in (lambda: cgroups.create(5, "s", [{"type": "cpuacct"}]), lambda: cgroups.delete(5, "s"),
                     lambda: cgroups.join(5, os.getpid())):
            error = self.assertRaises(CSMError, call)
            self.assertEqual(error.errcode, ErrorCode.CSMERR_CGROUP_FAIL)
            self.assertEqual(error.errmsg, "%s is not on a cgroup v2 file system" % root)
        self.assertEqual(sorted(os.listdir(os.path.join(root, "allocation_5"))), before)
