"""RAS events written many to a statement give what one at a time gives (csm.ras.batch)."""

import functools
import json

from twisted.internet import defer, reactor

from csm.errors import CSMError
from csm.ras.batch import FOLLOW_UPS_A_TURN, EventBatch, EventBatches, process_events, substitute
from tests import dbfixture
from tests.test_ras_engine import EngineTestCase

#: every path of the pipeline, with plain events between the others
EVENTS = [
    {"msg_id": "t.plain", "location_name": "c01", "kvcsv": "k=v1, comment = fan ,junk,=x,k=v2", "raw_data": "1"},
    {"msg_id": "t.thresh", "location_name": "c01", "raw_data": "2"},
    {"msg_id": "t.plain", "location_name": "c04", "kvcsv": "rc=3", "raw_data": "3",
     "time_stamp": "2026-01-02 03:04:05.000000"},
    {"msg_id": "t.soft", "location_name": "c04", "raw_data": "4"},
    {"msg_id": "t.plain", "location_name": "c04", "raw_data": "5"},  # c04 is SOFT_FAILURE by now
    {"msg_id": "t.thresh", "location_name": "c01", "raw_data": "6"},  # fires: second within the window
    {"msg_id": "t.plain", "location_name": "c02", "raw_data": "7"},  # c02 in MAINTENANCE: suppressed
    {"msg_id": "t.off", "location_name": "c01", "raw_data": "8"},  # disabled type
    {"msg_id": "no.such.type", "location_name": "c01", "raw_data": "9"},
    {"msg_id": "t.plain", "raw_data": "10", "kvcsv": "message=m,severity=S"},  # no location
    {"msg_id": "admin.common.info", "location_name": "c03", "kvcsv": "comment=hello", "raw_data": "11"},
    {"msg_id": "t.plain", "location_name": "c03", "raw_data": "12", "kvcsv": "k=$(rc),rc=7"},
]
#: outcome keys that differ between two databases (ids and clocks)
VOLATILE = ("rec_id", "time_stamp", "master_time_stamp")


class Turns:
    """``callLater(0, ...)`` run a turn at a time by ``turn()`` (a ``Clock`` runs the calls a
    call makes for the same moment within the same ``advance``)."""

    def __init__(self):
        self.calls = []

    def callLater(self, delay, function, *args):
        call = functools.partial(function, *args)
        call.cancel = functools.partial(self.calls.remove, call)
        self.calls.append(call)
        return call

    def turn(self):
        calls, self.calls = self.calls, []
        for call in calls:
            call()


class BatchTests(EngineTestCase):
    def add_types(self, sql):
        cur = sql.cursor()
        for msg_id, values in (
                ("t.plain", "'INFO', '$(k)|$(comment)|$(rc)|$(severity)|$(message)|$(location_name)|$(raw_data)"
                            "|$(msg_id)|$(none)|$(k)', 'NONE', 1, 0, true, NULL"),
                ("t.thresh", "'WARNING', 'thr $(location_name)', 'NONE', 2, 60, true, NULL"),
                ("t.soft", "'FATAL', 'soft $(location_name)', 'NONE', 1, 0, true, 'SOFT_FAILURE'"),
                ("t.off", "'INFO', 'off', 'NONE', 1, 0, false, NULL")):
            cur.execute("INSERT INTO csm_ras_type (msg_id, severity, message, control_action, threshold_count, "
                        "threshold_period, enabled, set_state) VALUES ('%s', %s)" % (msg_id, values))

    def one_at_a_time(self, events):
        """``events`` through ``fn_csm_ras_event_create`` one by one, in a database set up as this
        test's: the outcomes, the rows and the node states."""
        _, dsn = dbfixture.fresh_database(self)
        sql = dbfixture.connect(dsn)
        self.addCleanup(sql.close)
        cur = sql.cursor()
        for node in self.query("SELECT node_name, state::text, type::text FROM csm_node"):
            cur.execute("INSERT INTO csm_node (node_name, state, type) VALUES (%s, %s, %s)", node)
        self.add_types(sql)
        outcomes = []
        for event in events:
            cur.execute("SELECT fn_csm_ras_event_create(%s::jsonb)", (json.dumps(event),))
            outcomes.append(cur.fetchone()[0])
        sql.commit()
        return outcomes, self.stored(cur)

    @staticmethod
    def stored(cur):
        cur.execute("SELECT msg_id, location_name, count, message, kvcsv, raw_data, time_stamp IS NOT NULL "
                    "FROM csm_ras_event_action ORDER BY rec_id")
        rows = cur.fetchall()
        cur.execute("SELECT node_name, state::text FROM csm_node ORDER BY 1")
        return rows, cur.fetchall()

    @defer.inlineCallbacks
    def test_one_batch_gives_what_one_at_a_time_gives(self):
        self.add_types(self.sql)
        self.sql.commit()
        expected_outcomes, expected_rows = self.one_at_a_time(EVENTS)
        results = yield defer.DeferredList([self.engine.create(event) for event in EVENTS], consumeErrors=True)
        self.assertEqual(self.engine.batches.events, len(EVENTS))
        self.assertEqual(self.engine.batches.inserted, 5)  # plain, on nodes not suppressed, no "$(" in a value
        for event, expected, (ok, outcome) in zip(EVENTS, expected_outcomes, results):
            if "error" in expected:
                self.assertFalse(ok)
                outcome.trap(CSMError)
                self.assertEqual(outcome.value.errmsg, expected["error"])
                continue
            self.assertTrue(ok, event)
            got = {k: v for k, v in outcome.items() if k not in VOLATILE + ("msg_id", "location_name")}
            self.assertEqual(got, {k: v for k, v in expected.items() if k not in VOLATILE}, event)
            if expected.get("time_stamp") and event.get("time_stamp"):
                self.assertEqual(outcome["time_stamp"], expected["time_stamp"])
        self.assertEqual(self.stored(self.sql.cursor()), expected_rows)

    @defer.inlineCallbacks
    def test_a_refused_event_leaves_the_others_as_one_at_a_time(self):
        """The batch of every path with a refused event at its end: rolled back and run again in
        halves, each event's outcome (the node state it saw too) and the rows are those of one
        at a time: the node states the rolled-back run had noted are forgotten."""
        self.add_types(self.sql)
        self.sql.commit()
        expected_outcomes, expected_rows = self.one_at_a_time(EVENTS)
        refused = {"msg_id": "t.plain", "location_name": "c01", "raw_data": "x", "time_stamp": "not a time"}
        results = yield defer.DeferredList([self.engine.create(event) for event in EVENTS + [refused]],
                                           consumeErrors=True)
        self.assertEqual((self.engine.batches.events, self.engine.batches.inserted), (len(EVENTS) + 1, 5))
        self.assertFalse(results[-1][0])
        results[-1][1].trap(CSMError)
        for event, expected, (ok, outcome) in zip(EVENTS, expected_outcomes, results):
            if "error" in expected:
                self.assertFalse(ok)
                continue
            got = {k: v for k, v in outcome.items() if k not in VOLATILE + ("msg_id", "location_name")}
            self.assertEqual(got, {k: v for k, v in expected.items() if k not in VOLATILE}, event)
        self.assertEqual(self.stored(self.sql.cursor()), expected_rows)

    @defer.inlineCallbacks
    def test_order_kept_across_nodes_and_batches(self):
        self.add_types(self.sql)
        self.sql.commit()
        events = [{"msg_id": "t.plain", "location_name": ("c01", "c03", "c04")[n % 3], "raw_data": str(n)}
                  for n in range(2500)]
        yield defer.gatherResults([self.engine.create(event) for event in events])
        rows = self.query("SELECT raw_data FROM csm_ras_event_action ORDER BY rec_id")
        self.assertEqual([int(raw) for raw, in rows], list(range(2500)))
        self.assertGreater(self.engine.batches.inserted, 2000)

    @defer.inlineCallbacks
    def test_event_behind_another_kind_of_write(self):
        """An event queued behind a write of another kind (one without arguments, as the
        master's flush marker) starts a batch of its own."""
        self.add_types(self.sql)
        self.sql.commit()
        pool = self.engine.pool
        marker = pool.enqueue_write("ras", lambda cursor: "marker", want_result=True)
        first = self.engine.create({"msg_id": "t.plain", "location_name": "c01", "raw_data": "a"})
        pool.enqueue_write("inventory", lambda cursor: None)
        second = self.engine.create({"msg_id": "t.plain", "location_name": "c01", "raw_data": "b"})
        outcomes = yield defer.gatherResults([marker, first, second])
        self.assertEqual(outcomes[0], "marker")
        self.assertEqual(self.query("SELECT raw_data FROM csm_ras_event_action ORDER BY rec_id"), [("a",), ("b",)])

    @defer.inlineCallbacks
    def test_events_of_odd_shapes_go_through_the_function(self):
        """Fields that are not strings (from a caller that skipped validation) never break a
        batch: such an event takes the stored function's path, in its place."""
        self.add_types(self.sql)
        self.sql.commit()
        events = [{"msg_id": "t.plain", "location_name": "c01", "raw_data": "a"},
                  {"msg_id": {"not": "a name"}, "location_name": ["c01"], "raw_data": "b"},
                  {"msg_id": "t.plain", "location_name": {"x": 1}, "raw_data": "c"},
                  {"msg_id": "t.plain", "location_name": "c01", "raw_data": 4},
                  {"msg_id": "t.plain", "location_name": "c01", "raw_data": "e"}]
        results = yield defer.DeferredList([self.engine.create(event) for event in events], consumeErrors=True)
        self.assertEqual([ok for ok, _ in results], [True, False, True, True, True])
        self.assertEqual(self.query("SELECT raw_data FROM csm_ras_event_action ORDER BY rec_id"),
                         [("a",), ("c",), ("4",), ("e",)])

    @defer.inlineCallbacks
    def test_text_stored_as_sent(self):
        """Quotes, backslashes, control characters and characters beyond ASCII and the BMP go
        through the insert's JSON parameter and come out as they were sent."""
        self.add_types(self.sql)
        self.sql.commit()
        texts = ['"quoted" \\ back\\slash', "tab\there\nnew line", "caf\u00e9 \U0001f600", "\u2028 \x7f \x01"]
        events = [{"msg_id": "t.plain", "location_name": "c01", "raw_data": text, "kvcsv": "k=" + text}
                  for text in texts]
        yield defer.gatherResults([self.engine.create(event) for event in events])
        self.assertEqual(self.engine.batches.inserted, len(texts))
        self.assertEqual(self.query("SELECT raw_data, kvcsv FROM csm_ras_event_action ORDER BY rec_id"),
                         [(text, "k=" + text) for text in texts])

    @defer.inlineCallbacks
    def test_refused_event_fails_alone(self):
        """A plain event the database refuses (a time stamp it cannot read) fails by itself;
        the events of its statement are written one by one, in their order."""
        self.add_types(self.sql)
        self.sql.commit()
        events = [{"msg_id": "t.plain", "location_name": "c01", "raw_data": "a"},
                  {"msg_id": "t.plain", "location_name": "c01", "raw_data": "b", "time_stamp": "not a time"},
                  {"msg_id": "t.plain", "location_name": "c01", "raw_data": "c"}]
        results = yield defer.DeferredList([self.engine.create(event) for event in events], consumeErrors=True)
        self.assertEqual([ok for ok, _ in results], [True, False, True])
        results[1][1].trap(CSMError)
        self.assertIn("not a time", results[1][1].value.errmsg)
        self.assertEqual(self.query("SELECT raw_data FROM csm_ras_event_action ORDER BY rec_id"), [("a",), ("c",)])

    @defer.inlineCallbacks
    def test_no_subtransaction_per_event(self):
        """Events that go through the stored function share their batch's one savepoint: past
        64 subtransactions a transaction overflows its backend's cache, slowing every session.
        A row's xmin is the (sub)transaction that wrote it; one refused event costs a few more."""
        self.add_types(self.sql)
        self.sql.commit()
        # odd ones hold "$(" in a value their type's message takes: the stored function writes them
        events = [{"msg_id": "t.plain", "location_name": "c01", "raw_data": "%d%s" % (n, "$(" * (n % 2))}
                  for n in range(300)]
        events[152]["time_stamp"] = "not a time"  # a plain event the insert refuses
        results = yield defer.DeferredList([self.engine.create(event) for event in events], consumeErrors=True)
        self.assertEqual([n for n, (ok, _) in enumerate(results) if not ok], [152])
        rows = self.query("SELECT raw_data, xmin::text FROM csm_ras_event_action ORDER BY rec_id")
        self.assertEqual([int(raw.rstrip("$(")) for raw, _ in rows], [n for n in range(300) if n != 152])
        writers = len({xmin for _, xmin in rows})
        self.assertLessEqual(writers, 2 * 10 + 2, "%d subtransactions for %d events" % (writers, len(events)))


    @defer.inlineCallbacks
    def test_a_batch_is_two_round_trips(self):
        """A batch of plain events is its look-up and its insert; an event through the stored
        function, its look-up and the call: a savepoint goes out with the statement it guards,
        its release with the next statement (or the COMMIT). Three batches in one transaction."""
        self.add_types(self.sql)
        self.sql.commit()
        statements = []

        class Counting:
            def __init__(self, cursor):
                self.cursor = cursor

            def execute(self, sql, args=None):
                statements.append(sql.split("(")[0][:60])
                return self.cursor.execute(sql, args)

            def __getattr__(self, name):
                return getattr(self.cursor, name)

        batches = []
        for events in ([{"msg_id": "t.plain", "location_name": "c01", "raw_data": str(n)} for n in range(3)],
                       [{"msg_id": "t.thresh", "location_name": "c01", "raw_data": "3"}],
                       [{"msg_id": "t.plain", "location_name": "c04", "raw_data": str(n)} for n in (4, 5)]):
            batches.append(EventBatch())
            batches[-1].events.extend(events)

        @defer.inlineCallbacks
        def write(cursor):
            counting = Counting(cursor)
            outcomes = []
            for batch in batches:
                outcomes.append((yield process_events(counting, batch)))
            return outcomes
        outcomes = yield self.engine.pool.runInteraction(write)
        stored = [[bool(o.get("stored")) for o in batch] for batch in outcomes]
        self.assertEqual(stored, [[True] * 3, [False], [True] * 2])
        self.assertEqual(len(statements), 6, statements)
        self.assertTrue(statements[1].startswith("SAVEPOINT csm_ras_batch; INSERT"), statements)
        self.assertTrue(statements[2].startswith("RELEASE SAVEPOINT csm_ras_batch; SELECT"), statements)
        self.assertTrue(statements[3].startswith("SAVEPOINT csm_ras_event; SELECT fn_csm_ras_event_create"))
        self.assertTrue(statements[4].startswith("RELEASE SAVEPOINT csm_ras_event; SELECT"), statements)
        self.assertEqual(self.query("SELECT raw_data FROM csm_ras_event_action ORDER BY rec_id"),
                         [("0",), ("1",), ("2",), ("4",), ("5",)])  # the threshold's first: below it


    def slices(self):
        """An ``EventBatches`` on the test's pool whose later turns are run by hand (``Turns``);
        what it hands on, and a Deferred that fires in the reactor turn after its first hand-on."""
        self.add_types(self.sql)
        self.sql.commit()
        clock, handed, first = Turns(), [], defer.Deferred()

        def after(outcome, event):
            if not handed:
                reactor.callLater(0, first.callback, None)
            handed.append(event["raw_data"])
        batches = EventBatches(self.engine.pool, after=after, clock=clock)
        return batches, clock, handed, first

    @defer.inlineCallbacks
    def test_outcomes_handed_on_a_slice_a_turn(self):
        """A write of more events than ``FOLLOW_UPS_A_TURN`` hands on that many outcomes at its
        commit and the rest in later turns, in order, waited-for events in their place."""
        batches, clock, handed, first = self.slices()
        total = 2 * FOLLOW_UPS_A_TURN + 100
        for n in range(total):
            self.assertIsNone(batches.add({"msg_id": "t.plain", "location_name": "c01", "raw_data": str(n)},
                                          wait=False))
        last = batches.add({"msg_id": "t.plain", "location_name": "c01", "raw_data": "last"})
        yield first
        self.assertEqual(batches.events, total + 1)  # one write
        self.assertEqual(len(handed), FOLLOW_UPS_A_TURN)
        clock.turn()
        self.assertEqual(len(handed), 2 * FOLLOW_UPS_A_TURN)
        self.assertFalse(last.called)
        clock.turn()
        self.assertEqual(handed, [str(n) for n in range(total)])
        outcome = yield last
        self.assertTrue(outcome["stored"])
        self.assertEqual(clock.calls, [])

    @defer.inlineCallbacks
    def test_settle_hands_on_what_is_left(self):
        """The master's stop: ``settle`` hands on every outcome left at once, no call left behind."""
        batches, clock, handed, first = self.slices()
        for n in range(FOLLOW_UPS_A_TURN + 1):
            batches.add({"msg_id": "t.plain", "location_name": "c01", "raw_data": str(n)}, wait=False)
        yield first
        self.assertEqual(len(handed), FOLLOW_UPS_A_TURN)
        batches.settle()
        self.assertEqual(handed, [str(n) for n in range(FOLLOW_UPS_A_TURN + 1)])
        self.assertEqual(clock.calls, [])


class SubstituteTests(EngineTestCase):
    def test_same_text_as_the_stored_function(self):
        template = "$(a) $(b)$(c) $(severity) $(message) $(raw_data) $(a)$ $( $(x-y) $()"
        cur = self.sql.cursor()
        cur.execute("INSERT INTO csm_ras_type (msg_id, severity, message, control_action, threshold_count, "
                    "threshold_period, enabled) VALUES ('t.s', 'WARNING', %s, 'NONE', 1, 0, true)", (template,))
        for kvcsv in ("a=1,b=2,c=3", " a = x y ,b=,c", "a=1=2,,=z,b", None, "", "severity=S,message=M,raw_data=r"):
            event = {"msg_id": "t.s", "location_name": "c01", "kvcsv": kvcsv, "raw_data": "raw"}
            cur.execute("SELECT fn_csm_ras_event_create(%s::jsonb) ->> 'message'", (json.dumps(event),))
            self.assertEqual(substitute(template, event, "WARNING"), cur.fetchone()[0], kvcsv)

    def test_value_holding_a_variable_left_to_the_function(self):
        self.assertIsNone(substitute("$(a) $(b)", {"kvcsv": "a=$(b),b=1"}, "INFO"))
