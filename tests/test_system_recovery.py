"""csm_soft_failure_recovery through the tree: a multicast to the computes' recovery scripts."""

import json
import os
import stat
import tempfile

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import LocalCluster


class RecoveryTests(SynchronousTestCase):
    def test_recovery_and_retries_exceeded(self):
        run_dir = tempfile.mkdtemp(prefix="csm-recovery-")
        script = os.path.join(run_dir, "soft_failure_recovery")
        with open(script, "w") as f:
            f.write('#!/bin/sh\n[ "$CSM_NODE_NAME" = c02 ] && { echo "fan still broken"; exit 3; }\nexit 0\n')
        os.chmod(script, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
        cluster = LocalCluster(run_dir, computes=2, aggregators=2, utilities=0, tls=False,
                               extra={"compute": {"recovery_script": script}})
        self.addCleanup(cluster.stop)
        cluster.start()

        def states():
            connection = psycopg2.connect(cluster.postgres.dsn_for("csmdb"))
            try:
                with connection.cursor() as cur:
                    cur.execute("SELECT node_name, state::text FROM csm_node WHERE type = 'compute' ORDER BY 1")
                    return dict(cur.fetchall())
            finally:
                connection.close()
        cluster.wait_for(lambda: len(states()) == 2, timeout=30, what="both computes' inventory")
        for node in ("c01", "c02"):
            rc, out = cluster.cli("c01", "csm_ras_event_create", "-m", "admin.common.soft_failure", "-l", node,
                                  "-k", "comment=test")
            self.assertEqual(rc, 0, out)
        self.assertEqual(states(), {"c01": "SOFT_FAILURE", "c02": "SOFT_FAILURE"})

        rc, out = cluster.cli("c02", "csm_soft_failure_recovery", "-r", "2")
        self.assertEqual(rc, 0, out)  # CAST: success, listing the nodes that failed
        self.assertEqual(out.splitlines()[:3], ["---", "# Soft Failure cleaned up.", "# 1 Nodes Failed:"])
        self.assertIn("# c02[55]: ", out)
        self.assertIn("fan still broken", out)
        self.assertEqual(states(), {"c01": "IN_SERVICE", "c02": "SOFT_FAILURE"})

        rc, out = cluster.cli("c01", "csm_soft_failure_recovery", "--retry", "2", "--format", "json")
        self.assertEqual(rc, 0, out)
        self.assertEqual([e["source"] for e in json.loads(out)["node_errors"]], ["c02"])
        cluster.wait_for(lambda: states()["c02"] == "HARD_FAILURE", timeout=10,
                         what="c02 out of service after two failed recoveries")
        rc, out = cluster.cli("c01", "csm_node_query_state_history", "-n", "c01", "--format", "json")
        self.assertIn("SOFT FAILURE RECOVERY", [h["alteration"] for h in json.loads(out)["results"]])
        rc, out = cluster.cli("c01", "csm_soft_failure_recovery")
        self.assertEqual((rc, out), (4, "# No nodes currently in soft failure.\n"))  # nothing left in SOFT_FAILURE

    def test_recurring_recovery_from_the_master_config(self):
        cluster = LocalCluster(tempfile.mkdtemp(prefix="csm-recurring-"), computes=1, aggregators=1, utilities=0,
                               tls=False, extra={"master": {"recurring_tasks": {
                                   "enabled": True, "soft_fail_recovery": {"enabled": True, "interval": "00:00:02",
                                                                           "retry": 3}}}})
        self.addCleanup(cluster.stop)
        cluster.start()
        cluster.wait_for(lambda: cluster.cli("c01", "csm_node_attributes_query", "-n", "c01")[0] == 0,
                         timeout=30, what="c01's inventory")
        rc, out = cluster.cli("c01", "csm_ras_event_create", "-m", "admin.common.soft_failure", "-l", "c01")
        self.assertEqual(rc, 0, out)
        cluster.wait_for(lambda: '"state": "IN_SERVICE"' in cluster.cli("c01", "csm_node_attributes_query", "-n",
                                                                        "c01", "--format", "json")[1],
                         timeout=20, what="the recurring recovery to bring c01 back")
