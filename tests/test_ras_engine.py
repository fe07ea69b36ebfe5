"""The RAS pipeline against a real database, and control actions as real processes."""

import json
import os
import stat
import tempfile
import time

from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import TestCase

from csm.config import RasActionConfig
from csm.db.pool import DatabasePool
from csm.errors import CSMError, ErrorCode
from csm.ras.actions import ActionRunner
from csm.logfile import JsonLines
from csm.ras.engine import RasEngine
from tests import dbfixture


class EngineTestCase(TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        _, self.dsn = dbfixture.fresh_database(self)
        self.sql = dbfixture.connect(self.dsn)
        self.addCleanup(self.sql.close)
        self.sql.cursor().execute(
            "INSERT INTO csm_node (node_name, state, type) VALUES ('c01', 'IN_SERVICE', 'compute'), "
            "('c02', 'MAINTENANCE', 'compute'), ('c03', 'HARD_FAILURE', 'compute'), ('c04', 'DISCOVERED', 'compute')")
        self.log_path = os.path.join(tempfile.mkdtemp(), "ras.json")
        self.engine = yield self.make_engine()

    @defer.inlineCallbacks
    def make_engine(self, actions=None):
        pool = DatabasePool(None, reactor, dsn=self.dsn, size=2)
        yield pool.start()
        self.addCleanup(pool.close)
        event_log = JsonLines(self.log_path)
        self.addCleanup(event_log.close)
        return RasEngine(pool, actions, event_log)

    def query(self, statement, *args):
        cur = self.sql.cursor()
        cur.execute(statement, args)
        return cur.fetchall()

    def add_type(self, msg_id, **values):
        row = {"severity": "WARNING", "message": "$(location_name) $(k)", "control_action": "NONE",
               "threshold_count": 1, "threshold_period": 0, "enabled": True, "set_state": None,
               "visible_to_users": True}
        row.update(values)
        self.sql.cursor().execute("INSERT INTO csm_ras_type (msg_id, %s) VALUES (%%s, %s)" % (
            ", ".join(row), ", ".join(["%s"] * len(row))), (msg_id,) + tuple(row.values()))

    def events(self, msg_id):
        return self.query("SELECT location_name, count, message FROM csm_ras_event_action WHERE msg_id = %s "
                          "ORDER BY rec_id", msg_id)


class PipelineTests(EngineTestCase):
    @defer.inlineCallbacks
    def test_stored_with_substitution_and_bound_to_type_version(self):
        self.add_type("t.test.a")
        outcome = yield self.engine.create({"msg_id": "t.test.a", "location_name": "c01", "kvcsv": "k=v1"})
        self.assertTrue(outcome["stored"])
        self.assertEqual(self.events("t.test.a"), [("c01", 1, "c01 v1")])
        self.query("UPDATE csm_ras_type SET severity = 'FATAL' WHERE msg_id = 't.test.a' RETURNING 1")
        yield self.engine.create({"msg_id": "t.test.a", "location_name": "c01", "kvcsv": "k=v2"})
        self.assertEqual(self.query("SELECT severity::text FROM csm_ras_event_action_view WHERE msg_id = 't.test.a' "
                                    "ORDER BY rec_id"), [("WARNING",), ("FATAL",)])
        self.engine.event_log.flush()
        logged = [json.loads(line) for line in open(self.log_path)]
        self.assertEqual([entry["data"]["message"] for entry in logged], ["c01 v1", "c01 v2"])

    @defer.inlineCallbacks
    def test_substitution_rules(self):
        self.add_type("t.test.sub", message="rc=$(rc) on $(location_name): $(comment) $(nope) $(message) $(rc)")
        outcome = yield self.engine.create({"msg_id": "t.test.sub", "location_name": "c01",
                                            "kvcsv": "rc=3, comment=fan broken,junk,=x"})
        self.assertEqual(outcome["message"], "rc=3 on c01: fan broken $(nope) $(message) 3")

    @defer.inlineCallbacks
    def test_bad_event_in_a_batch_spoils_nothing(self):
        self.add_type("t.test.b")
        events = [{"msg_id": "t.test.b", "location_name": "c01", "raw_data": "1"},
                  {"msg_id": "no.such.type", "location_name": "c01"},
                  {"msg_id": "t.test.b", "location_name": "c01", "raw_data": "3"}]
        results = yield defer.DeferredList([self.engine.create(e) for e in events], consumeErrors=True)
        self.assertEqual([ok for ok, _ in results], [True, False, True])
        self.assertEqual(self.query("SELECT raw_data FROM csm_ras_event_action WHERE msg_id = 't.test.b' "
                                    "ORDER BY rec_id"), [("1",), ("3",)])

    @defer.inlineCallbacks
    def test_submitted_events_followed_up_as_created_ones(self):
        """``submit`` (fire and forget, no Deferred an event): the same rows, event log lines and
        outcomes as ``create``, in order among created events; an unknown type is dropped alone."""
        self.add_type("t.test.f")
        seen = []
        self.engine.on_event = seen.append
        self.assertIsNone(self.engine.submit({"msg_id": "t.test.f", "location_name": "c01", "kvcsv": "k=1"}))
        self.engine.submit({"msg_id": "no.such.type", "location_name": "c01"})
        created = self.engine.create({"msg_id": "t.test.f", "location_name": "c01", "kvcsv": "k=2"})
        self.engine.submit({"msg_id": "t.test.f", "location_name": "c01", "kvcsv": "k=3"})
        yield created
        yield self.engine.create({"msg_id": "t.test.f", "location_name": "c01", "kvcsv": "k=4"})
        self.assertEqual(self.events("t.test.f"), [("c01", 1, "c01 %d" % n) for n in (1, 2, 3, 4)])
        self.assertEqual([outcome["message"] for outcome in seen], ["c01 %d" % n for n in (1, 2, 3, 4)])
        self.engine.event_log.flush()
        logged = [json.loads(line)["data"] for line in open(self.log_path)]
        self.assertEqual([(entry["message"], entry["rec_id"] is not None) for entry in logged],
                         [("c01 %d" % n, True) for n in (1, 2, 3, 4)])

    @defer.inlineCallbacks
    def test_a_submitted_event_of_an_unknown_type_is_logged(self):
        """Nobody is told of a fire-and-forget event the database did not store: the log says so."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.add_type("t.test.known")
        self.engine.submit({"msg_id": "no.such.type", "location_name": "c01"})
        yield self.engine.create({"msg_id": "t.test.known", "location_name": "c01"})  # written after it
        lines = [formatEvent(event) for event in events if event.get("log_level") == LogLevel.error]
        self.assertEqual(len([line for line in lines if "no.such.type" in line and "c01" in line]), 1, lines)

    @defer.inlineCallbacks
    def test_unknown_msg_id_named(self):
        error = yield self.assertFailure(self.engine.create({"msg_id": "no.such.type"}), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DB_ERROR)
        self.assertIn("no.such.type", error.errmsg)

    @defer.inlineCallbacks
    def test_disabled_type_stores_nothing(self):
        self.add_type("t.test.off", enabled=False)
        outcome = yield self.engine.create({"msg_id": "t.test.off", "location_name": "c01"})
        self.assertIn("disabled", outcome["suppressed"])
        self.assertEqual(self.events("t.test.off"), [])

    @defer.inlineCallbacks
    def test_node_in_maintenance_stores_nothing(self):
        self.add_type("t.test.m", set_state="SOFT_FAILURE")
        outcome = yield self.engine.create({"msg_id": "t.test.m", "location_name": "c02"})
        self.assertIn("MAINTENANCE", outcome["suppressed"])
        self.assertEqual(self.events("t.test.m"), [])
        self.assertEqual(self.query("SELECT state::text FROM csm_node WHERE node_name = 'c02'"), [("MAINTENANCE",)])

    @defer.inlineCallbacks
    def test_soft_failure_only_from_allowed_states(self):
        self.add_type("t.test.soft", set_state="SOFT_FAILURE", severity="FATAL")
        for node in ("c01", "c03", "c04"):
            yield self.engine.create({"msg_id": "t.test.soft", "location_name": node})
        self.assertEqual(self.query("SELECT node_name, state::text FROM csm_node WHERE node_name IN ('c01','c03','c04') "
                                    "ORDER BY 1"),
                         [("c01", "SOFT_FAILURE"), ("c03", "HARD_FAILURE"), ("c04", "SOFT_FAILURE")])
        self.assertEqual(len(self.events("t.test.soft")), 3)  # stored even where the state stays
        rows = self.query("SELECT h.alteration, h.ras_msg_id, e.msg_id FROM csm_node_state_history h "
                          "JOIN csm_ras_event_action e ON e.rec_id = h.ras_rec_id WHERE h.node_name = 'c01'")
        self.assertEqual(rows, [("RAS EVENT", "t.test.soft", "t.test.soft")])

    @defer.inlineCallbacks
    def test_threshold_fires_on_third_and_survives_restart(self):
        self.add_type("t.test.thr", threshold_count=3, threshold_period=10)
        first = yield self.engine.create({"msg_id": "t.test.thr", "location_name": "c01"})
        second = yield self.engine.create({"msg_id": "t.test.thr", "location_name": "c01"})
        self.assertEqual((first["count"], second["count"]), (1, 2))
        self.assertEqual(self.events("t.test.thr"), [])
        # a new engine and pool: the master restarted; the counts are in the database
        restarted = yield self.make_engine()
        third = yield restarted.create({"msg_id": "t.test.thr", "location_name": "c01"})
        self.assertTrue(third["stored"])
        self.assertEqual(self.events("t.test.thr"), [("c01", 3, "c01 $(k)")])
        fourth = yield restarted.create({"msg_id": "t.test.thr", "location_name": "c01"})
        self.assertEqual(fourth["count"], 1)  # a new window

    @defer.inlineCallbacks
    def test_threshold_window_expires(self):
        self.add_type("t.test.win", threshold_count=2, threshold_period=1)
        yield self.engine.create({"msg_id": "t.test.win", "location_name": "c01"})
        yield task.deferLater(reactor, 1.2, lambda: None)
        outcome = yield self.engine.create({"msg_id": "t.test.win", "location_name": "c01"})
        self.assertEqual(outcome["count"], 1)
        self.assertEqual(self.events("t.test.win"), [])


def write_script(directory, name, body):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, stat.S_IRWXU)
    return path


class ActionTests(EngineTestCase):
    def runner(self, **overrides):
        self.scripts = tempfile.mkdtemp()
        self.logs = tempfile.mkdtemp()
        config = RasActionConfig(**dict({"scriptdir": self.scripts, "logdir": self.logs, "maxactions": 10,
                                         "timeout": 5, "fatal_event": "fatal_event.sh"}, **overrides))
        return ActionRunner(reactor, config)

    @defer.inlineCallbacks
    def wait(self, predicate, timeout=10):
        deadline = time.monotonic() + timeout
        while not predicate():
            self.assertLess(time.monotonic(), deadline, "timed out")
            yield task.deferLater(reactor, 0.05, lambda: None)

    @defer.inlineCallbacks
    def test_action_receives_the_event(self):
        runner = self.runner()
        out = os.path.join(self.scripts, "got.json")
        write_script(self.scripts, "record.sh", 'printf "%%s" "$1" > %s' % out)
        write_script(self.scripts, "fatal_event.sh", 'echo fatal >> %s/fatal.txt' % self.scripts)
        self.add_type("t.test.act", control_action="record.sh", severity="FATAL")
        engine = yield self.make_engine(runner)
        yield engine.create({"msg_id": "t.test.act", "location_name": "c01", "raw_data": "r1"})
        yield self.wait(lambda: len(runner.finished) == 2)
        event = json.load(open(out))
        self.assertEqual((event["msg_id"], event["location_name"], event["raw_data"]), ("t.test.act", "c01", "r1"))
        self.assertEqual(open(os.path.join(self.scripts, "fatal.txt")).read(), "fatal\n")

    @defer.inlineCallbacks
    def test_hanging_action_killed_at_timeout(self):
        runner = self.runner(timeout=1)
        write_script(self.scripts, "hang.sh", "exec sleep 60")
        started = time.monotonic()
        runner.submit("hang.sh", {"msg_id": "x"})
        yield self.wait(lambda: runner.finished, timeout=10)
        self.assertLess(time.monotonic() - started, 5)
        self.assertEqual(runner.finished[0], ("hang.sh", 128 + 9))

    @defer.inlineCallbacks
    def test_maxactions(self):
        runner = self.runner(maxactions=3)
        write_script(self.scripts, "slow.sh", "sleep 0.3")
        for n in range(5):
            runner.submit("slow.sh", {"n": n})
        self.assertEqual(runner.dropped, 2)
        yield self.wait(lambda: len(runner.finished) == 3)
        self.assertEqual(runner.running, 0)
