"""csm.db.merged with the allocation steps against a real PostgreSQL: calls of one turn
share a statement, each gets what it would have got alone, a bad one fails alone."""

import psycopg2
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from csm.db import allocations
from csm.db.merged import Merger
from csm.errors import CSMError, ErrorCode
from tests.test_db_allocations import AllocationFixture, allocation


class MergedStepsTests(AllocationFixture):
    @defer.inlineCallbacks
    def setUp(self):
        yield super().setUp()
        yield self.pool.runOperation("INSERT INTO csm_node (node_name, type, state) VALUES ('n04', 'compute', "
                                     "'IN_SERVICE')")
        self.merger = Merger(self.pool, reactor)

    @defer.inlineCallbacks
    def reserve(self, job, nodes, state="to-running"):
        row = yield self.pool.runInteraction(allocations.reserve, allocation(job), list(nodes), False, state)
        return row["allocation_id"]

    def query(self, sql, *args):
        return self.pool.runQuery(sql, args)

    @defer.inlineCallbacks
    def test_create_and_delete_of_three_in_three_statements(self):
        a = yield self.reserve(1, ["n01", "n02"])
        b = yield self.reserve(2, ["n03"])
        c = yield self.reserve(3, ["n04"], state="staging-in")
        finish = ("running", ("to-running",), False)
        moved = yield defer.gatherResults([
            self.merger.run(allocations.FINISH, finish, (a, {"n01": {"cpu_usage": 100, "energy": 7}})),
            self.merger.run(allocations.FINISH, finish, (b, {"n03": {"cpu_usage": 500}})),
            self.merger.run(allocations.FINISH, finish, (c, {}))])  # not to-running: stays
        self.assertEqual([[(r["allocation_id"], r["state"]) for r in rows] for rows in moved],
                         [[(a, "running")], [(b, "running")], []])
        self.assertEqual((self.merger.calls, self.merger.statements), (3, 1))
        rows = yield self.query("SELECT allocation_id, node_name, state, cpu_usage, energy FROM csm_allocation_node "
                                "ORDER BY node_name")
        self.assertEqual(rows, [(a, "n01", "running", 100, 7), (a, "n02", "running", -1, -1),  # n02: no answer
                                (b, "n03", "running", 500, -1), (c, "n04", "staging-in", None, None)])
        started = yield defer.gatherResults([self.merger.run(allocations.DELETE_START, ("running",), (i,))
                                             for i in (a, b, c)])
        self.assertEqual([[(r["state"], r["csm_nodes"]) for r in rows] for rows in started],
                         [[("running", ["n01", "n02"])], [("running", ["n03"])], [("staging-in", ["n04"])]])
        history = yield defer.gatherResults([
            self.merger.run(allocations.HISTORY, True, (a, 0, "complete", {"n01": {"cpu_usage": 160, "energy": 9},
                                                                           "n02": {"cpu_usage": 5}})),
            self.merger.run(allocations.HISTORY, True, (b, 2, "failed", {}))])  # b's node did not answer
        self.assertEqual([[(r["allocation_id"], r["state"], r["exit_status"]) for r in rows] for rows in history],
                         [[(a, "complete", 0)], [(b, "failed", 2)]])
        last = yield self.merger.run(allocations.HISTORY, False, (c, 0, "complete", None))
        self.assertEqual([(r["allocation_id"], r["state"]) for r in last], [(c, "complete")])
        self.assertEqual((self.merger.calls, self.merger.statements), (9, 4))
        rows = yield self.query("SELECT allocation_id, node_name, cpu_usage, energy FROM csm_allocation_node_history "
                                "ORDER BY node_name")
        self.assertEqual(rows, [(a, "n01", 60, 2), (a, "n02", -1, -1), (b, "n03", -1, -1), (c, "n04", None, None)])
        rows = yield self.query("SELECT allocation_id, state, exit_status FROM csm_allocation_state_history "
                                "WHERE state IN ('complete', 'failed') ORDER BY allocation_id")
        self.assertEqual(rows, [(a, "complete", 0), (b, "failed", 2), (c, "complete", 0)])
        rows = yield self.query("SELECT count(*) FROM csm_allocation")
        self.assertEqual(rows, [(0,)])

    @defer.inlineCallbacks
    def test_a_bad_call_fails_alone(self):
        a = yield self.reserve(1, ["n01"])
        b = yield self.reserve(2, ["n02"])
        for i in (a, b):
            yield self.merger.run(allocations.DELETE_START, ("to-running",), (i,))
        done = [self.merger.run(allocations.HISTORY, False, (i, 0, "complete", None)) for i in (a, 999, b)]
        good = yield done[0]
        error = yield self.assertFailure(done[1], CSMError)
        other = yield done[2]
        self.assertIn("999", error.errmsg)
        self.assertEqual([good[0]["allocation_id"], other[0]["allocation_id"]], [a, b])
        self.assertEqual(self.merger.statements, 2 + 1 + 3)  # the merged one, then each alone
        rows = yield self.query("SELECT allocation_id FROM csm_allocation_history ORDER BY 1")
        self.assertEqual(rows, [(a,), (b,)])

    @defer.inlineCallbacks
    def test_reservations_merged_and_one_wins_a_node(self):
        yield self.pool.runOperation("UPDATE csm_node SET state = 'SOFT_FAILURE' WHERE node_name = 'n04'")
        calls = []
        for job, nodes in ((1, ["n01", "n02"]), (2, ["n03"]), (3, ["n02"]), (4, ["x9"]), (5, ["n04"])):
            values = allocation(job, comment="job %d" % job)
            key = allocations.reserve_key(values, False, "to-running")
            calls.append(self.merger.run(allocations.RESERVE, key, (values, nodes)))
        answers = []
        for d in calls:
            rows = yield d
            try:
                answers.append(allocations.reserved(rows))
            except CSMError as exc:
                answers.append(exc.errcode)
        # job 3 shares n02 with job 1: another statement, which meets job 1's at the row lock
        self.assertEqual((self.merger.calls, self.merger.statements), (5, 2))
        self.assertEqual(answers[3:], [ErrorCode.CSMERR_ALLOC_INVALID_NODES, ErrorCode.CSMERR_ALLOC_UNAVAIL_NODES])
        made = sorted((a for a in answers if isinstance(a, dict)), key=lambda a: a["primary_job_id"])
        self.assertEqual(len(made), 2)  # job 2, and one of jobs 1 and 3
        self.assertIn(ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES, (answers[0], answers[2]))
        winner = made[0] if made[0]["primary_job_id"] != 2 else made[1]
        self.assertEqual([(a["num_nodes"], a["state"], a["comment"]) for a in made if a is not winner],
                         [(1, "to-running", "job 2")])
        self.assertEqual(winner["comment"], "job %d" % winner["primary_job_id"])
        expected = [(made[1 if winner is made[0] else 0]["allocation_id"], "n03")]
        expected += [(winner["allocation_id"], n) for n in (["n01", "n02"] if winner["primary_job_id"] == 1 else
                                                            ["n02"])]
        rows = yield self.query("SELECT allocation_id, node_name FROM csm_allocation_node")
        self.assertEqual(sorted(rows), sorted(expected))
        rows = yield self.query("SELECT allocation_id, state FROM csm_allocation_state_history ORDER BY 1")
        self.assertEqual(sorted(rows), sorted((a["allocation_id"], "to-running") for a in made))

    def hold(self, allocation_id):
        """Another transaction holds the allocation's row (``self.blocker``, until its commit)."""
        self.blocker = psycopg2.connect(self.dsn)
        self.addCleanup(self.blocker.close)
        with self.blocker.cursor() as cur:
            cur.execute("SELECT 1 FROM csm_allocation WHERE allocation_id = %s FOR UPDATE", (allocation_id,))

    @defer.inlineCallbacks
    def test_a_statement_waiting_on_a_lock_holds_later_calls_only_for_a_while(self):
        """A's statement waits on a row lock another transaction holds: the calls of its key in
        later turns run without it once they have waited ``hold_most``, and are answered."""
        a = yield self.reserve(1, ["n01"])
        b = yield self.reserve(2, ["n02"])
        c = yield self.reserve(3, ["n03"])
        self.merger = Merger(self.pool, reactor, hold_most=0.05)
        self.hold(a)
        finish = ("running", ("to-running",), False)
        stuck = self.merger.run(allocations.FINISH, finish, (a, {}))
        later = []
        for i in (b, c):
            yield deferLater(reactor, 0, lambda: None)  # a later turn
            later.append(self.merger.run(allocations.FINISH, finish, (i, {})))
        moved = yield defer.gatherResults(later)
        self.assertEqual([[r["allocation_id"] for r in rows] for rows in moved], [[b], [c]])
        self.assertFalse(stuck.called)
        self.blocker.commit()
        self.assertEqual([r["allocation_id"] for r in (yield stuck)], [a])
        alone = yield self.merger.run(allocations.DELETE_START, ("running",), (b,))  # the key is idle
        self.assertEqual([r["allocation_id"] for r in alone], [b])

    @defer.inlineCallbacks
    def test_calls_arriving_while_their_key_is_in_flight_wait_and_then_run_together(self):
        a = yield self.reserve(1, ["n01"])
        b = yield self.reserve(2, ["n02"])
        c = yield self.reserve(3, ["n03"])
        d = yield self.reserve(4, ["n04"])
        self.merger = Merger(self.pool, reactor, hold_most=60.0)  # held as long as the statement is in flight
        self.hold(a)
        finish = ("running", ("to-running",), False)
        first = self.merger.run(allocations.FINISH, finish, (a, {}))  # its key is idle: not held
        yield deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(self.merger.statements, 1)
        later = []
        for i in (b, c):  # two later turns, the same key
            later.append(self.merger.run(allocations.FINISH, finish, (i, {})))
            yield deferLater(reactor, 0.05, lambda: None)
        other = yield self.merger.run(allocations.DELETE_START, ("to-running",), (d,))  # another key: not held
        self.assertEqual([r["allocation_id"] for r in other], [d])
        self.assertEqual(self.merger.statements, 2)
        self.assertFalse(any(x.called for x in [first] + later))
        self.blocker.commit()
        moved = yield defer.gatherResults([first] + later)
        self.assertEqual([[r["allocation_id"] for r in rows] for rows in moved], [[a], [b], [c]])
        self.assertEqual((self.merger.calls, self.merger.statements), (4, 3))  # b and c in one statement
        alone = yield self.merger.run(allocations.DELETE_START, ("running",), (b,))  # idle again: runs at once
        self.assertEqual([r["allocation_id"] for r in alone], [b])
