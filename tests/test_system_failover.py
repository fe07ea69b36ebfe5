"""Aggregator failover with real processes: kill -9, restart, SIGSTOP."""

import json
import os
import signal
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import LocalCluster
from tests.clusters import sql

HEARTBEAT = 3


class FailoverTests(SynchronousTestCase):
    def setUp(self):
        run_dir = tempfile.mkdtemp(prefix="csm-failover-")
        os.chmod(run_dir, 0o755)
        self.cluster = LocalCluster(run_dir, computes=2, aggregators=2, utilities=0, tls=True,
                                    heartbeat_interval=HEARTBEAT)
        self.addCleanup(self.cluster.stop)
        self.cluster.start()
        self.cluster.wait_complete("c01", timeout=60)
        self.agg = self.cluster.daemons

    def wait_primary(self, compute, aggregator, timeout=20):
        return self.cluster.wait_for(lambda: self.cluster.primary_of(compute) == aggregator,
                                     timeout=timeout, interval=0.1,
                                     what="%s to use %s as primary" % (compute, aggregator))

    def wait_log(self, daemon, text, timeout=20, times=1):
        """Wait until ``text`` stands ``times`` times in the daemon's log."""
        return self.cluster.wait_for(lambda: self.cluster.log_text(daemon).count(text) >= times,
                                     timeout=timeout, what="%r in %s's log" % (text, daemon))

    def db(self, statement, *args):
        return sql(self.cluster, statement, args)

    def health_from(self, compute):
        report = self.cluster.health(compute)
        return {a["node"]: a["responding"] for a in report["aggregators"]}

    def test_kill_primary_fail_over_and_come_back_as_secondary(self):
        self.assertEqual(self.cluster.primary_of("c01"), "agg01")
        self.cluster.wait_for(lambda: self.db("SELECT primary_agg FROM csm_node WHERE node_name = 'c01'")
                              == [("agg01",)], timeout=20, what="c01's inventory")
        self.agg["agg01"].kill()
        self.wait_primary("c01", "agg02", timeout=5)
        # requests from the compute keep working, through the other aggregator
        self.assertEqual(self.health_from("c01"), {"agg01": False, "agg02": True})
        rc, out = self.cluster.cli("c01", "csm_node_attributes_query", "-n", "c01")
        self.assertEqual(rc, 0, out)
        self.wait_log("master", "RAS csm.status.lost_redundancy on c01")
        # the master records the new primary and the event
        self.cluster.wait_for(lambda: self.db("SELECT primary_agg, secondary_agg FROM csm_node WHERE node_name = 'c01'")
                              == [("agg02", None)], timeout=10, what="the new primary in csm_node")
        self.assertTrue(self.db("SELECT 1 FROM csm_ras_event_action WHERE msg_id = 'csm.status.lost_redundancy' "
                                "AND location_name = 'c01'"))
        self.agg["agg01"].start()
        self.wait_log("master", "RAS csm.status.full_redundancy on c01", timeout=30, times=2)
        # the returning aggregator is secondary: no switch-back while agg02 lives
        self.assertEqual(self.cluster.primary_of("c01"), "agg02")
        report = self.cluster.health("c01")
        links = {(a["node"], c["node"]): c["link"] for a in report["aggregators"] for c in a.get("computes", [])}
        self.assertEqual(links[("agg01", "c01")], "SECONDARY")
        self.assertEqual(links[("agg02", "c01")], "PRIMARY")
        # csm_ctrl_cmd --agg.reset returns c01 to its configured aggregator
        rc, out = self.cluster.cli("c01", "csm_ctrl_cmd", "--agg.reset")
        self.assertEqual(rc, 0, out)
        self.wait_primary("c01", "agg01", timeout=5)

    def test_kill_secondary_keeps_primary_and_reconnects(self):
        self.assertEqual(self.cluster.primary_of("c02"), "agg02")
        self.agg["agg01"].kill()  # c02's secondary
        self.wait_log("master", "RAS csm.status.lost_redundancy on c02")
        self.assertEqual(self.cluster.primary_of("c02"), "agg02")
        self.agg["agg01"].start()
        self.wait_log("master", "RAS csm.status.full_redundancy on c02", timeout=30, times=2)
        self.assertEqual(self.cluster.primary_of("c02"), "agg02")
        # beyond CAST: one command moves every compute the restarted agg01 serves as secondary onto it
        self.assertEqual(self.cluster.primary_of("c01"), "agg02")  # c01 failed over when agg01 died
        # c01's secondary link to the restarted agg01 comes back on its own back-off, not with c02's
        self.wait_log("master", "RAS csm.status.full_redundancy on c01", timeout=30, times=2)
        rc, out = self.cluster.cli("c02", "csm_aggregator_rehome", "-a", "agg01", "--format", "json")
        self.assertEqual(rc, 0, out)
        self.assertEqual(json.loads(out)["computes"], ["c01", "c02"])
        self.wait_primary("c01", "agg01", timeout=5)
        self.wait_primary("c02", "agg01", timeout=5)

    def test_silent_aggregator_detected_by_heartbeat(self):
        start = time.monotonic()
        self.agg["agg01"].signal(signal.SIGSTOP)
        self.addCleanup(self.agg["agg01"].signal, signal.SIGCONT)
        self.wait_primary("c01", "agg02", timeout=8 * HEARTBEAT)
        elapsed = time.monotonic() - start
        # dead after about 3.5 intervals of silence (the last message may be up to 1 interval old)
        self.assertGreater(elapsed, 2.0 * HEARTBEAT)
        self.assertLess(elapsed, 5.0 * HEARTBEAT)
        self.assertIn("missed its heartbeats", self.cluster.log_text("c01"))

    def test_master_restart_computes_come_back(self):
        master = self.agg["master"]
        self.wait_log("master", "inventory of c02 stored")
        self.assertEqual(master.stop(timeout=30), 0)
        # without the master the aggregators drop their computes and refuse new ones (as CAST)
        self.wait_log("agg01", "master link to master master is down")
        self.cluster.wait_for(lambda: self.cluster.primary_of("c01") is None, timeout=10,
                              what="c01 to lose its primary")
        master.start()  # its log file starts anew
        master.wait_socket()
        # the aggregators listen again and every compute is back, through both links, and registered anew
        self.cluster.wait_complete("c01", timeout=30)
        self.wait_log("master", "inventory of c01 stored")
        self.wait_log("master", "inventory of c02 stored")

        def links():
            report = self.cluster.health("c01")
            return sorted((c["node"], c["link"]) for a in report["aggregators"] for c in a["computes"]
                          if c["responding"])
        # the second link of each comes back at its next retry (10 s while the other serves)
        self.cluster.wait_for(lambda: links() == [("c01", "PRIMARY"), ("c01", "SECONDARY"), ("c02", "PRIMARY"),
                                                  ("c02", "SECONDARY")], timeout=30, what="both links of each")
        rc, out = self.cluster.cli("c01", "csm_node_attributes_query", "-n", "c02")
        self.assertEqual(rc, 0, out)

    def test_both_aggregators_gone(self):
        self.cluster.wait_for(lambda: len(self.db("SELECT 1 FROM csm_node WHERE node_name IN ('c01', 'c02')")) == 2,
                              timeout=20, what="the computes' inventory")
        self.agg["agg01"].kill()
        self.agg["agg02"].kill()
        self.wait_log("master", "RAS csm.status.down on c01")
        self.wait_log("master", "RAS csm.status.down on c02")
        self.cluster.wait_for(lambda: self.db("SELECT node_name, state::text FROM csm_node WHERE type = 'compute' "
                                              "ORDER BY 1") == [("c01", "SOFT_FAILURE"), ("c02", "SOFT_FAILURE")],
                              timeout=10, what="SOFT_FAILURE from csm.status.down")
        self.assertEqual(self.db("SELECT alteration, ras_msg_id FROM csm_node_state_history WHERE node_name = 'c01' "
                                 "AND state = 'SOFT_FAILURE'"), [("RAS EVENT", "csm.status.down")])
