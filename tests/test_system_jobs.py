"""The node side of jobs through real daemons: step cgroups, logins through PAM, jsrun, burst buffer.

A master with its PostgreSQL, one aggregator, one utility and two computes
whose allocation cgroups live on this machine's cgroup v2 tree. Test users are
made with ``useradd`` and removed after; the PAM test writes a service file of
its own into /etc/pam.d and runs ``pamtester`` (``make pamtester`` installs it).
"""

import atexit
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm.client import Client
from csm.cluster import OTHER_USER_PYTHON, PROJECT, LocalCluster, other_user_pythonpath
from csm.errors import CSMError
from csm.node.cgroup import is_cgroup2, remove_tree

NODES = ("c01", "c02")
LAUNCHER = """#!/bin/sh
out=%(marks)s/jsrun.$CSM_ALLOCATION_ID.$(hostname -s).$$
{ echo "uid=$(id -u) args=$* alloc=$CSM_ALLOCATION_ID jsm_args=$CSM_JSM_ARGS"; cat /proc/self/cgroup; } > "$out.tmp"
mv "$out.tmp" "$out"
sleep 300
"""
BBCMD = """#!/bin/sh
echo "bbcmd $* on $CSM_NODE_NAME as $CSM_USER_ID uid $(id -u)"
[ "$1" = fail ] && { echo "no such volume"; exit 4; }
exit 0
"""


def _cgroup_parent():
    for candidate in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if is_cgroup2(candidate) and os.access(os.path.join(candidate, "cgroup.procs"), os.W_OK):
            return candidate
    return None


def _script(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path


def _useradd(name):
    if os.geteuid() != 0 or not shutil.which("useradd"):
        raise SkipTest("test users need root and useradd")
    subprocess.run(["userdel", name], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    subprocess.run(["useradd", "-M", "-s", "/bin/sh", name], check=True)
    return pwd.getpwnam(name).pw_uid


class _Tree:
    started = None

    @classmethod
    def get(cls):
        if cls.started is None:
            parent = _cgroup_parent()
            if parent is None:
                raise SkipTest("no writable cgroup v2 file system on this host")
            tree = cls()
            tree.start(parent)
            atexit.register(tree.stop)
            cls.started = tree
        return cls.started

    def start(self, parent):
        self.run_dir = tempfile.mkdtemp(prefix="csm-jobs-")
        os.chmod(self.run_dir, 0o755)
        self.marks = os.path.join(self.run_dir, "marks")
        os.makedirs(self.marks)
        os.chmod(self.marks, 0o777)
        self.cgroup_parent = os.path.join(parent, "csm-jobs-%d" % os.getpid())
        self.users = ["csmjob%d%s" % (os.getpid() % 10000, suffix) for suffix in "abc"]
        for user in self.users:
            _useradd(user)
        self.cluster = LocalCluster(self.run_dir, computes=2, aggregators=1, utilities=1, tls=False, extra={
            "compute": {"cgroup_root": os.path.join(self.cgroup_parent, "{node}"),
                        "jsrun_cmd": _script(os.path.join(self.run_dir, "jsm"), LAUNCHER % {"marks": self.marks}),
                        "bb_cmd": _script(os.path.join(self.run_dir, "bbcmd"), BBCMD)}})
        try:
            self.cluster.start()
            self.cluster.wait_complete("c01", timeout=60)
            self.cluster.wait_for(lambda: len(self.cluster.sql("SELECT node_name FROM csm_node WHERE type = "
                                                               "'compute'")) == 2, timeout=30, what="inventory")
        except Exception:
            self.stop()
            raise

    def stop(self):
        self.cluster.stop()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        for user in self.users:
            subprocess.run(["userdel", user], stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if os.path.isdir(self.cgroup_parent):
            remove_tree(self.cgroup_parent)  # deepest first, waiting out EBUSY


class _JobTest(SynchronousTestCase):
    def setUp(self):
        self.tree = _Tree.get()
        self.cluster = self.tree.cluster
        rc, out = self.cluster.cli("util01", "csm_node_attributes_update", "-n", ",".join(NODES), "-s", "IN_SERVICE",
                                   "--force")
        self.assertEqual(rc, 0, out)
        self.addCleanup(self._delete_leftovers)

    def _delete_leftovers(self):
        for (allocation_id,) in self.cluster.sql("SELECT allocation_id FROM csm_allocation"):
            self.cluster.cli("util01", "csm_allocation_delete", "-a", str(allocation_id))

    def cli_json(self, command, *args, expect=0, daemon="util01", user=None):
        rc, out = self.cluster.cli(daemon, command, *(args + ("--format", "json")), user=user)
        self.assertEqual(rc, expect, out)
        result = json.loads(out) if out.strip().startswith("{") else out
        return result["errmsg"] if expect and isinstance(result, dict) and "errmsg" in result else result

    def call(self, daemon, api, body):
        with Client(self.cluster.daemons[daemon].socket, timeout=30) as client:
            return client.call(api, body)

    def call_error(self, daemon, api, body):
        try:
            self.call(daemon, api, body)
        except CSMError as exc:
            return int(exc.errcode), exc.errmsg
        self.fail("%s succeeded" % api)

    def as_user(self, user, daemon, api, body):
        """(exit status, output) of one API call made by ``user`` (a process of theirs)."""
        path = other_user_pythonpath()
        code = ("import json, sys; from csm.client import Client; from csm.errors import CSMError\n"
                "try:\n    print(json.dumps(Client(%r, timeout=30).connect().call(%r, %r)))\n"
                "except CSMError as e:\n    print(int(e.errcode), e.errmsg); sys.exit(1)\n"
                % (self.cluster.daemons[daemon].socket, api, body))
        proc = subprocess.run(["runuser", "-u", user, "--", "env", "PYTHONPATH=" + path, OTHER_USER_PYTHON, "-c",
                               code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        return proc.returncode, proc.stdout

    def allocate(self, user, nodes=NODES, shared=False):
        created = self.cli_json("csm_allocation_create", "-j", str(int(time.time() * 1000) % 10 ** 9),
                                "-n", ",".join(nodes), "-u", user, *(("-S",) if shared else ()))
        return created["allocation_id"]

    def cgroup(self, node, allocation_id, *parts):
        return os.path.join(self.tree.cgroup_parent, node, "allocation_%d" % allocation_id, *parts)


def _procs(path):
    with open(os.path.join(path, "cgroup.procs")) as f:
        return [int(pid) for pid in f.read().split()]


class StepCgroupTests(_JobTest):
    def test_create_and_delete_with_a_process(self):
        user = self.tree.users[0]
        allocation_id = self.allocate(user)
        entry = pwd.getpwnam(user)
        job = subprocess.Popen(["sleep", "300"], user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        self.addCleanup(lambda: job.poll() is None and job.kill())
        self.addCleanup(job.wait)
        made = self.call("c01", "allocation_step_cgroup_create", {
            "allocation_id": allocation_id, "cgroup_name": "step_1", "pid": job.pid,
            "components": [{"type": "cpuacct"}, {"type": "devices"}]})
        step = self.cgroup("c01", allocation_id, "step_1")
        self.assertEqual(made["path"], step)
        self.assertEqual(_procs(step), [job.pid])
        self.assertFalse(os.path.exists(self.cgroup("c02", allocation_id, "step_1")))  # c01's own API
        # the owner may do it too, for their own processes; another user may not
        rc, out = self.as_user(user, "c01", "csm_allocation_step_cgroup_create",
                               {"allocation_id": allocation_id, "cgroup_name": "step_2",
                                "components": [{"type": "cpuacct"}]})
        self.assertEqual(rc, 0, out)
        rc, out = self.as_user(self.tree.users[1], "c01", "csm_allocation_step_cgroup_create",
                               {"allocation_id": allocation_id, "cgroup_name": "step_3",
                                "components": [{"type": "cpuacct"}]})
        self.assertEqual((rc, out.split()[0]), (1, "16"), out)
        self.assertFalse(os.path.exists(self.cgroup("c01", allocation_id, "step_3")))
        rc, out = self.as_user(user, "c01", "csm_allocation_step_cgroup_create",
                               {"allocation_id": allocation_id, "cgroup_name": "step_4", "pid": 1,
                                "components": [{"type": "cpuacct"}]})
        self.assertEqual((rc, out.split()[0]), (1, "16"), out)  # pid 1 is not the user's

        # delete kills what still runs in the step
        self.call("c01", "allocation_step_cgroup_delete", {"allocation_id": allocation_id, "cgroup_name": "step_1"})
        self.assertFalse(os.path.exists(step))
        self.assertEqual(job.wait(timeout=10), -9)
        code, message = self.call_error("c01", "allocation_step_cgroup_delete",
                                        {"allocation_id": allocation_id, "cgroup_name": "step_1"})
        self.assertEqual(code, 36, message)
        self.assertIn("no step cgroup step_1", message)
        # the allocation's delete removes the cgroups of its steps with it
        self.cli_json("csm_allocation_delete", "-a", str(allocation_id))
        self.assertFalse(os.path.exists(self.cgroup("c01", allocation_id)))

    def test_multicast_to_the_steps_nodes(self):
        user = self.tree.users[0]
        allocation_id = self.allocate(user, shared=True)
        body = {"allocation_id": allocation_id, "cgroup_name": "step_9", "compute_nodes": list(NODES),
                "components": [{"type": "cpuacct"}]}
        made = self.call("util01", "allocation_step_cgroup_create", body)
        self.assertEqual(made["nodes"], {node: self.cgroup(node, allocation_id, "step_9") for node in NODES})
        for node in NODES:
            self.assertTrue(os.path.isdir(self.cgroup(node, allocation_id, "step_9")))
        rc, out = self.as_user(self.tree.users[1], "util01", "csm_allocation_step_cgroup_create",
                               dict(body, cgroup_name="step_8"))
        self.assertEqual((rc, out.split()[0]), (1, "16"), out)
        other = self.allocate(user, nodes=("c02",), shared=True)
        code, message = self.call_error("util01", "allocation_step_cgroup_create",
                                        dict(body, allocation_id=other, cgroup_name="step_8"))
        self.assertEqual(code, 9, message)
        self.assertIn("not nodes of allocation %d: c01" % other, message)
        code, message = self.call_error("util01", "allocation_step_cgroup_create", dict(body, pid=os.getpid()))
        self.assertEqual(code, 9, message)
        code, message = self.call_error("util01", "allocation_step_cgroup_create",
                                        dict(body, components=[{"type": "cpuset", "params": ["cpuset.mems"],
                                                                "values": ["x"]}], cgroup_name="step_7"))
        self.assertEqual(code, 34, message)  # each node refused (this host offers no cpuset controller)
        self.assertFalse(any(os.path.exists(self.cgroup(n, allocation_id, "step_7")) for n in NODES))
        rc, out = self.as_user(user, "util01", "csm_allocation_step_cgroup_delete",
                               {"allocation_id": allocation_id, "cgroup_name": "step_9",
                                "compute_nodes": list(NODES)})
        self.assertEqual(rc, 0, out)
        for node in NODES:
            self.assertFalse(os.path.exists(self.cgroup(node, allocation_id, "step_9")))

    def test_bad_input_makes_nothing(self):
        allocation_id = self.allocate(self.tree.users[0])
        cases = [
            ({"allocation_id": 987654, "cgroup_name": "s", "components": [{"type": "cpuacct"}]}, 50, "not active"),
            ({"allocation_id": allocation_id, "cgroup_name": "../x", "components": [{"type": "cpuacct"}]}, 9,
             "invalid cgroup_name"),
            ({"allocation_id": allocation_id, "cgroup_name": "s", "components": [{"type": "gpu"}]}, 38,
             "unknown controller"),
            ({"allocation_id": allocation_id, "cgroup_name": "s",
              "components": [{"type": "memory", "params": ["memory.swappiness"], "values": ["1"]}]}, 38,
             "cannot be set on cgroup v2"),
            ({"allocation_id": allocation_id, "cgroup_name": "s",
              "components": [{"type": "memory", "params": ["memory.max"], "values": ["lots"]}]}, 38,
             "not a number"),
            ({"allocation_id": allocation_id, "cgroup_name": "s", "pid": 999999999,
              "components": [{"type": "cpuacct"}]}, 9, "not a running process"),
            ({"allocation_id": allocation_id, "cgroup_name": "s"}, 8, "components"),
        ]
        offered = open(os.path.join(self.cgroup("c01", allocation_id), "cgroup.controllers")).read().split()
        if "cpuset" not in offered:  # this host's v2 tree has no cpuset controller: a clear refusal
            cases.append(({"allocation_id": allocation_id, "cgroup_name": "s", "components": [
                {"type": "cpuset", "params": ["cpuset.cpus"], "values": ["0"]}]}, 36, "cpuset controller"))
        for body, code, text in cases:
            got, message = self.call_error("c01", "allocation_step_cgroup_create", body)
            self.assertEqual(got, code, (body, message))
            self.assertIn(text, message)
            self.assertEqual(sorted(os.listdir(self.cgroup("c01", allocation_id))),
                             sorted(os.listdir(self.cgroup("c02", allocation_id))), "something was made")


class JsrunTests(_JobTest):
    def _launched(self, allocation_id, node):
        marks = [name for name in os.listdir(self.tree.marks)
                 if name.startswith("jsrun.%d." % allocation_id) and not name.endswith(".tmp")]
        return marks

    def test_starts_the_launcher_as_the_user_in_the_allocation_cgroup(self):
        user = self.tree.users[0]
        uid = pwd.getpwnam(user).pw_uid
        allocation_id = self.allocate(user)
        answer = self.cli_json("csm_jsrun_cmd", "-a", str(allocation_id), "-k", "np=4,tasks_per_node=2")
        self.assertEqual(sorted(answer["nodes"]), list(NODES))
        self.cluster.wait_for(lambda: len(self._launched(allocation_id, None)) == 2, timeout=20,
                              what="the launcher on both nodes")
        for node in NODES:
            pid = answer["nodes"][node]
            self.assertIn(pid, _procs(self.cgroup(node, allocation_id, "jsm")))
        for name in self._launched(allocation_id, None):
            with open(os.path.join(self.tree.marks, name)) as f:
                text = f.read()
            self.assertIn("uid=%d " % uid, text)
            self.assertIn("--type 0 --launch_node c01 --num_hosts 2 --hosts c01 c02", text)
            self.assertIn("jsm_args=np=4,tasks_per_node=2", text)
            self.assertIn("allocation_%d/jsm" % allocation_id, text)
        # the owner may start it; another user may not; nor for an allocation that does not exist
        rc, out = self.cluster.cli("util01", "csm_jsrun_cmd", "-a", str(allocation_id), user=self.tree.users[1])
        self.assertEqual(rc, 16, out)
        rc, out = self.cluster.cli("util01", "csm_jsrun_cmd", "-a", "987654")
        self.assertEqual(rc, 50, out)
        rc, out = self.cluster.cli("util01", "csm_jsrun_cmd", "-a", str(allocation_id), "-k", "a;rm -rf /")
        self.assertEqual(rc, 9, out)
        rc, out = self.cluster.cli("util01", "csm_jsrun_cmd", "-a", str(allocation_id), "-p", "/no/such/jsm")
        self.assertEqual(rc, 34, out)
        self.assertIn("/no/such/jsm", out)
        # the allocation's delete ends the launcher with it
        self.cli_json("csm_allocation_delete", "-a", str(allocation_id))
        for node in NODES:
            self.assertFalse(os.path.exists(self.cgroup(node, allocation_id)))


class PamLoginTests(_JobTest):
    """sshd's PAM stack, as a service of the test's own, through ``pamtester``."""

    def setUp(self):
        super().setUp()
        if not shutil.which("pamtester"):
            raise SkipTest("pamtester is not installed (make pamtester)")
        self.service = "csm-test-%d" % os.getpid()
        self.seen = os.path.join(self.tree.run_dir, "session-cgroup")
        self.log = os.path.join(self.tree.run_dir, "pam.log")
        wrapper = _script(os.path.join(self.tree.run_dir, "csm-pam-login"),
                          "#!/bin/sh\nPYTHONPATH=%s exec %s -m csm.node.pam --socket %s --exempt %s\n"
                          % (PROJECT, sys.executable, self.cluster.daemons["c01"].socket,
                             os.path.join(self.tree.run_dir, "exempt")))
        record = _script(os.path.join(self.tree.run_dir, "record"),
                         "#!/bin/sh\ncat /proc/self/cgroup > %s\n" % self.seen)
        with open(os.path.join(self.tree.run_dir, "exempt"), "w") as f:
            f.write("%s\n" % self.tree.users[2])
        path = "/etc/pam.d/" + self.service
        with open(path, "w") as f:
            f.write("auth     required pam_permit.so\n"
                    "account  required pam_exec.so quiet log=%s %s\n"
                    "session  required pam_exec.so log=%s %s\n"
                    "session  required pam_exec.so %s\n" % (self.log, wrapper, self.log, wrapper, record))
        self.addCleanup(os.unlink, path)

    def pamtester(self, user, *operations):
        result = subprocess.run(["pamtester", self.service, user] + list(operations), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=60)
        if os.path.exists(self.log):
            with open(self.log) as f:
                result.stdout += f.read()  # what csm-pam-login said, for the failure messages
            os.unlink(self.log)
        return result

    def test_login_joins_the_allocation_cgroup_or_is_refused(self):
        owner, other, exempt = self.tree.users
        allocation_id = self.allocate(owner)
        result = self.pamtester(owner, "acct_mgmt", "open_session")
        self.assertEqual(result.returncode, 0, result.stdout)
        with open(self.seen) as f:
            self.assertIn("/allocation_%d/login" % allocation_id, f.read())  # a process of the session
        os.unlink(self.seen)
        refused = self.pamtester(other, "acct_mgmt")
        self.assertNotEqual(refused.returncode, 0, refused.stdout)
        self.assertIn("%s refused: user %s owns no allocation on c01" % (other, other), refused.stdout)
        admitted = self.pamtester(exempt, "acct_mgmt", "open_session")
        self.assertEqual(admitted.returncode, 0, admitted.stdout)
        with open(self.seen) as f:
            self.assertNotIn("allocation_", f.read())  # left where it was
        # once the allocation ends, its owner is refused too
        self.cli_json("csm_allocation_delete", "-a", str(allocation_id))
        self.assertNotEqual(self.pamtester(owner, "acct_mgmt").returncode, 0)

    def test_login_after_the_compute_daemon_restarts(self):
        owner = self.tree.users[0]
        allocation_id = self.allocate(owner)
        compute = self.cluster.daemons["c01"]
        compute.stop()
        compute.start()
        self.cluster.wait_complete("c01", timeout=60)
        # the restarted daemon did not see the prolog: it asks the master about the cgroup it finds
        result = self.pamtester(owner, "acct_mgmt", "open_session")
        self.assertEqual(result.returncode, 0, result.stdout)
        with open(self.seen) as f:
            self.assertIn("/allocation_%d/login" % allocation_id, f.read())
        self.assertNotEqual(self.pamtester(self.tree.users[1], "acct_mgmt").returncode, 0)

    def test_cgroup_login_api(self):
        owner = self.tree.users[0]
        allocation_id = self.allocate(owner, nodes=("c02",))
        code, message = self.call_error("c01", "cgroup_login", {"user_name": owner, "pid": os.getpid()})
        self.assertEqual(code, 36)
        self.assertIn("owns no allocation on c01", message)
        code, message = self.call_error("c02", "cgroup_login", {"user_name": owner, "allocation_id": allocation_id + 1})
        self.assertIn("no allocation %d" % (allocation_id + 1), message)
        self.assertEqual(self.call("c02", "cgroup_login", {"user_name": owner}), {"allocation_id": allocation_id})


class BurstBufferTests(_JobTest):
    def setUp(self):
        super().setUp()
        self.cluster.sql("DELETE FROM csm_lv; DELETE FROM csm_vg")
        self.cluster.sql("INSERT INTO csm_ssd (serial_number, node_name, size) VALUES ('S1', 'c01', 1000), "
                         "('S2', 'c01', 1000), ('S3', 'c02', 500) ON CONFLICT DO NOTHING")

    def vg(self, node, name):
        return self.cluster.sql("SELECT total_size, available_size FROM csm_vg WHERE node_name = %s AND vg_name = %s",
                                (node, name))

    def test_volume_groups_and_logical_volumes(self):
        self.cli_json("csm_bb_vg_create", "-n", "c01", "-V", "vg1", "-s", "S1,S2", "-S", "600,400", "-t", "1000",
                      "-a", "1000", "-c", "true")
        self.assertEqual(self.vg("c01", "vg1"), [(1000, 1000)])
        # CAST's rules: sizes add up, SSD space is not given twice, one scheduler group per node
        out = self.cli_json("csm_bb_vg_create", "-n", "c01", "-V", "vg2", "-s", "S1", "-S", "500", "-t", "500",
                            "-a", "500", expect=9)
        self.assertIn("SSD S1 has 400 bytes free", out)
        out = self.cli_json("csm_bb_vg_create", "-n", "c01", "-V", "vg2", "-s", "S1", "-S", "100", "-t", "200",
                            "-a", "100", expect=9)
        self.assertIn("not the sum", out)
        out = self.cli_json("csm_bb_vg_create", "-n", "c01", "-V", "vg2", "-s", "S2", "-S", "100", "-t", "100",
                            "-a", "100", "-c", "true", expect=9)
        self.assertIn("scheduler volume group already", out)
        self.cli_json("csm_bb_vg_create", "-n", "c01", "-V", "vg3", "-s", "S2", "-S", "0", "-t", "0", "-a", "0",
                      "-c", "false")
        self.assertEqual(self.cluster.sql("SELECT scheduler FROM csm_vg WHERE vg_name = 'vg3'"), [(False,)])
        self.cli_json("csm_bb_vg_delete", "-n", "c01", "-V", "vg3")
        out = self.cli_json("csm_bb_vg_create", "-n", "c01", "-V", "vg2", "-s", "S9", "-S", "100", "-t", "100",
                            "-a", "100", expect=9)
        self.assertIn("no SSD S9", out)
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_vg")[0][0], 1)

        allocation_id = self.allocate(self.tree.users[0], nodes=("c01",))
        self.cli_json("csm_bb_lv_create", "-a", str(allocation_id), "-c", "300", "-f", "/bb", "-F", "xfs",
                      "-l", "lv1", "-n", "c01", "-s", "C", "-V", "vg1")
        self.assertEqual(self.vg("c01", "vg1"), [(1000, 700)])
        out = self.cli_json("csm_bb_lv_create", "-a", str(allocation_id), "-c", "10", "-f", "/bb", "-F", "xfs",
                            "-l", "lv2", "-n", "c02", "-s", "C", "-V", "vg1", expect=9)
        self.assertIn("c02 is not a node of allocation %d" % allocation_id, out)
        out = self.cli_json("csm_bb_lv_create", "-a", str(allocation_id), "-c", "800", "-f", "/bb", "-F", "xfs",
                            "-l", "lv2", "-n", "c01", "-s", "C", "-V", "vg1", expect=9)
        self.assertIn("700 bytes available", out)
        out = self.cli_json("csm_bb_lv_create", "-a", str(allocation_id), "-c", "8", "-f", "/bb", "-F", "xfs",
                            "-l", "lv2", "-n", "c01", "-s", "C", "-V", "nosuch", expect=9)
        self.assertIn("volume group nosuch does not exist on c01", out)
        self.call("util01", "bb_lv_update", {"allocation_id": allocation_id, "logical_volume_name": "lv1",
                                             "node_name": "c01", "current_size": 500, "state": "M"})
        self.assertEqual(self.vg("c01", "vg1"), [(1000, 500)])
        found = self.cli_json("csm_bb_lv_query", "-a", str(allocation_id))["results"]
        self.assertEqual([(r["logical_volume_name"], r["state"], r["current_size"], r["max_size"]) for r in found],
                         [("lv1", "M", 500, 500)])
        groups = self.cli_json("csm_bb_vg_query", "-n", "c01")["results"]
        self.assertEqual(groups[0]["ssd_info"], [{"serial_number": "S1", "ssd_allocation": 600},
                                                 {"serial_number": "S2", "ssd_allocation": 400}])
        out = self.cli_json("csm_bb_vg_delete", "-n", "c01", "-V", "vg1", expect=9)
        self.assertIn("holds logical volumes: lv1", out)
        self.cli_json("csm_bb_lv_delete", "-a", str(allocation_id), "-l", "lv1", "-n", "c01", "-r", "10", "-w", "20")
        self.assertEqual(self.vg("c01", "vg1"), [(1000, 1000)])
        self.assertEqual(self.cluster.sql("SELECT state, num_bytes_read, num_bytes_written FROM csm_lv_history "
                                          "WHERE allocation_id = %s", (allocation_id,)), [("R", 10, 20)])
        self.assertEqual([r[0] for r in self.cluster.sql(
            "SELECT operation FROM csm_lv_update_history WHERE allocation_id = %s ORDER BY history_time",
            (allocation_id,))], ["I", "U", "D"])
        # an allocation that ends takes its logical volumes with it
        self.cli_json("csm_bb_lv_create", "-a", str(allocation_id), "-c", "100", "-f", "/bb", "-F", "xfs",
                      "-l", "lv3", "-n", "c01", "-s", "C", "-V", "vg1")
        self.cli_json("csm_allocation_delete", "-a", str(allocation_id))
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_lv")[0][0], 0)
        self.assertEqual(self.cluster.sql("SELECT logical_volume_name, state FROM csm_lv_history "
                                          "WHERE allocation_id = %s ORDER BY 1", (allocation_id,)),
                         [("lv1", "R"), ("lv3", "R")])
        self.assertEqual(self.vg("c01", "vg1"), [(1000, 1000)])
        self.cli_json("csm_bb_vg_delete", "-n", "c01", "-V", "vg1")
        out = self.cli_json("csm_bb_vg_delete", "-n", "c01", "-V", "vg1", expect=9)
        self.assertIn("volume group vg1 does not exist on c01", out)

    def test_bb_cmd_runs_on_each_node(self):
        answer = self.call("util01", "bb_cmd", {"node_names": list(NODES), "command_arguments": "gethealth -v"})
        self.assertEqual(answer["nodes"], {"c01": "bbcmd gethealth -v on c01 as 0 uid 0\n",
                                           "c02": "bbcmd gethealth -v on c02 as 0 uid 0\n"})
        self.assertIn("c02: bbcmd gethealth -v on c02 as 0 uid 0\n", answer["command_output"])
        code, message = self.call_error("util01", "bb_cmd", {"node_names": ["c01", "nosuch"]})
        self.assertEqual((code, "nosuch" in message), (9, True), message)
        code, message = self.call_error("util01", "bb_cmd", {"node_names": ["c01"], "command_arguments": "x; reboot"})
        self.assertEqual(code, 9, message)
        try:
            self.call("util01", "bb_cmd", {"node_names": ["c02"], "command_arguments": "fail"})
            self.fail("bb_cmd succeeded")
        except CSMError as exc:
            self.assertEqual(int(exc.errcode), 34)
            self.assertEqual([(e.source, int(e.errcode)) for e in exc.node_errors], [("c02", 40)])
            self.assertIn("no such volume", exc.node_errors[0].errmsg)


    def test_bb_cmd_as_the_caller_on_their_nodes_only(self):
        """As CAST: a user who is not privileged runs it only on nodes of an allocation of theirs, and
        the command runs as that user on them (not as root)."""
        user = self.tree.users[2]
        uid = pwd.getpwnam(user).pw_uid
        self.allocate(user, nodes=("c01",))
        rc, out = self.as_user(user, "util01", "bb_cmd", {"node_names": ["c01"], "command_arguments": "gethealth"})
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads(out)["nodes"], {"c01": "bbcmd gethealth on c01 as %d uid %d\n" % (uid, uid)})
        rc, out = self.as_user(user, "util01", "bb_cmd", {"node_names": ["c01", "c02"], "command_arguments": "x"})
        self.assertEqual((rc, out.split()[0]), (1, "16"), out)  # CSMERR_PERM: c02 is not theirs
        self.assertIn("only 1 of the 2 nodes", out)


class NotImplementedTests(_JobTest):
    def test_ras_subscribe_answers(self):
        for api in ("ras_subscribe", "ras_unsubscribe", "ras_sub_event", "ras_msg_type_get"):
            code, message = self.call_error("c01", api, {"topic": "x"})
            self.assertEqual(code, 11)
            self.assertIn("not implemented", message)
