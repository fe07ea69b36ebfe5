"""Slurm jobs as CSM allocations, and CSM's node verdicts in Slurm (conf/slurm, csm.ras.slurm),
with Debian's real slurmctld, two slurmd (c01, c02) and munge on loopback beside a real CSM tree
(master, aggregator, utility, computes c01 and c02 with TLS)."""

import atexit
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm import slurmlocal
from csm.client import Client
from csm.cluster import PROJECT, LocalCluster

NODES = ("c01", "c02")
SCRIPTS = os.path.join(PROJECT, "conf", "slurm")
_lab = {}


class Lab:
    """The CSM tree and Slurm, started once for this module (stopped at exit)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="csm-slurm-")
        os.chmod(self.dir, 0o755)
        csm_dir = os.path.join(self.dir, "csm")
        slurm_dir = os.path.join(self.dir, "slurm")
        self.log = os.path.join(self.dir, "csm-slurm.log")
        prolog = self._script("prologs/privileged_prolog", '[ -e "%s/fail.$CSM_NODE_NAME" ] && '
                              '{ echo "failing on purpose" >&2; exit 1; }\nexec %s "$@"'
                              % (self.dir, os.path.join(PROJECT, "conf", "prologs", "privileged_prolog")))
        self.cluster = LocalCluster(csm_dir, computes=2, aggregators=1, utilities=1, tls=True, fast_db=True, extra={
            "master": {"ras.slurm.enabled": True, "ras.slurm.scontrol": slurmlocal.which("scontrol"),
                       "ras.slurm.slurm_conf": os.path.join(slurm_dir, "slurm.conf")},
            "compute": {"prolog": prolog}})
        self.defaults = os.path.join(self.dir, "csm-slurm")
        with open(self.defaults, "w") as f:  # as /etc/default/csm-slurm; a compute's socket by its name
            f.write("CSM_BIN=%s\nCSM_SOCKET=%s/${SLURMD_NODENAME:-util01}.sock\nSLURM_CONF=%s\nCSM_SLURM_LOG=%s\n"
                    % (os.path.dirname(sys.executable), csm_dir, os.path.join(slurm_dir, "slurm.conf"), self.log))
        wrap = lambda name: self._script("slurm/" + name, "CSM_SLURM_DEFAULTS=%s exec %s" % (  # noqa: E731
            self.defaults, os.path.join(SCRIPTS, name)))
        self.slurm = slurmlocal.LocalSlurm(slurm_dir, NODES, cpus_per_node=1, settings=[
            ("PrologSlurmctld", wrap("csm-slurmctld-prolog")), ("EpilogSlurmctld", wrap("csm-slurmctld-epilog")),
            ("HealthCheckProgram", wrap("csm-healthcheck")), ("HealthCheckInterval", 3600)])
        self.healthcheck = os.path.join(self.dir, "slurm", "csm-healthcheck")

    def _script(self, name, body):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n%s\n" % body)
        os.chmod(path, 0o755)
        return path

    def start(self):
        self.cluster.start()
        self.client = Client(self.cluster.daemons["util01"].socket)
        self.cluster.wait_for(lambda: len(self.call("node_attributes_query", {"node_names": list(NODES)})
                                          ["results"]) == 2, timeout=60, what="both computes' inventory")
        self.call("node_attributes_update", {"node_names": list(NODES), "state": "IN_SERVICE"})
        self.slurm.start()
        return self

    def call(self, command, body):
        try:
            return self.client.call(command, body)
        except OSError:  # the socket closed under a long idle wait: once more on a new one
            self.client.close()
            self.client = Client(self.cluster.daemons["util01"].socket)
            return self.client.call(command, body)

    def stop(self):
        try:
            self.slurm.stop()
        finally:
            if getattr(self, "client", None) is not None:
                self.client.close()
            self.cluster.stop()
            shutil.rmtree(self.dir, ignore_errors=True)


def lab():
    if os.geteuid() != 0:
        raise SkipTest("slurmd and slurmctld run as root here (SlurmUser=root): run as root")
    missing = slurmlocal.missing_tools()
    if missing:
        raise SkipTest("Debian's slurm-wlm is not installed (no %s): make slurm" % ", ".join(missing))
    if "lab" not in _lab:
        running = Lab()
        _lab["lab"] = running
        atexit.register(running.stop)
        running.start()
    return _lab["lab"]


class SlurmJobTests(SynchronousTestCase):

    def setUp(self):
        self.lab = lab()
        self.slurm = self.lab.slurm
        self.addCleanup(self._restore)

    def _restore(self):
        """Both nodes IN_SERVICE in CSM and idle in Slurm again, no job left."""
        self.slurm.run("scancel", "--user=root")
        for node in NODES:
            if os.path.exists(os.path.join(self.lab.dir, "fail." + node)):
                os.remove(os.path.join(self.lab.dir, "fail." + node))
        self.lab.call("node_attributes_update", {"node_names": list(NODES), "state": "IN_SERVICE"})
        self.slurm.wait(lambda: set(self.slurm.node_states().values()) == {"idle"}, "both nodes idle again")

    def wait(self, predicate, what, timeout=60):
        return self.lab.cluster.wait_for(predicate, timeout=timeout, interval=0.2, what=what)

    def sbatch(self, *argv):
        code, out = self.slurm.run("sbatch", "--parsable", *argv)
        self.assertEqual(code, 0, out)
        return int(out.strip().split(";")[0])

    def allocation(self, job):
        """The newest allocation of Slurm job ``job`` (CSMError when there is none)."""
        return self.lab.call("allocation_query", {"primary_job_id": job})["allocations"][0]

    def test_batch_job_is_an_allocation_over_its_nodes_until_it_ends(self):
        job = self.sbatch("-N2", "--wrap", "touch %s/started.$SLURM_JOB_ID; sleep 3; exit 3" % self.lab.dir)
        running = self.wait(lambda: (lambda a: a if a.get("state") == "running" else None)(self.allocation(job)),
                            "the job's allocation")
        self.assertEqual(sorted(running["compute_nodes"]), list(NODES))
        self.assertEqual((running["user_name"], running["primary_job_id"], running["secondary_job_id"]),
                         ("root", job, 0))
        self.wait(lambda: os.path.exists(os.path.join(self.lab.dir, "started.%d" % job)), "the job to start")
        ended = self.wait(lambda: (lambda a: a if a.get("history") else None)(self.allocation(job)),
                          "the allocation in history")
        self.assertEqual(ended["history"]["exit_status"], 3)
        details = self.lab.call("allocation_query_details", {"allocation_id": ended["allocation_id"]})
        self.assertEqual(sorted(node["node_name"] for node in details["node_accounting"]), list(NODES))
        self.assertTrue(all(node.get("cpu_usage") is not None for node in details["node_accounting"]), details)

    def test_interactive_job_is_an_allocation(self):
        code, out = self.slurm.run("srun", "-N2", "sh", "-c", "echo $SLURM_JOB_ID $SLURMD_NODENAME")
        self.assertEqual(code, 0, out)
        lines = sorted(line.split() for line in out.splitlines() if re.match(r"\d+ c\d+$", line))  # not srun's notes
        self.assertEqual([node for _, node in lines], list(NODES), out)
        ended = self.wait(lambda: (lambda a: a if a.get("history") else None)(self.allocation(int(lines[0][0]))),
                          "the allocation in history")
        self.assertEqual((sorted(ended["compute_nodes"]), ended["history"]["exit_status"]), (list(NODES), 0))

    def _log_since(self, text):
        with open(self.lab.log) as f:
            return [line for line in f if text in line][-1]

    def test_prolog_failure_on_one_node_keeps_the_job_off_and_leaves_no_allocation(self):
        open(os.path.join(self.lab.dir, "fail.c02"), "w").close()
        job = self.sbatch("-N2", "--wrap", "touch %s/started.$SLURM_JOB_ID" % self.lab.dir)
        self.wait(lambda: int(self.slurm.job(job).get("Restarts", 0)) >= 1, "the job requeued")
        self.assertFalse(os.path.exists(os.path.join(self.lab.dir, "started.%d" % job)))
        self.assertEqual(self.lab.call("allocation_query_active_all", {}).get("allocations", []), [])
        self.assertIn("csm_allocation_create failed", self._log_since("job %d.0" % job))
        # the node CSM failed is drained in Slurm, with the RAS event that failed it
        state, reason = self.wait(lambda: (lambda n: n if "drain" in n[0] else None)(
            self.slurm.nodes_with_reasons()["c02"]), "c02 drained")
        self.assertEqual(reason, "csm: csm.api.allocation_prolog_failure")
        self.wait(lambda: self.slurm.job(job)["JobState"] == "PENDING", "the job pending (its requeue complete)")
        self.assertFalse(os.path.exists(os.path.join(self.lab.dir, "started.%d" % job)))
        with open(self.lab.log) as f:
            self.assertNotIn("failed", "".join(line for line in f if "job %d.0: csm_allocation_delete" % job in line))

    def test_ras_event_drains_the_node_and_its_return_resumes_it(self):
        self.lab.call("ras_event_create", {"msg_id": "csm.status.down", "location_name": "c01"})
        state, reason = self.wait(lambda: (lambda n: n if "drain" in n[0] else None)(
            self.slurm.nodes_with_reasons()["c01"]), "c01 drained")
        self.assertEqual(reason, "csm: csm.status.down")
        self.assertEqual(self.slurm.node_states()["c02"], "idle")
        self.lab.call("node_attributes_update", {"node_names": ["c01"], "state": "IN_SERVICE"})
        self.wait(lambda: self.slurm.node_states()["c01"] == "idle", "c01 resumed")

    def test_a_drain_that_is_not_ours_stays(self):
        self.slurm.run("scontrol", "update", "nodename=c02", "state=drain", "reason=disk swap")
        self.lab.call("ras_event_create", {"msg_id": "csm.status.down", "location_name": "c02"})
        self.wait(lambda: self.lab.call("node_attributes_query", {"node_names": ["c02"]})["results"][0]["state"]
                  == "SOFT_FAILURE", "c02 in SOFT_FAILURE")
        self.lab.call("node_attributes_update", {"node_names": ["c02"], "state": "IN_SERVICE"})
        time.sleep(2)  # the master's feed had its chance to (wrongly) resume it
        self.assertEqual(self.slurm.nodes_with_reasons()["c02"][1], "disk swap")
        self.slurm.run("scontrol", "update", "nodename=c02", "state=resume")

    def healthcheck(self, node):
        proc = subprocess.run([self.lab.healthcheck], env={"SLURMD_NODENAME": node}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout)

    def test_health_check_drains_and_resumes_what_the_master_missed(self):
        self.lab.call("ras_event_create", {"msg_id": "csm.status.down", "location_name": "c02"})
        self.wait(lambda: "drain" in self.slurm.node_states()["c02"], "c02 drained")
        self.slurm.run("scontrol", "update", "nodename=c02", "state=resume")  # Slurm lost the drain
        self.healthcheck("c02")
        self.assertEqual(self.slurm.nodes_with_reasons()["c02"][1], "csm: SOFT_FAILURE")
        self.healthcheck("c01")  # IN_SERVICE and not drained: nothing to do
        self.assertEqual(self.slurm.node_states()["c01"], "idle")
        # a drain of ours on a node CSM has IN_SERVICE (the master was away when it came back)
        self.slurm.run("scontrol", "update", "nodename=c01", "state=drain", "reason=csm: csm.status.down")
        self.healthcheck("c01")
        self.assertEqual(self.slurm.node_states()["c01"], "idle")

    def test_changes_of_one_node_apply_in_order(self):
        before = self.lab.cluster.log_text("master").count("Slurm: c01 state=resume")
        # one transaction: both notifications arrive together
        self.lab.cluster.sql("UPDATE csm_node SET state = 'HARD_FAILURE' WHERE node_name = 'c01'; "
                             "UPDATE csm_node SET state = 'IN_SERVICE' WHERE node_name = 'c01'")
        self.wait(lambda: self.lab.cluster.log_text("master").count("Slurm: c01 state=resume") > before,
                  "the master to resume c01")
        log = self.lab.cluster.log_text("master")
        self.assertLess(log.rindex("Slurm: c01 state=drain reason=csm: CSM API"), log.rindex("Slurm: c01 state=resume"))
        self.assertEqual(self.slurm.node_states()["c01"], "idle")

    def test_a_change_made_while_the_master_was_not_listening_reaches_slurm(self):
        from csm.ras.slurm import APPLICATION_NAME
        feed = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
        self.lab.cluster.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                             (APPLICATION_NAME,))
        self.wait(lambda: self.lab.cluster.sql(feed, (APPLICATION_NAME,))[0][0] == 0, "the feed's session gone")
        self.lab.cluster.sql("SELECT fn_csm_node_state_update(ARRAY['c02'], 'SOFT_FAILURE', 'RAS EVENT', NULL, 1, "
                             "'csm.status.down')")
        state, reason = self.wait(lambda: (lambda n: n if "drain" in n[0] else None)(
            self.slurm.nodes_with_reasons()["c02"]), "c02 drained once the master listens again")
        self.assertEqual(reason, "csm: csm.status.down")

    def test_csm_away_at_start_requeues_the_job_and_drains_nothing(self):
        with open(self.lab.defaults) as f:
            settings = f.read()
        self.addCleanup(lambda: open(self.lab.defaults, "w").write(settings))
        with open(self.lab.defaults, "a") as f:
            f.write("CSM_SOCKET=%s/nobody.sock\n" % self.lab.dir)  # the local CSM daemon is not there
        job = self.sbatch("-N2", "--wrap", "touch %s/started.$SLURM_JOB_ID" % self.lab.dir)
        self.wait(lambda: int(self.slurm.job(job).get("Restarts", 0)) >= 1, "the job requeued")
        self.assertIn("csm_allocation_create failed", self._log_since("job %d.0" % job))
        self.assertFalse(os.path.exists(os.path.join(self.lab.dir, "started.%d" % job)))
        self.assertEqual(self.lab.call("allocation_query_active_all", {}).get("allocations", []), [])
        self.assertEqual([node for node, state in self.slurm.node_states().items() if "drain" in state], [])
