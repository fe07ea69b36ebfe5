"""Nodes and RAS through the command line of a real tree with its database."""

import json
import os
import signal
import tempfile
import time
import urllib.error
import urllib.request

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.client import Client
from csm.cluster import LocalCluster, free_port
from csm.wire import Flags
from tests.clusters import manhole_talk, shared_cluster


REST_PORT = free_port()


def cluster_with_db():
    return shared_cluster("nodes", computes=2, aggregators=1, utilities=1, tls=False,
                          extra={"utility": {"ras.rest": {"host": "127.0.0.1", "port": REST_PORT}}})


def post(path, data, headers=None):
    request = urllib.request.Request("http://127.0.0.1:%d%s" % (REST_PORT, path), data=data, method="POST",
                                     headers=dict({"Content-Type": "application/json"}, **(headers or {})))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class NodeTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = cluster_with_db()
        self.cluster.wait_for(lambda: len(self.nodes()) == 4, timeout=30, what="four nodes in the database")

    def cli(self, *args, **kw):
        return self.cluster.cli("c01", *args, **kw)

    def test_master_shell_sees_its_database_pool(self):
        out = manhole_talk(os.path.join(self.cluster.run_dir, "master.manhole"),
                    b"print('pool', type(db).__name__, db.state)\r", b"pool DatabasePool connected")
        self.assertIn(b"pool DatabasePool connected", out)

    def test_master_shell_prints_its_service_tree(self):
        out = manhole_talk(os.path.join(self.cluster.run_dir, "master.manhole"), b"tree()\r",
                    b"`-- ListeningService 'utility-port' listening on tcp 127.0.0.1:")
        for line in (b"MasterDaemon", b"|-- LocalSocketService 'local-api' listening on unix ",
                     b"|-- DatabaseService 'database'", b"|-- TimerService 'node-count' every 5s: _count_nodes",
                     b"|-- ListeningService 'aggregator-port' listening on tcp 127.0.0.1:"):
            self.assertIn(line, out)

    def nodes(self):
        rc, out = self.cli("csm_node_attributes_query", "-n", "agg01,c[01-02],util01", "--format", "json")
        return {r["node_name"]: r for r in json.loads(out)["results"]} if rc == 0 else {}

    def test_discovered_with_children_and_cast_layout(self):
        nodes = self.nodes()
        self.assertEqual(sorted(nodes), ["agg01", "c01", "c02", "util01"])
        self.assertEqual(nodes["util01"]["type"], "utility")
        self.assertGreater(nodes["c01"]["discovered_cores"], 0)
        self.assertEqual(nodes["c01"]["primary_agg"], "agg01")
        rc, out = self.cli("csm_node_attributes_query", "-n", "c01,util01")
        self.assertEqual(rc, 0, out)
        lines = out.splitlines()
        self.assertEqual(lines[:3], ["---", "Total_Records: 2", "Record_1:"])
        self.assertEqual(lines[-1], "...")
        self.assertIn("Record_2:", lines)
        self.assertRegex(out, r"\n  node_name: +c01\n")
        rc, out = self.cli("csm_node_attributes_query_details", "-n", "c01", "--format", "json")
        details = json.loads(out)
        self.assertEqual(details["node"]["node_name"], "c01")
        self.assertTrue(details["processors"])
        rc, out = self.cli("csm_node_attributes_query", "-n", "nosuchnode")
        self.assertEqual(rc, 4)
        self.assertIn("# No matching records found.", out)

    def test_update_state_and_history(self):
        rc, out = self.cli("csm_node_attributes_update", "-n", "c01", "-s", "IN_SERVICE", "-c", "rack 7")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.nodes()["c01"]["state"], "IN_SERVICE")
        rc, out = self.cli("csm_node_attributes_update", "-n", "c01", "-s", "DISCOVERED")
        self.assertEqual(rc, 9, out)
        self.assertIn("IN_SERVICE -> DISCOVERED is not allowed", out)
        self.assertIn("ADMIN_RESERVED, MAINTENANCE, OUT_OF_SERVICE", out)
        rc, out = self.cli("csm_node_attributes_update", "-n", "c01", "-c", "#CSM_NULL")
        self.assertEqual(rc, 0, out)
        self.assertIsNone(self.nodes()["c01"]["comment"])
        rc, out = self.cli("csm_node_query_state_history", "-n", "c01", "-O", "a", "--format", "json")
        history = json.loads(out)["results"]
        self.assertEqual([(h["state"], h["alteration"]) for h in history][:2],
                         [("DISCOVERED", "CSM INVENTORY"), ("IN_SERVICE", "CSM API")])
        rc, out = self.cli("csm_node_attributes_query_history", "-n", "c01", "--format", "json")
        self.assertTrue(any(h["comment"] == "rack 7" for h in json.loads(out)["results"]))
        rc, out = self.cli("csm_node_attributes_update", "-n", "c01,ghost", "-c", "x")
        self.assertEqual(rc, 27, out)  # CSMERR_UPDATE_MISMATCH, as CAST
        self.assertEqual(out.splitlines()[:5], ["---", "# Could not update 1 of the 2 record(s):", "total_failures: 1",
                                                "node_names:", " - ghost"])

    def test_restart_resends_inventory_keeps_state(self):
        rc, out = self.cli("csm_node_attributes_update", "-n", "c02", "-s", "IN_SERVICE")
        rc, out = self.cli("csm_node_attributes_update", "-n", "c02", "-s", "ADMIN_RESERVED")
        self.assertEqual(rc, 0, out)
        before = self.nodes()["c02"]["collection_time"]
        c02 = self.cluster.daemons["c02"]
        self.assertEqual(c02.stop(), 0)
        c02.start()
        self.cluster.wait_for(lambda: self.nodes()["c02"]["collection_time"] != before, timeout=30,
                              what="c02's inventory again")
        self.assertEqual(self.nodes()["c02"]["state"], "ADMIN_RESERVED")

    def test_ordinary_user_queries_but_cannot_update(self):
        rc, out = self.cli("csm_node_attributes_query", "-n", "c01", user="nobody")
        self.assertEqual(rc, 0, out)
        self.assertIn("Total_Records: 1", out)
        rc, out = self.cli("csm_node_attributes_update", "-n", "c01", "-c", "mine", user="nobody")
        self.assertEqual(rc, 16, out)
        self.assertIn("FAILED: errcode: 16", out)

    def test_cluster_and_resources(self):
        rc, out = self.cli("csm_cluster_query_state", "-t", "compute", "--format", "json")
        self.assertEqual(rc, 0, out)
        self.assertEqual(sorted(r["node_name"] for r in json.loads(out)["results"]), ["c01", "c02"])
        rc, out = self.cli("csm_node_resources_query", "-n", "c01", "--format", "json")
        result = json.loads(out)["results"][0]
        self.assertEqual(result["node_name"], "c01")
        self.assertIn("node_ready", result)

    def test_ras_event_create_query_ack(self):
        rc, out = self.cli("csm_ras_event_create", "-m", "admin.common.info", "-l", "util01",
                           "-k", "comment=fan noise")
        self.assertEqual(rc, 0, out)
        rc, out = self.cli("csm_ras_event_query", "-m", "admin.common.info", "-l", "util01", "--format", "json")
        events = json.loads(out)["results"]
        self.assertEqual(events[-1]["message"], "util01: fan noise")
        rc, out = self.cli("csm_ras_event_ack", "-r", str(events[-1]["rec_id"]))
        self.assertEqual(rc, 0, out)
        rc, out = self.cli("csm_ras_event_query", "-m", "admin.common.info", "-u")
        self.assertEqual(rc, 4, out)
        rc, out = self.cli("csm_ras_event_create", "-m", "no.such.type")
        self.assertEqual(rc, 25, out)
        self.assertIn("no.such.type", out)
        rc, out = self.cli("csm_ras_event_query")
        self.assertEqual(rc, 8, out)  # CAST's CLI wants at least one filter
        rc, out = self.cli("csm_ras_msg_type_query", "-m", "csm.status.%", "--format", "json")
        self.assertEqual(sorted(r["msg_id"] for r in json.loads(out)["results"]),
                         ["csm.status.%s" % name for name in ("down", "duplicate_node", "full_redundancy",
                                                             "lost_redundancy", "up")])


class RasAllocationTests(SynchronousTestCase):
    def test_events_of_an_allocation_only_its_nodes_and_visible_types(self):
        cluster = cluster_with_db()
        cluster.wait_for(lambda: cluster.cli("c01", "csm_node_attributes_query", "-n", "c01,c02")[1]
                         .count("node_name:") == 2, timeout=30, what="c01 and c02")
        connection = psycopg2.connect(cluster.postgres.dsn_for("csmdb"))
        connection.autocommit = True
        cur = connection.cursor()
        cur.execute("INSERT INTO csm_ras_type (msg_id, severity, message, visible_to_users, enabled) VALUES "
                    "('site.test.hidden', 'INFO', 'hidden on $(location_name)', false, true) ON CONFLICT DO NOTHING")
        cur.execute("INSERT INTO csm_allocation (primary_job_id, launch_node_name, num_nodes, num_processors, "
                    "num_gpus, projected_memory, state, type, job_type, user_name, user_id, user_group_id, "
                    "user_script, begin_time, account, job_submit_time, time_limit) VALUES (77, 'c01', 1, 0, 0, 0, "
                    "'running', 'user-managed', 'batch', 'u', 1000, 1000, '', now(), '', "
                    "now(), 0) RETURNING allocation_id")
        allocation = cur.fetchone()[0]
        cur.execute("INSERT INTO csm_allocation_node (allocation_id, node_name, state) VALUES (%s, 'c01', 'running')",
                    (allocation,))
        connection.close()
        for msg_id, node in (("admin.common.info", "c01"), ("admin.common.info", "c02"),
                             ("site.test.hidden", "c01")):
            rc, out = cluster.cli("c01", "csm_ras_event_create", "-m", msg_id, "-l", node, "-k", "comment=alloc")
            self.assertEqual(rc, 0, out)
        def window():  # CAST: every event of the allocation's lifetime
            rc, out = cluster.cli("c01", "csm_ras_event_query_allocation", "-a", str(allocation), "--format", "json")
            return {(e["msg_id"], e["location_name"]) for e in json.loads(out)["events"]} if rc == 0 else set()
        cluster.wait_for(lambda: {("admin.common.info", "c01"), ("admin.common.info", "c02"),
                                  ("site.test.hidden", "c01")} <= window(), timeout=30, what="the three events")
        rc, out = cluster.cli("c01", "csm_ras_event_query_allocation", "-a", str(allocation), "--on_nodes",
                              "--format", "json")
        self.assertEqual(rc, 0, out)
        events = json.loads(out)["events"]
        self.assertEqual({(e["msg_id"], e["location_name"]) for e in events}, {("admin.common.info", "c01")})
        rc, out = cluster.cli("c01", "csm_ras_event_query_allocation", "-a", "999999")
        self.assertEqual(rc, 50, out)


class RestTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = cluster_with_db()

    def test_event_over_http(self):
        status, body = post("/csmi/V1.0/ras/event/create", json.dumps({
            "msg_id": "admin.common.warning", "location_name": "c02", "kvcsv": "comment=from REST"}).encode())
        self.assertEqual(status, 200, body)
        self.assertTrue(body["stored"])
        status, body = post("/csmi/V1.0/ras/event/query", json.dumps({"msg_id": "admin.common.warning"}).encode())
        self.assertEqual(status, 200, body)
        self.assertIn("c02: from REST", [e["message"] for e in body["results"]])
        with urllib.request.urlopen("http://127.0.0.1:%d/csmi/V1.0/loopback/test" % REST_PORT, timeout=10) as r:
            self.assertEqual(json.loads(r.read()), {"status": "ok"})

    def test_bad_requests_get_4xx_with_a_reason(self):
        status, body = post("/csmi/V1.0/ras/event/create", b"{not json")
        self.assertEqual(status, 400)
        self.assertIn("malformed JSON", body["error"])
        status, body = post("/csmi/V1.0/ras/event/create", json.dumps({"location_name": "c01"}).encode())
        self.assertEqual(status, 400)
        self.assertIn("msg_id", body["errmsg"])
        status, body = post("/csmi/V1.0/ras/event/create", json.dumps({"msg_id": "x", "pad": "y" * 70000}).encode())
        self.assertEqual(status, 413)
        status, body = post("/csmi/V1.0/ras/event/create", json.dumps({"msg_id": "no.such.type"}).encode())
        self.assertEqual(status, 400)
        self.assertIn("no.such.type", body["errmsg"])
        # the tree is unharmed
        self.assertTrue(self.cluster.complete(self.cluster.health("c01")))


class OutageTests(SynchronousTestCase):
    def test_database_outage_and_clean_exit(self):
        run_dir = tempfile.mkdtemp(prefix="csm-outage-")
        cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=0, tls=False)
        self.addCleanup(cluster.stop)
        cluster.start()
        cluster.wait_for(lambda: cluster.cli("c01", "csm_node_attributes_query", "-n", "c01")[0] == 0,
                         timeout=30, what="c01 in the database")
        master_pid = cluster.daemons["master"].process.pid
        cluster.postgres.stop_server()
        started = time.monotonic()
        rc, out = cluster.cli("c01", "csm_node_attributes_query", "-n", "c01")
        # the CLI process itself takes a moment to start; the master answers at once
        self.assertEqual(rc, 24, out)
        self.assertLess(time.monotonic() - started, 5)
        with Client(cluster.daemons["c01"].socket) as client:
            for n in range(20):
                client.call("ras_event_create", {"msg_id": "admin.common.info", "location_name": "c01",
                                                 "kvcsv": "comment=outage %d" % n})
        cluster.postgres.start_server()
        cluster.wait_for(lambda: cluster.cli("c01", "csm_node_attributes_query", "-n", "c01")[0] == 0,
                         timeout=30, what="the master to use its database again")
        self.assertEqual(cluster.daemons["master"].process.pid, master_pid)
        self.assertEqual(self.messages(cluster, "outage %"), ["c01: outage %d" % n for n in range(20)])

        # SIGTERM right after a burst of fire-and-forget events: the master writes them all first
        self.send_burst(cluster, 300)
        master = cluster.daemons["master"]
        master.signal(signal.SIGTERM)
        self.assertEqual(master.process.wait(10), 0)
        self.assertEqual(len(self.messages(cluster, "burst %")), 300)

    @staticmethod
    def send_burst(cluster, count):
        """Fire-and-forget events, as daemons send them: no reply is waited for."""
        import socket
        from csm.wire import InternalCommand, Message
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(cluster.daemons["c01"].socket)
        sock.sendall(Message.make(InternalCommand.STATUS, {"version": "1.8.5"}, flags=Flags.INT).encode())
        frames = b"".join(Message.make(29, {"msg_id": "admin.common.info", "location_name": "c01",
                                            "kvcsv": "comment=burst %d" % n}, flags=Flags.NOREPLY,
                                       message_id=n + 1).encode() for n in range(count))
        sock.sendall(frames)
        time.sleep(1.0)  # through compute and aggregator to the master's queue
        sock.close()

    @staticmethod
    def messages(cluster, pattern):
        connection = psycopg2.connect(cluster.postgres.dsn_for("csmdb"))
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT message FROM csm_ras_event_action WHERE message LIKE %s ORDER BY rec_id",
                            ("c01: " + pattern,))
                return [row[0] for row in cur.fetchall()]
        finally:
            connection.close()
