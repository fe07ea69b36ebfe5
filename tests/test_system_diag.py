"""Diagnostics through real daemons and the private PostgreSQL: the csm_diag_* commands and csm-diag."""

import json
import os
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT
from csm.errors import ErrorCode
from tests.clusters import shared_cluster

SAMPLES = os.path.join(PROJECT, "conf", "diag")


def diag_cluster():
    cluster = shared_cluster("diag", computes=2, aggregators=1, utilities=0, tls=False)
    cluster.wait_for(lambda: cluster.sql("SELECT count(*) FROM csm_node WHERE type = 'compute'")[0][0] == 2,
                     timeout=30, what="both computes' inventory")
    return cluster


def csm_diag(cluster, *args):
    env = cluster.env()
    env["CSM_SOCKET"] = cluster.daemons["c01"].socket
    proc = subprocess.run([sys.executable, "-m", "csm.diag.runner"] + list(args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, timeout=120, text=True)
    return proc.returncode, proc.stdout


def write_checks(directory, checks):
    for name, text in checks.items():
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)


class DiagCommandTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = diag_cluster()

    def cli(self, *args):
        return self.cluster.cli("c01", *args)

    def test_run_result_end_and_queries(self):
        rc, out = self.cli("csm_diag_run_begin", "-r", "9001", "-a", "77", "-l", "/tmp/diag9001", "-c", "mydiag -x")
        self.assertEqual((rc, out), (0, "---\n# csm_diag_run_begin has completed successfully!\n...\n"))
        rc, out = self.cli("csm_diag_result_create", "-r", "9001", "-t", "dgemm", "-n", "c01", "-s", "PASS",
                           "-S", "SN1", "-b", "2026-01-02 03:04:05", "-l", "/tmp/diag9001/c01")
        self.assertEqual((rc, out), (0, "csm_diag_result_create has completed successfully!\n"))
        rc, out = self.cli("csm_diag_run_query_details", "-r", "9001")
        self.assertEqual(rc, 0, out)
        self.assertIn("runData:\n  history_time:      \n  run_id:           9001 \n", out)
        self.assertIn("  diag_status:      RUNNING \n", out)
        self.assertIn("Total_Result_Records: 1\nResult_Record_1:\n", out)
        self.assertIn("  test_name:        dgemm\n  node_name:        c01\n  serial_number:    SN1\n"
                      "  begin_time:       2026-01-02 03:04:05\n", out)

        rc, out = self.cli("csm_diag_run_end", "-r", "9001", "-s", "COMPLETED", "-i", "f")
        self.assertEqual((rc, out), (0, "---\n# csm_diag_run_end has completed successfully!\n...\n"))
        rc, out = self.cli("csm_diag_run_query", "-r", "9001", "--format", "json")
        self.assertEqual(rc, 0, out)
        run = json.loads(out)["runs"][0]
        self.assertEqual((run["diag_status"], run["allocation_id"], run["cmd_line"], run["inserted_ras"]),
                         ("COMPLETED", 77, "mydiag -x", False))
        self.assertTrue(run["end_time"] and run["history_time"])
        rc, out = self.cli("csm_diag_run_query", "-a", "77", "-s", "COMPLETED,FAILED")
        self.assertEqual(rc, 0, out)
        self.assertTrue(out.startswith("---\nTotal_Records: 1\nRECORD_1:\n  run_id:        9001\n"
                                       "  allocation_id: 77\n"), out)
        self.assertIn("  inserted_ras:  f\n  log_dir:       /tmp/diag9001\n  status:        COMPLETED\n...\n", out)
        rc, out = self.cli("csm_diag_run_query_details", "-r", "9001", "--format", "json")
        details = json.loads(out)["details"]
        self.assertEqual([(d["node_name"], d["status"], d["log_file"]) for d in details],
                         [("c01", "PASS", "/tmp/diag9001/c01")])
        self.assertTrue(details[0]["history_time"])
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_diag_result WHERE run_id = 9001"), [(0,)])

    def test_bad_input(self):
        rc, out = self.cli("csm_diag_run_end", "-r", "424242", "-s", "COMPLETED")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertEqual(out, "csm_diag_run_end FAILED: errcode: %d errmsg: diagnostic run 424242 is not running\n"
                         % ErrorCode.CSMERR_INVALID_PARAM)
        rc, out = self.cli("csm_diag_result_create", "-r", "424242", "-t", "x", "-n", "c01", "-s", "PASS")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("diagnostic run 424242 is not running", out)
        rc, out = self.cli("csm_diag_run_end", "-r", "1", "-s", "RUNNING")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("invalid value 'RUNNING' for status", out)
        rc, out = self.cli("csm_diag_run_query")
        self.assertEqual(rc, ErrorCode.CSMERR_MISSING_PARAM, out)
        rc, out = self.cli("csm_diag_run_query", "-r", "1,x")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("run_ids: expected integers", out)
        rc, out = self.cli("csm_diag_run_query", "-r", "424242")
        self.assertEqual((rc, out), (ErrorCode.CSMI_NO_RESULTS, "---\nTotal_Records: 0\n# No matching records found.\n...\n"))
        rc, out = self.cli("csm_diag_run_query_details", "-r", "424242")
        self.assertEqual(rc, ErrorCode.CSMI_NO_RESULTS, out)
        self.assertEqual(self.cli("csm_diag_run_begin", "-r", "9100", "-a", "1", "-l", "/tmp")[0], 0)
        rc, out = self.cli("csm_diag_run_begin", "-r", "9100", "-a", "1", "-l", "/tmp")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("diagnostic run 9100 is running already", out)
        rc, out = self.cli("csm_diag_result_create", "-r", "9100", "-t", "x", "-n", "c01", "-s", "PASS",
                           "-b", "not a time")
        self.assertNotEqual(rc, 0, out)
        self.assertNotIn("Traceback", out)
        self.assertEqual(self.cli("csm_diag_run_end", "-r", "9100", "-s", "CANCELED")[0], 0)
        rc, out = self.cli("csm_diag_run_begin", "-r", "9100", "-a", "1", "-l", "/tmp")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("diagnostic run 9100 has ended already", out)


class CsmDiagTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = diag_cluster()
        self.logs = tempfile.mkdtemp(prefix="csm-diag-logs-")

    def test_sample_checks_pass_and_are_queryable(self):
        rc, out = csm_diag(self.cluster, "-n", "c[01-02]", "-d", SAMPLES, "-l", self.logs)
        self.assertEqual(rc, 0, out)
        run_id = int(out.split()[2])
        self.assertIn("run %d: COMPLETED\n" % run_id, out)
        rc, out = self.cluster.cli("c02", "csm_diag_run_query_details", "-r", str(run_id), "--format", "json")
        self.assertEqual(rc, 0, out)
        result = json.loads(out)
        self.assertEqual(result["run_data"]["diag_status"], "COMPLETED")
        self.assertEqual(sorted((d["node_name"], d["test_name"], d["status"]) for d in result["details"]),
                         [(node, test, "PASS") for node in ("c01", "c02")
                          for test in ("daemon_round_trip", "gpu_count", "memory_size")])
        with open(os.path.join(self.logs, "run_%d" % run_id, "c02.daemon_round_trip.log")) as f:
            self.assertIn("node c02: echo through the master", f.read())
        # the diagnostics allocation is gone, into history
        rows = self.cluster.sql("SELECT type, job_name FROM csm_allocation_history WHERE allocation_id = %s",
                                (result["run_data"]["allocation_id"],))
        self.assertEqual(rows, [("diagnostics", "csm-diag")])

    def test_failing_node_goes_to_soft_failure(self):
        checks = tempfile.mkdtemp(prefix="csm-diag-checks-")
        write_checks(checks, {
            "fan_speed": '#!/bin/sh\necho "fan on $CSM_NODE_NAME"\n[ "$CSM_NODE_NAME" = c02 ] && exit 3\nexit 0\n',
            "README": "not a check (not executable)\n"})
        os.chmod(os.path.join(checks, "README"), 0o644)
        rc, out = csm_diag(self.cluster, "-n", "c01,c02", "-d", checks, "-l", self.logs, "--soft_failure")
        self.assertEqual(rc, 1, out)
        self.assertIn("c02          fan_speed                    FAIL (exit 3)\n", out)
        run_id = int(out.split()[2])
        self.assertIn("run %d: COMPLETED_FAIL\n" % run_id, out)
        rows = self.cluster.sql("SELECT node_name, rtrim(status) FROM csm_diag_result_history WHERE run_id = %s "
                                "ORDER BY 1", (run_id,))
        self.assertEqual(rows, [("c01", "PASS"), ("c02", "FAIL")])
        self.assertEqual(self.cluster.sql("SELECT inserted_ras FROM csm_diag_run_history WHERE run_id = %s",
                                          (run_id,)), [(True,)])
        self.cluster.wait_for(lambda: self.cluster.sql("SELECT state::text FROM csm_node WHERE node_name = 'c02'")
                              == [("SOFT_FAILURE",)], timeout=10, what="c02 in SOFT_FAILURE")
        events = self.cluster.sql("SELECT location_name, message FROM csm_ras_event_action "
                                  "WHERE msg_id = 'csm.diag.check_failure'")
        self.assertIn(("c02", "Diagnostic check fan_speed failed on c02 (run %d, rc=3)." % run_id), events)
        self.assertNotIn("c01", [row[0] for row in events])
        rc, out = self.cluster.cli("c01", "csm_node_attributes_update", "-n", "c02", "-s", "IN_SERVICE")
        self.assertEqual(rc, 0, out)

    def test_bad_input(self):
        rc, out = csm_diag(self.cluster, "-n", "c01", "-d", os.path.join(self.logs, "nowhere"))
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("is not a directory", out)
        rc, out = csm_diag(self.cluster, "-n", "c[01-", "-d", SAMPLES)
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        self.assertIn("csm-diag FAILED: invalid node range 'c[01-'", out)
        rc, out = csm_diag(self.cluster, "-n", "c01,nosuchnode", "-d", SAMPLES, "-l", self.logs)
        self.assertNotEqual(rc, 0, out)
        self.assertTrue(out.startswith("csm-diag FAILED: errcode:"), out)
        self.assertNotIn("Traceback", out)


class UnreachableNodeTests(SynchronousTestCase):
    def test_node_without_daemon_gets_an_error_result(self):
        from csm.cluster import LocalCluster
        cluster = LocalCluster(tempfile.mkdtemp(prefix="csm-diag-down-"), computes=2, aggregators=1, utilities=0,
                               tls=False)
        self.addCleanup(cluster.stop)
        cluster.start()
        cluster.wait_for(lambda: cluster.sql("SELECT count(*) FROM csm_node WHERE type = 'compute'")[0][0] == 2,
                         timeout=30, what="both computes' inventory")
        cluster.daemons["c02"].stop()
        checks = tempfile.mkdtemp(prefix="csm-diag-checks-")
        write_checks(checks, {"true": "#!/bin/sh\nexit 0\n"})
        rc, out = csm_diag(cluster, "-n", "c01,c02", "-d", checks, "-l", checks)
        self.assertEqual(rc, 1, out)
        self.assertIn("c01          true                         PASS\n", out)
        self.assertIn("c02          true                         ERROR\n", out)
        self.assertIn("the epilog: failed on 1 of 2 nodes (c02)", out)  # the diagnostics allocation's delete
        run_id = int(out.split()[2])
        self.assertEqual(cluster.sql("SELECT node_name, rtrim(status) FROM csm_diag_result_history WHERE run_id = %s "
                                     "ORDER BY 1", (run_id,)), [("c01", "PASS"), ("c02", "ERROR")])
        with open(os.path.join(checks, "run_%d" % run_id, "c02.true.log")) as f:
            self.assertIn("no result: ", f.read())
