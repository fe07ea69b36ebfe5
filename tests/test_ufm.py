"""The UFM client (treq) against the stand-in, the record mapping, and the master's periodic collection
into a real PostgreSQL."""

import os
import socket
import tempfile

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from csm.config import ConfigError, DaemonConfig, InventoryConfig, UFMConfig
from csm.db.pool import DatabasePool
from csm.ufm import Inventory, UfmClient, UfmError, map_links, map_systems
from csm.ufm_collection import UfmCollectionService
from tests import dbfixture
from tests.ufm_standin import UfmStandIn, link, system


def ufm_config(standin, **kw):
    return UFMConfig(rest_address=standin.address, rest_port=standin.port, ufm_ssl_file_path="/nonexistent",
                     **kw)


class MappingTests(TestCase):
    def test_switches_and_modules(self):
        inventory = map_systems([system(1), {"name": "x"}, system(1), "junk"], Inventory())
        self.assertEqual([s["switch_name"] for s in inventory.switches], [system(1)["name"]])
        switch = inventory.switches[0]
        self.assertEqual((switch["gu_id"], switch["num_modules"], switch["has_ufm_agent"], switch["ps_id"]),
                         (system(1)["guid"], 5, False, "MT_2630110032"))
        self.assertEqual({m["host_system_guid"] for m in inventory.modules}, {system(1)["guid"]})
        self.assertEqual([reason for _record, reason in inventory.bad_switches],
                         ["no name or guid", "duplicate name or guid", "not an object"])

    def test_cables(self):
        good = link(1, 4)
        no_info = dict(link(2, 4), cable_info={})
        not_available = dict(link(3, 4), cable_info=dict(link(3, 4)["cable_info"], serial_number="N/A"))
        inventory = map_links([good, no_info, not_available, good], Inventory())
        cable = inventory.cables[0]
        self.assertEqual((cable["serial_number"], cable["guid_s1"], cable["port_s2"], cable["type"]),
                         ("MT1700000001", good["source_guid"], good["destination_port"], "Optical cable - 850 nm"))
        self.assertEqual([reason for _r, reason in inventory.bad_cables],
                         ["no cable serial number", "no cable serial number", "duplicate serial number"])

    def test_wrong_kinds(self):
        self.assertRaises(UfmError, map_links, {"not": "a list"}, Inventory())
        inventory = map_systems([dict(system(2), total_alarms="many")], Inventory())
        self.assertEqual(inventory.switches, [])
        self.assertIn("total_alarms is not a number", inventory.bad_switches[0][1])


class ClientTests(TestCase):
    def setUp(self):
        self.standin = UfmStandIn(switches=3, cables=7, bad_cables=2).start()
        self.addCleanup(self.standin.stop)

    @defer.inlineCallbacks
    def test_collect(self):
        inventory = yield UfmClient(reactor, ufm_config(self.standin)).collect()
        self.assertEqual((len(inventory.switches), len(inventory.modules), len(inventory.cables)), (3, 15, 7))
        self.assertEqual(len(inventory.bad_cables), 3)
        self.assertEqual(self.standin.requests, ["/ufmRest/resources/systems?type=switch&chassis=t",
                                                 "/ufmRest/resources/links?cable_info=true"])

    @defer.inlineCallbacks
    def test_malformed_answer(self):
        self.standin.mode = "malformed"
        error = yield self.assertFailure(UfmClient(reactor, ufm_config(self.standin)).collect(), UfmError)
        self.assertIn("malformed JSON", str(error))

    @defer.inlineCallbacks
    def test_http_error(self):
        self.standin.mode = "http500"
        error = yield self.assertFailure(UfmClient(reactor, ufm_config(self.standin)).collect(), UfmError)
        self.assertIn("HTTP 500", str(error))

    @defer.inlineCallbacks
    def test_unreachable_and_timeout(self):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        listener.close()  # nothing listens there now
        config = UFMConfig(rest_address="http://127.0.0.1", rest_port=port, ufm_ssl_file_path="/nonexistent")
        error = yield self.assertFailure(UfmClient(reactor, config).collect(), UfmError)
        self.assertIn("is unreachable", str(error))
        self.standin.mode = "slow"
        error = yield self.assertFailure(UfmClient(reactor, ufm_config(self.standin, timeout=1)).collect(), UfmError)
        self.assertIn("did not answer within 1s", str(error))

    def test_basic_auth_from_key_file(self):
        directory = tempfile.mkdtemp()
        with open(os.path.join(directory, "key.txt"), "w") as f:
            f.write("Y3NtOnNlY3JldA==\n")
        config = UFMConfig(rest_address="ufm.example", rest_port=443, ufm_ssl_file_path=directory,
                           ufm_ssl_file_name="key.txt")
        client = UfmClient(reactor, config)
        self.assertEqual((client.base, client.headers), ("https://ufm.example:443",
                                                         {"Authorization": "Basic Y3NtOnNlY3JldA=="}))
        with open(os.path.join(directory, "key.txt"), "w") as f:
            f.write("not base64!\n")
        error = self.assertRaises(ConfigError, UfmCollectionService, reactor, reactor, None,
                                  DaemonConfig(path="m.cfg", role="master", node_name="m", ufm=config))
        self.assertTrue(str(error).startswith("m.cfg: csm.ufm.ufm_ssl_file_name: cannot use the UFM key file %s"
                                              % os.path.join(directory, "key.txt")), str(error))


class PeriodicCollectionTests(TestCase):
    """The master's collection every interval: stored, unchanged runs write no history, gone cables marked."""

    @defer.inlineCallbacks
    def setUp(self):
        self.standin = UfmStandIn(switches=4, cables=10, bad_switches=1, bad_cables=2).start()
        self.addCleanup(self.standin.stop)
        _, dsn = dbfixture.fresh_database(self)
        self.pool = DatabasePool(None, reactor, dsn=dsn, size=2)
        yield self.pool.start()
        self.addCleanup(self.pool.close)
        self.logs = tempfile.mkdtemp()
        self.clock = task.Clock()
        config = DaemonConfig(path="", role="master", node_name="master", ufm=ufm_config(self.standin, collection_interval=600),
                              inventory=InventoryConfig(self.logs, {}))
        self.service = UfmCollectionService(reactor, self.clock, self.pool, config)

    def count(self, sql):
        return self.pool.runQuery(sql).addCallback(lambda rows: rows[0][0])

    @defer.inlineCallbacks
    def wait_runs(self, runs):
        """The summary of run number ``runs`` once it is done (the HTTP and SQL are real, the timer is not)."""
        while self.service.runs < runs:
            yield task.deferLater(reactor, 0.05, lambda: None)
        return self.service.last

    @defer.inlineCallbacks
    def test_collects_every_interval(self):
        self.service.startService()
        self.addCleanup(self.service.stopService)
        first = yield self.wait_runs(1)
        self.assertEqual((first["switches"]["inserted"], first["modules"]["inserted"], first["cables"]["inserted"]),
                         (4, 20, 10))
        self.assertEqual((first["bad_switches"], first["bad_cables"]), (1, 3))
        with open(os.path.join(self.logs, "bad_ib_cable_records.txt")) as f:
            text = f.read()
        self.assertIn("The following 3 record(s) are incomplete", text)
        self.assertIn("IB cable 3: duplicate serial number", text)
        self.assertTrue(os.path.exists(os.path.join(self.logs, "bad_switch_records.txt")))
        history = yield self.count("SELECT count(*) FROM csm_ib_cable_history")
        kinds = yield self.pool.runQuery("SELECT kind, counts->>'received' FROM csm_ufm_collection ORDER BY 1")
        self.assertEqual(kinds, [("cables", "10"), ("modules", "20"), ("switches", "4")])

        self.clock.advance(600)  # nothing changed
        second = yield self.wait_runs(2)
        self.assertEqual((second["cables"]["received"], second["cables"]["inserted"], second["cables"]["updated"],
                          second["cables"]["missing"]), (10, 0, 0, 0))
        self.assertEqual((yield self.count("SELECT count(*) FROM csm_ib_cable_history")), history)

        self.standin.gone = 2  # two cables unplugged, one's severity changed
        self.standin.severity = "Warning"
        self.clock.advance(600)
        third = yield self.wait_runs(3)
        self.assertEqual((third["cables"]["updated"], third["cables"]["missing"]), (8, 2))
        rows = yield self.pool.runQuery("SELECT serial_number FROM csm_ib_cable WHERE missing_since IS NOT NULL "
                                        "ORDER BY 1")
        self.assertEqual(rows, [("MT1700000000",), ("MT1700000001",)])
        self.assertEqual((yield self.count("SELECT count(*) FROM csm_ib_cable")), 10)  # marked, not deleted
        self.assertEqual((yield self.count("SELECT count(*) FROM csm_ib_cable WHERE severity = 'Warning'")), 8)

        self.standin.mode = "malformed"  # nothing half-written, and the service goes on
        self.clock.advance(600)
        fourth = yield self.wait_runs(4)
        self.assertIn("malformed JSON", fourth["error"])
        self.assertEqual((yield self.count("SELECT count(*) FROM csm_ib_cable WHERE severity = 'Warning'")), 8)
        self.standin.mode = "ok"  # the timer still runs: the next interval collects again
        self.clock.advance(600)
        fifth = yield self.wait_runs(5)
        self.assertNotIn("error", fifth)
        self.assertEqual(fifth["cables"]["received"], 8)


class PoolWaitTests(TestCase):
    """A collection that starts before the master's pool is connected waits for the pool's word."""

    def service(self, pool, clock):
        config = DaemonConfig(path="", role="master", node_name="master",
                              ufm=UFMConfig(rest_address="127.0.0.1", rest_port=1, collection_interval=600),
                              inventory=InventoryConfig(self.mktemp(), {}))
        return UfmCollectionService(reactor, clock, pool, config)

    @defer.inlineCallbacks
    def test_fires_when_the_pool_connects(self):
        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=1)
        self.addCleanup(pool.close)
        clock = task.Clock()
        waiting = self.service(pool, clock).connected()
        self.assertNoResult(waiting)
        yield pool.start()  # no clock moved: told, not polled
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(pool.observers, [])

    def test_gives_up_after_db_wait(self):
        pool = DatabasePool(None, reactor, dsn="host=/nonexistent", size=1)
        clock = task.Clock()
        waiting = self.service(pool, clock).connected()
        clock.advance(29.9)
        self.assertNoResult(waiting)
        clock.advance(0.1)
        self.assertIsNone(self.successResultOf(waiting))
        self.assertEqual(pool.observers, [])
