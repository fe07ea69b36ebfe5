"""Switches and InfiniBand cables through real daemons and the private PostgreSQL: the collection tool
against the UFM stand-in, the csm_switch_* and csm_ib_cable_* commands, bad input."""

import json
import os
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.client import Client
from csm.cluster import free_port
from csm.errors import CSMError, ErrorCode
from tests.clusters import shared_cluster
from tests.ufm_standin import UfmStandIn, switch_guid

STANDIN = None
LOGS = tempfile.mkdtemp(prefix="csm-inv-logs-")


def switch_cluster():
    global STANDIN
    if STANDIN is None:
        STANDIN = UfmStandIn(switches=200, cables=2000, bad_switches=1, bad_cables=2).start()
    return shared_cluster("switch", computes=1, aggregators=1, utilities=0, tls=False, extra={"master": {
        "ufm": {"rest_address": STANDIN.address, "rest_port": STANDIN.port, "ufm_ssl_file_path": LOGS},
        "inventory": {"csm_inv_log_dir": LOGS}}})


def collect(cluster, *args, config=None):
    env = cluster.env()
    env.pop("CSM_SOCKET", None)  # the tool finds the master's socket in its config file
    proc = subprocess.run([sys.executable, "-m", "csm.ufm_collection", "-c", config or cluster.daemons["master"].path]
                          + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=120, text=True)
    return proc.returncode, proc.stdout


class SwitchTests(SynchronousTestCase):
    collected = False

    def setUp(self):
        self.cluster = switch_cluster()
        STANDIN.mode = "ok"
        if not SwitchTests.collected:  # once: no test changes what UFM reports
            rc, out = collect(self.cluster)
            self.assertEqual(rc, 0, out)
            SwitchTests.collected = True

    def cli(self, *args):
        return self.cluster.cli("c01", *args)

    def test_collection_counts_and_bad_records(self):
        history = self.cluster.sql("SELECT count(*) FROM csm_switch_history")
        rc, out = collect(self.cluster)
        self.assertEqual(rc, 0, out)
        self.assertIn("switches: 200 received, 0 new, 0 changed, 200 unchanged, 0 no longer reported\n", out)
        self.assertIn("modules: 1000 received, 0 new, 0 changed, 1000 unchanged, 0 no longer reported\n", out)
        self.assertIn("cables: 2000 received, 0 new, 0 changed, 2000 unchanged, 0 no longer reported\n", out)
        self.assertIn("bad records: %s\n" % os.path.join(LOGS, "bad_switch_records.txt"), out)
        with open(os.path.join(LOGS, "bad_ib_cable_records.txt")) as f:
            self.assertIn("The following 3 record(s) are incomplete", f.read())
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_switch_history"), history)  # nothing changed
        rc, out = collect(self.cluster, "-t", "1")
        self.assertEqual(rc, 0, out)
        self.assertNotIn("switches:", out)

    def test_switch_queries(self):
        name = switch_guid(3)
        rc, out = self.cli("csm_switch_attributes_query", "-s", name)
        self.assertEqual(rc, 0, out)
        self.assertTrue(out.startswith("---\nTotal_Records: 1\nRECORD_1:\n  switch_name:             %s\n"
                                       "  serial_number:           MT00000003\n" % name), out)
        self.assertIn("  has_ufm_agent:           f\n", out)
        self.assertIn("  num_modules:             5\n", out)
        rc, out = self.cli("csm_switch_attributes_query", "-r", "core", "--format", "json")
        self.assertEqual([r["switch_name"] for r in json.loads(out)["results"]],
                         [switch_guid(index) for index in range(0, 200, 10)])
        rc, out = self.cli("csm_switch_attributes_query_details", "-s", name)
        self.assertEqual(rc, 0, out)
        self.assertIn("Record_1:\n  switch_name:                    %s\n" % name, out)
        self.assertIn("  inventory_count:                5\n  inventory:\n    - name:             %s_FAN1\n"
                      "      host_system_guid: %s\n" % (name, name), out)

        rc, out = self.cli("csm_switch_attributes_update", "-s", name, "-c", "rack 7 top", "-f", "R7")
        self.assertEqual((rc, out), (0, "---\n# All 1 record(s) successfully updated.\n...\n"))
        rc, out = self.cli("csm_switch_attributes_query_history", "-s", name, "--format", "json")
        history = json.loads(out)["results"]
        self.assertEqual([(h["operation"], h["comment"]) for h in history], [("U", "rack 7 top"), ("I", None)])
        rc, out = collect(self.cluster)  # a collection keeps what the administrator set
        self.assertEqual(self.cluster.sql("SELECT comment, physical_frame_location FROM csm_switch "
                                          "WHERE switch_name = %s", (name,)), [("rack 7 top", "R7")])

    def test_cable_queries(self):
        rc, out = self.cli("csm_ib_cable_query", "-s", "MT1700000005")
        self.assertEqual(rc, 0, out)
        self.assertTrue(out.startswith("---\nTotal_Records: 1\nRECORD_1:\n  serial_number:  MT1700000005\n"
                                       "  discovery_time:  "), out)
        self.assertIn("  port_s1:         6\n", out)
        rc, out = self.cli("csm_ib_cable_query", "-g", switch_guid(1), "--format", "json")
        cables = json.loads(out)["results"]
        self.assertTrue(cables)
        self.assertTrue(all(switch_guid(1) in (c["guid_s1"], c["guid_s2"]) for c in cables))
        self.assertTrue(any(c["guid_s1"] != switch_guid(1) for c in cables))  # found on either side
        rc, out = self.cli("csm_ib_cable_query", "-w", "IB_4x", "-l", "3", "-O", "A", "--format", "json")
        self.assertEqual([c["serial_number"] for c in json.loads(out)["results"]],
                         ["MT1700001999", "MT1700001998", "MT1700001997"])
        rc, out = self.cli("csm_ib_cable_update", "-s", "MT1700000005,MT1700000006", "-c", "replaced 2026")
        self.assertEqual((rc, out), (0, "---\n# All 2 record(s) successfully updated.\n...\n"))
        rc, out = self.cli("csm_ib_cable_query_history", "-s", "MT1700000005")
        self.assertEqual(rc, 0, out)
        self.assertIn("Total_Records: 2\nRECORD_1:\n  history_time:    ", out)
        self.assertIn("  comment:         replaced 2026\n", out)

    def test_bad_input(self):
        rc, out = self.cli("csm_switch_attributes_query_details", "-s", "nosuchswitch")
        self.assertEqual(rc, ErrorCode.CSMI_NO_RESULTS, out)
        rc, out = self.cli("csm_switch_attributes_query", "-s", "nosuchswitch")
        self.assertEqual((rc, out), (ErrorCode.CSMI_NO_RESULTS,
                                     "---\nTotal_Records: 0\n# No matching records found.\n...\n"))
        rc, out = self.cli("csm_switch_attributes_update", "-s", "%s,nosuchswitch" % switch_guid(2), "-c", "x")
        self.assertEqual((rc, out), (ErrorCode.CSMERR_UPDATE_MISMATCH, "---\n# Could not update 1 of the 2 record(s):\n"
                                     "total_failures: 1\nswitch_names:\n - nosuchswitch\n...\n"))
        rc, out = self.cli("csm_switch_attributes_update", "-s", switch_guid(2))
        self.assertEqual(rc, ErrorCode.CSMERR_MISSING_PARAM, out)
        rc, out = self.cli("csm_ib_cable_update", "-s", "nosuchcable", "-c", "x")
        self.assertEqual((rc, out), (ErrorCode.CSMERR_UPDATE_MISMATCH, "---\n# Could not update 1 of the 1 record(s):\n"
                                     "total_failures: 1\nserial_numbers:\n - nosuchcable\n...\n"))
        rc, out = self.cli("csm_ib_cable_query", "-O", "z")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM, out)
        rc, out = self.cli("csm_ib_cable_query_history", "-s", "nosuchcable")
        self.assertEqual(rc, ErrorCode.CSMI_NO_RESULTS, out)
        with Client(self.cluster.daemons["master"].socket) as client:
            for body in ({}, {"inventory": "x"}, {"inventory": [{"guid_s1": "no serial"}]},
                         {"inventory": [{"serial_number": "SN", "guid_s1": ["not", "text"]}]}):
                with self.assertRaises(CSMError) as caught:
                    client.call("ib_cable_inventory_collection", body)
                self.assertIn(caught.exception.errcode, (ErrorCode.CSMERR_INVALID_PARAM, ErrorCode.CSMERR_DB_ERROR))
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_ib_cable WHERE serial_number = 'SN'"), [(0,)])

    def test_ufm_malformed_and_down(self):
        before = self.cluster.sql("SELECT count(*), max(collection_time) FROM csm_ib_cable")
        STANDIN.mode = "malformed"
        rc, out = collect(self.cluster)
        self.assertEqual(rc, 1, out)
        self.assertIn("standalone_ib_and_switch_collection FAILED: UFM answered "
                      "/ufmRest/resources/links?cable_info=true with malformed JSON", out)
        STANDIN.mode = "http500"
        rc, out = collect(self.cluster)
        self.assertEqual(rc, 1, out)
        self.assertIn("with HTTP 500", out)
        # nothing written: not even the switches, which came back well
        self.assertEqual(self.cluster.sql("SELECT count(*), max(collection_time) FROM csm_ib_cable"), before)

        with open(self.cluster.daemons["master"].path) as f:
            config = json.load(f)
        config["csm"]["ufm"]["rest_port"] = free_port()  # nothing listens there
        path = os.path.join(LOGS, "down.cfg")
        with open(path, "w") as f:
            json.dump(config, f)
        rc, out = collect(self.cluster, config=path)
        self.assertEqual(rc, 1, out)
        self.assertIn("is unreachable: Connection was refused", out)
        config["csm"]["ufm"]["rest_port"] = STANDIN.port
        config["csm"]["net"]["local_client_listen"]["socket"] = os.path.join(LOGS, "nodaemon.sock")
        with open(path, "w") as f:
            json.dump(config, f)
        STANDIN.mode = "ok"
        rc, out = collect(self.cluster, config=path)
        self.assertEqual(rc, ErrorCode.CSMERR_INIT_LIB_FAILED, out)
        self.assertIn("FAILED: errcode: %d errmsg: Can not connect to daemon at %s"
                      % (ErrorCode.CSMERR_INIT_LIB_FAILED, os.path.join(LOGS, "nodaemon.sock")), out)
        rc, out = collect(self.cluster, "-c", "/nonexistent.cfg")
        self.assertEqual(rc, 1, out)
        self.assertNotIn("Traceback", out)


class MasterCollectionTests(SynchronousTestCase):
    """A real master collecting by itself every csm.ufm.collection_interval seconds."""

    def test_periodic_collection(self):
        from csm.cluster import LocalCluster
        standin = UfmStandIn(switches=5, cables=12, bad_cables=1).start()
        self.addCleanup(standin.stop)
        run_dir = tempfile.mkdtemp(prefix="csm-ufm-master-")
        cluster = LocalCluster(run_dir, computes=0, aggregators=0, utilities=0, tls=False, extra={"master": {
            "ufm": {"rest_address": standin.address, "rest_port": standin.port, "collection_interval": 1,
                    "ufm_ssl_file_path": run_dir},
            "inventory": {"csm_inv_log_dir": run_dir}}})
        self.addCleanup(cluster.stop)
        cluster.start()
        cluster.wait_for(lambda: cluster.sql("SELECT count(*) FROM csm_ib_cable") == [(12,)], timeout=30,
                         what="the first collection")
        self.assertEqual(cluster.sql("SELECT count(*) FROM csm_switch_inventory"), [(25,)])
        self.assertTrue(os.path.exists(os.path.join(run_dir, "bad_ib_cable_records.txt")))
        standin.gone = 3
        cluster.wait_for(lambda: cluster.sql("SELECT count(*) FROM csm_ib_cable WHERE missing_since IS NOT NULL")
                         == [(3,)], timeout=30, what="three cables marked gone")
        standin.mode = "http500"
        requests = len(standin.requests)
        cluster.wait_for(lambda: len(standin.requests) > requests + 2, timeout=30, what="two more collections")
        self.assertIn("UFM inventory collection: UFM answered /ufmRest/resources/systems?type=switch&chassis=t "
                      "with HTTP 500", cluster.log_text("master"))
        self.assertEqual(cluster.sql("SELECT count(*) FROM csm_ib_cable WHERE missing_since IS NULL"), [(9,)])
        self.assertNotIn("not stored", cluster.log_text("master"))  # the first run waited for the database
        self.assertTrue(cluster.daemons["master"].running)
