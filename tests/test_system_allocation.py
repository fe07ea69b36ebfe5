"""Allocations and steps through a real tree: master, 2 aggregators, 4 computes, private PostgreSQL.

The prolog and epilog are shell scripts that leave a marker file per node and
allocation; a control file makes one node's prolog fail or hang.
"""

import atexit
import json
import os
import stat
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import LocalCluster
from csm.node.cgroup import is_cgroup2, remove_tree
from tests.clusters import sql

NODES = ("c01", "c02", "c03", "c04")
SCRIPT = """#!/bin/sh
marks=%(marks)s
kind=$(basename "$0")
echo "$kind $* user=$CSM_USER_NAME job=$CSM_PRIMARY_JOB_ID.$CSM_SECONDARY_JOB_ID step=$CSM_STEP_ID" \\
    > "$marks/$CSM_NODE_NAME.$CSM_ALLOCATION_ID.$kind${CSM_STEP_ID:+.step$CSM_STEP_ID}"
echo "$CSM_NODE_NAME $CSM_ALLOCATION_ID $kind" >> "$marks/runs"
[ -e "$marks/slow-$kind-$CSM_NODE_NAME" ] && sleep 3
[ -e "$marks/fail-$kind-$CSM_NODE_NAME" ] && { echo "no scratch space"; exit 3; }
[ -e "$marks/hang-$kind-$CSM_NODE_NAME" ] && sleep 120
exit 0
"""


def _cgroup_parent():
    """A writable cgroup v2 directory on this machine, or None."""
    for candidate in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if is_cgroup2(candidate) and os.access(candidate, os.W_OK):
            return candidate
    return None


def _processes(cmdline, marker=b"\0CSM_NODE_NAME="):
    """How many processes a prolog started (``marker`` in their environment) run with exactly
    this command line (a machine shared with other work may run the same command)."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if f.read() != cmdline:
                    continue
            with open("/proc/%s/environ" % pid, "rb") as f:
                count += marker in b"\0" + f.read()
        except OSError:
            pass
    return count


class _Tree:
    """The cluster of this module, started by the first test that needs it (trial has no
    class fixtures) and stopped when the process exits."""

    started = None

    @classmethod
    def get(cls):
        if cls.started is None:
            tree = cls()
            tree.start()
            atexit.register(tree.stop)
            cls.started = tree
        return cls.started

    def start(self):
        self.run_dir = tempfile.mkdtemp(prefix="csm-alloc-")
        os.chmod(self.run_dir, 0o755)
        self.marks = os.path.join(self.run_dir, "marks")
        os.makedirs(self.marks)
        scripts = {}
        for kind in ("privileged_prolog", "privileged_epilog"):
            path = scripts[kind] = os.path.join(self.run_dir, kind)
            with open(path, "w") as f:
                f.write(SCRIPT % {"marks": self.marks})
            os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        parent = _cgroup_parent()
        self.cgroup_parent = os.path.join(parent, "csm-test-%d" % os.getpid()) if parent else ""
        self.cluster = LocalCluster(self.run_dir, computes=4, aggregators=2, utilities=1, tls=False, extra={
            "compute": {"prolog": scripts["privileged_prolog"], "epilog": scripts["privileged_epilog"],
                        "cgroup_root": os.path.join(self.cgroup_parent, "{node}") if parent else "none"},
            "master": {"log": {"transaction_file": os.path.join(self.run_dir, "transactions.log"),
                               "allocation_metrics_file": os.path.join(self.run_dir, "metrics.log")}}})
        # Short API timeouts, so that a hanging prolog is killed within the test.
        with open(os.path.join(self.run_dir, "csm_api.cfg"), "w") as f:
            json.dump({"csm_allocation_create": 14, "csm_allocation_delete": 14,
                       "csm_allocation_update_state": 14}, f)
        try:
            self.cluster.start()
            self.cluster.wait_complete("c01", timeout=60)
            self.cluster.wait_for(lambda: len(self.states()) == 4, timeout=30, what="the computes' inventory")
        except Exception:
            self.cluster.stop()
            raise

    def stop(self):
        self.cluster.stop()
        if self.cgroup_parent and os.path.isdir(self.cgroup_parent):
            remove_tree(self.cgroup_parent)  # deepest first, waiting out EBUSY

    def query(self, statement, args=()):
        return sql(self.cluster, statement, args)

    def states(self):
        return dict(self.query("SELECT node_name, state::text FROM csm_node WHERE type = 'compute'"))


class AllocationSystemTests(SynchronousTestCase):
    def setUp(self):
        tree = _Tree.get()
        self.cluster, self.marks, self.run_dir = tree.cluster, tree.marks, tree.run_dir
        self.cgroup_parent, self.query, self.states = tree.cgroup_parent, tree.query, tree.states
        self.addCleanup(self._delete_leftovers)
        for name in os.listdir(self.marks):
            os.unlink(os.path.join(self.marks, name))
        rc, out = self.cluster.cli("c01", "csm_node_attributes_update", "-n", ",".join(NODES), "-s", "IN_SERVICE",
                                   "--force")
        self.assertEqual(rc, 0, out)

    def _delete_leftovers(self):
        """A failed test leaves no allocation behind for the next one."""
        for (allocation_id,) in self.query("SELECT allocation_id FROM csm_allocation"):
            self.cluster.cli("util01", "csm_allocation_delete", "-a", str(allocation_id))

    def cli_json(self, command, *args, expect=0, daemon="util01"):
        rc, out = self.cluster.cli(daemon, command, *(args + ("--format", "json")))
        self.assertEqual(rc, expect, out)
        return json.loads(out)

    def marker(self, node, allocation_id, kind, step=None):
        name = "%s.%d.privileged_%s%s" % (node, allocation_id, kind, ".step%d" % step if step else "")
        path = os.path.join(self.marks, name)
        if not os.path.exists(path):
            return None
        with open(path) as f:
            return f.read()

    def test_lifecycle(self):
        created = self.cli_json("csm_allocation_create", "-j", "1001", "-J", "2", "-n", ",".join(NODES),
                                "-u", "root", "--user_flags", "gpfs nvme", "--system_flags", "smt4")
        allocation_id = created["allocation_id"]
        self.assertEqual(created["state"], "running")
        self.assertEqual(created["compute_nodes"], list(NODES))
        for node in NODES:
            mark = self.marker(node, allocation_id, "prolog")
            self.assertIsNotNone(mark, node)
            self.assertIn("--type allocation --user_flags gpfs nvme --sys_flags smt4", mark)
            self.assertIn("user=root job=1001.2", mark)
        baseline = dict(self.query("SELECT node_name, cpu_usage FROM csm_allocation_node WHERE allocation_id = %s",
                                   (allocation_id,)))
        self.assertEqual(sorted(baseline), list(NODES))
        self.assertTrue(all(value >= 0 for value in baseline.values()), baseline)  # readable on every node
        if self.cgroup_parent:
            for node in NODES:
                self.assertTrue(os.path.isdir(os.path.join(self.cgroup_parent, node, "allocation_%d" % allocation_id)))

        # Occupied nodes: an exclusive create over c02 fails and names the node.
        failed = self.cli_json("csm_allocation_create", "-j", "1002", "-n", "c02", expect=47)
        self.assertEqual([e["source"] for e in failed["node_errors"]], ["c02"])
        self.assertIn("in use by allocation %d" % allocation_id, failed["node_errors"][0]["errmsg"])

        # A step on two nodes, with the step prolog (user flags) and epilog.
        self.cli_json("csm_allocation_step_begin", "-a", str(allocation_id), "-S", "1", "-c", "c01,c03",
                      "-x", "/bin/hostname", "-u", "debug")
        self.assertIn("--type step", self.marker("c03", allocation_id, "prolog", step=1))
        self.assertIsNone(self.marker("c02", allocation_id, "prolog", step=1))
        active = self.cli_json("csm_allocation_step_query_active_all", "-a", str(allocation_id))
        self.assertEqual([s["step_id"] for s in active["steps"]], [1])
        self.cli_json("csm_allocation_step_end", "-a", str(allocation_id), "-s", "1", "-e", "0", "-t", "1.5")
        self.assertIsNotNone(self.marker("c01", allocation_id, "epilog", step=1))
        steps = self.cli_json("csm_allocation_step_query_details", "-a", str(allocation_id), "-s", "1")["steps"]
        self.assertEqual(steps[0]["compute_nodes"], ["c01", "c03"])
        self.assertEqual(steps[0]["history"]["total_u_time"], 1.5)

        self.cli_json("csm_allocation_delete", "-a", str(allocation_id))
        for node in NODES:
            self.assertIsNotNone(self.marker(node, allocation_id, "epilog"), node)
            if self.cgroup_parent:
                self.assertFalse(os.path.exists(os.path.join(self.cgroup_parent, node,
                                                             "allocation_%d" % allocation_id)))
        rows = self.query("SELECT node_name, cpu_usage, gpu_usage FROM csm_allocation_node_history "
                          "WHERE allocation_id = %s ORDER BY node_name", (allocation_id,))
        self.assertEqual([r[0] for r in rows], list(NODES))
        for node, cpu, gpu in rows:
            self.assertGreaterEqual(cpu, 0, node)  # a delta of the node's busy time
            self.assertEqual(gpu, -1)  # no GPU on this machine: unavailable
        history = self.cli_json("csm_allocation_query", "-a", str(allocation_id))["allocations"][0]
        self.assertEqual(history["history"]["exit_status"], 0)
        self.assertEqual(history["state"], "complete")
        self.assertEqual(self.query("SELECT count(*) FROM csm_allocation_node WHERE allocation_id = %s",
                                    (allocation_id,))[0][0], 0)
        details = self.cli_json("csm_allocation_query_details", "-a", str(allocation_id))
        self.assertEqual([t["state"] for t in details["state_transitions"]], ["to-running", "running",
                                                                               "deleting-mcast", "complete"])
        self.assertEqual(details["num_steps"], 1)
        found = self.cli_json("csm_node_find_job", "-n", "c02")["results"]
        self.assertIn(allocation_id, [r["allocation_id"] for r in found])
        with open(os.path.join(self.run_dir, "transactions.log")) as f:
            records = [json.loads(line) for line in f]
        self.assertIn(("allocation", allocation_id), [(r["type"], r["uid"]) for r in records])
        self.assertIn("allocation-step", [r["type"] for r in records])
        # The nodes are free again.
        again = self.cli_json("csm_allocation_create", "-j", "1003", "-n", "c02", "-s", "staging-in")
        self.cli_json("csm_allocation_delete", "-a", str(again["allocation_id"]))

    def test_staging_transitions(self):
        created = self.cli_json("csm_allocation_create", "-j", "2001", "-n", "c01,c02", "-s", "staging-in")
        allocation_id = created["allocation_id"]
        self.assertEqual(created["state"], "staging-in")
        self.assertIsNone(self.marker("c01", allocation_id, "prolog"))  # no prolog while staging in
        self.cli_json("csm_allocation_update_state", "-a", str(allocation_id), "-s", "running")
        self.assertIsNotNone(self.marker("c01", allocation_id, "prolog"))
        same = self.cli_json("csm_allocation_update_state", "-a", str(allocation_id), "-s", "running", expect=42)
        self.assertIn("already running", same["errmsg"])
        out = self.cli_json("csm_allocation_update_state", "-a", str(allocation_id), "-s", "staging-out")
        self.assertEqual(out["state"], "staging-out")
        self.assertIsNotNone(self.marker("c02", allocation_id, "epilog"))
        self.assertEqual(self.query("SELECT state FROM csm_allocation WHERE allocation_id = %s",
                                    (allocation_id,))[0][0], "staging-out")
        os.unlink(os.path.join(self.marks, "c02.%d.privileged_epilog" % allocation_id))
        self.cli_json("csm_allocation_delete", "-a", str(allocation_id))
        self.assertIsNone(self.marker("c02", allocation_id, "epilog"))  # it ran at staging-out, not again

    def _failed_create(self, kind_of_failure, errcode, msg_id, epilog_where_failed):
        open(os.path.join(self.marks, "%s-privileged_prolog-c03" % kind_of_failure), "w").close()
        failed = self.cli_json("csm_allocation_create", "-j", "3001", "-n", ",".join(NODES), expect=34)
        self.assertEqual([(e["source"], e["errcode"]) for e in failed["node_errors"]], [("c03", errcode)])
        rows = self.query("SELECT allocation_id, state FROM csm_allocation_history WHERE primary_job_id = 3001 "
                          "ORDER BY history_time DESC LIMIT 1")
        allocation_id, state = rows[0]
        self.assertEqual(state, "failed")
        for node in ("c01", "c02", "c04"):  # rolled back where the prolog had run
            self.assertIsNotNone(self.marker(node, allocation_id, "epilog"), node)
        # c03's prolog failed and it cleaned up; a killed prolog gets the epilog too
        self.assertEqual(self.marker("c03", allocation_id, "epilog") is not None, epilog_where_failed)
        self.assertEqual(self.query("SELECT count(*) FROM csm_allocation WHERE primary_job_id = 3001")[0][0], 0)
        states = self.states()
        self.assertEqual(states["c03"], "SOFT_FAILURE")
        self.assertEqual({states[n] for n in ("c01", "c02", "c04")}, {"IN_SERVICE"})
        events = self.query("SELECT msg_id FROM csm_ras_event_action WHERE location_name = 'c03' "
                            "AND kvcsv LIKE %s", ("%%allocation_id=%d%%" % allocation_id,))
        self.assertEqual(events, [(msg_id,)])

    def test_prolog_fails_on_one_node(self):
        self._failed_create("fail", 17, "csm.api.allocation_prolog_failure", False)

    def test_prolog_hangs_on_one_node(self):
        self._failed_create("hang", 5, "csm.api.allocation_timeout", True)
        self.assertEqual(_processes(b"sleep\x00120\x00"), 0)  # killed with its whole process group

    def test_node_checks(self):
        self.cli_json("csm_node_attributes_update", "-n", "c04", "-s", "MAINTENANCE")
        unavailable = self.cli_json("csm_allocation_create", "-j", "4001", "-n", "c01,c04", expect=48)
        self.assertEqual([e["source"] for e in unavailable["node_errors"]], ["c04"])
        unknown = self.cli_json("csm_allocation_create", "-j", "4002", "-n", "c01,nosuchnode", expect=46)
        self.assertEqual([e["source"] for e in unknown["node_errors"]], ["nosuchnode"])
        bad_flags = self.cli_json("csm_allocation_create", "-j", "4003", "-n", "c01", "--user_flags", "x;rm", expect=49)
        self.assertIn("user_flags", bad_flags["errmsg"])
        missing = self.cli_json("csm_allocation_delete", "-a", "999999", expect=50)
        self.assertIn("999999", missing["errmsg"])
        self.assertEqual(self.query("SELECT count(*) FROM csm_allocation WHERE primary_job_id > 4000")[0][0], 0)

    def runs(self, node, kind):
        with open(os.path.join(self.marks, "runs")) as f:
            return sum(1 for line in f if line.split()[0] == node and line.split()[2] == "privileged_" + kind)

    def background(self, command, *args):
        """A csm_* command started now (a Popen); its output is JSON."""
        env = self.cluster.env()
        env["CSM_SOCKET"] = self.cluster.daemons["util01"].socket
        return subprocess.Popen([sys.executable, "-c", "import sys; from csm.cli.main import main; "
                                 "sys.argv[0] = %r; sys.exit(main())" % command] + list(args) + ["--format", "json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def test_delete_racing_create(self):
        open(os.path.join(self.marks, "slow-privileged_prolog-c02"), "w").close()
        creating = self.background("csm_allocation_create", "-j", "5001", "-n", "c01,c02")
        self.cluster.wait_for(lambda: self.query("SELECT state FROM csm_allocation WHERE primary_job_id = 5001"),
                              timeout=10, interval=0.05, what="the create to reserve the nodes")
        deleted = self.cli_json("csm_allocation_delete", "-j", "5001")  # waits for the create to finish
        output, _ = creating.communicate(timeout=30)
        self.assertEqual(creating.returncode, 0, output)
        allocation_id = json.loads(output)["allocation_id"]
        self.assertEqual(deleted, {"allocation_id": allocation_id, "state": "complete"})
        self.assertEqual(self.runs("c02", "prolog"), 1)
        self.assertEqual(self.runs("c02", "epilog"), 1)
        self.assertEqual(self.query("SELECT state FROM csm_allocation_history WHERE allocation_id = %s",
                                    (allocation_id,)), [("complete",)])

    def test_aggregator_fails_during_the_prolog(self):
        """The master sends the prolog again through the compute's new primary; it joins the running one."""
        primary = self.cluster.primary_of("c01")
        open(os.path.join(self.marks, "slow-privileged_prolog-c01"), "w").close()
        creating = self.background("csm_allocation_create", "-j", "6001", "-n", ",".join(NODES))
        self.cluster.wait_for(lambda: os.path.exists(os.path.join(self.marks, "runs"))
                              and self.runs("c01", "prolog") == 1, timeout=10, interval=0.05,
                              what="c01's prolog to start")
        self.cluster.daemons[primary].kill()
        try:
            output, _ = creating.communicate(timeout=30)
        finally:
            self.cluster.daemons[primary].start()
            self.cluster.wait_complete("c01", timeout=60)
        self.assertEqual(creating.returncode, 0, output)
        allocation_id = json.loads(output)["allocation_id"]
        self.assertEqual(self.runs("c01", "prolog"), 1)  # joined, not run twice
        self.assertEqual(self.query("SELECT state FROM csm_allocation WHERE allocation_id = %s", (allocation_id,)),
                         [("running",)])
        self.assertEqual(set(self.states().values()), {"IN_SERVICE"})

    def test_private_check_and_queries(self):
        mine = self.cli_json("csm_allocation_create", "-j", "7001", "-n", "c01", "-u", "nobody")
        theirs = self.cli_json("csm_allocation_create", "-j", "7002", "-n", "c02", "-u", "root")
        self.assertEqual(mine["user_name"], "nobody")
        rc, out = self.cluster.cli("util01", "csm_allocation_delete", "-a", str(theirs["allocation_id"]),
                                   user="nobody")
        self.assertEqual(rc, 16, out)  # root's allocation: not for nobody
        rc, out = self.cluster.cli("util01", "csm_allocation_query_details", "-a", str(theirs["allocation_id"]),
                                   user="nobody")
        self.assertEqual(rc, 16, out)
        rc, out = self.cluster.cli("util01", "csm_allocation_query_active_all", "-f", "allocation_id,user_name",
                                   "--format", "json", user="nobody")  # public
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads(out)["allocations"],
                         [{"allocation_id": mine["allocation_id"], "user_name": "nobody"},
                          {"allocation_id": theirs["allocation_id"], "user_name": "root"}])
        ready = self.cli_json("csm_allocation_resources_query", "-a", str(mine["allocation_id"]))["results"]
        self.assertEqual(ready, [{"node_name": "c01", "ready": True}])
        rc, out = self.cluster.cli("util01", "csm_allocation_delete", "-a", str(mine["allocation_id"]), user="nobody")
        self.assertEqual(rc, 0, out)  # the owner may
        self.assertIn("successfully deleted", out)
        self.cli_json("csm_allocation_update_history", "-a", str(mine["allocation_id"]), "-A", "physics",
                      "-r", "maint-window")
        self.assertEqual(self.query("SELECT account, reservation FROM csm_allocation_history "
                                    "WHERE allocation_id = %s", (mine["allocation_id"],)),
                         [("physics", "maint-window")])
        active = self.cli_json("csm_allocation_update_history", "-a", str(theirs["allocation_id"]), "-A", "x",
                               expect=50)
        self.assertIn("not in history", active["errmsg"])
        rc, out = self.cluster.cli("util01", "csm_allocation_query", "-j", "7001")
        self.assertEqual(rc, 0, out)
        self.assertIn("\nprimary_job_id:                 7001\n", out)  # one match: CAST's flat layout
        self.assertIn("\nhistory:\n   end_time:", out)

    def test_prolog_fails_at_running_and_in_a_step(self):
        created = self.cli_json("csm_allocation_create", "-j", "8001", "-n", "c01,c02", "-s", "staging-in",
                                daemon="c01")  # through a compute: it forwards to its aggregator
        allocation_id = created["allocation_id"]
        open(os.path.join(self.marks, "fail-privileged_prolog-c02"), "w").close()
        failed = self.cli_json("csm_allocation_update_state", "-a", str(allocation_id), "-s", "running", expect=34)
        self.assertEqual([e["source"] for e in failed["node_errors"]], ["c02"])
        self.assertEqual(self.query("SELECT state FROM csm_allocation WHERE allocation_id = %s", (allocation_id,)),
                         [("running-failed",)])
        self.assertEqual(self.states()["c02"], "SOFT_FAILURE")
        self.cli_json("csm_allocation_delete", "-a", str(allocation_id), daemon="c02")
        self.assertEqual(self.runs("c01", "epilog") + self.runs("c02", "epilog"), 2)  # everywhere
        # a step prolog that fails removes the step again
        self.cli_json("csm_node_attributes_update", "-n", "c02", "-s", "IN_SERVICE")
        os.unlink(os.path.join(self.marks, "fail-privileged_prolog-c02"))
        allocation_id = self.cli_json("csm_allocation_create", "-j", "8002", "-n", "c01,c02")["allocation_id"]
        open(os.path.join(self.marks, "fail-privileged_prolog-c01"), "w").close()
        step = self.cli_json("csm_allocation_step_begin", "-a", str(allocation_id), "-S", "4", "-c", "c01,c02",
                             "-u", "profile", expect=34)
        self.assertEqual([e["source"] for e in step["node_errors"]], ["c01"])
        steps = self.cli_json("csm_allocation_step_query", "-a", str(allocation_id))["steps"]
        self.assertEqual([(s["step_id"], s["status"], s["history"]["error_message"]) for s in steps],
                         [(4, "killed", "step prolog failed")])
