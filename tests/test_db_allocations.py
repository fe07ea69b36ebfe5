"""csm.db.allocations against a real PostgreSQL: node checks, reservation, counters, history."""

import psycopg2
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from csm.db import allocations, prepared
from csm.db.pool import DatabasePool
from csm.errors import CSMError, ErrorCode
from tests import dbfixture

NODES = ("n01", "n02", "n03")


def allocation(job, **changes):
    values = {"primary_job_id": job, "secondary_job_id": 0, "launch_node_name": "n01", "num_processors": 0,
              "num_gpus": 0, "projected_memory": 0, "state": "running", "type": "user-managed", "job_type": "batch",
              "user_name": "root", "user_id": 0, "user_group_id": 0, "user_script": "", "account": "",
              "begin_time": "2026-11-24 10:00:00", "job_submit_time": "2026-11-24 09:59:00", "time_limit": 0}
    values.update(changes)
    return values


class AllocationFixture(TestCase):
    """A fresh database with the compute nodes ``NODES`` and a service node, and a pool."""

    @defer.inlineCallbacks
    def setUp(self):
        _, self.dsn = dbfixture.fresh_database(self)
        connection = psycopg2.connect(self.dsn)
        with connection, connection.cursor() as cur:
            for node in NODES:
                cur.execute("INSERT INTO csm_node (node_name, type, state) VALUES (%s, 'compute', 'IN_SERVICE')",
                            (node,))
            cur.execute("INSERT INTO csm_node (node_name, type, state) VALUES ('s01', 'service', 'IN_SERVICE')")
        connection.close()
        self.pool = DatabasePool(None, reactor, dsn=self.dsn, size=3)
        yield self.pool.start()
        self.addCleanup(self.pool.close)


class AllocationStoreTests(AllocationFixture):
    def reserve(self, job, nodes, shared=False, state="running", **changes):
        return self.pool.runInteraction(allocations.reserve, allocation(job, **changes), list(nodes), shared, state)

    @defer.inlineCallbacks
    def test_node_checks(self):
        error = yield self.assertFailure(self.reserve(1, ["n01", "x9"]), CSMError)
        self.assertEqual((error.errcode, [e.source for e in error.node_errors]),
                         (ErrorCode.CSMERR_ALLOC_INVALID_NODES, ["x9"]))
        error = yield self.assertFailure(self.reserve(1, ["n01", "s01"]), CSMError)
        self.assertEqual((error.errcode, [e.source for e in error.node_errors]),
                         (ErrorCode.CSMERR_ALLOC_UNAVAIL_NODES, ["s01"]))
        self.assertIn("service", error.node_errors[0].errmsg)
        rows = yield self.pool.runQuery("SELECT count(*) FROM csm_allocation")
        self.assertEqual(rows, [(0,)])  # nothing half-written

    @defer.inlineCallbacks
    def test_exclusive_and_shared(self):
        first = yield self.reserve(1, ["n01", "n02"], shared=True)
        self.assertEqual((first["state"], first["num_nodes"]), ("running", 2))
        second = yield self.reserve(2, ["n02", "n03"], shared=True)  # shared with shared: fine
        error = yield self.assertFailure(self.reserve(3, ["n03"]), CSMError)  # exclusive over a shared one
        self.assertEqual(error.errcode, ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES)
        self.assertIn("allocation %d" % second["allocation_id"], error.node_errors[0].errmsg)
        # staging-in allocations do not make a node busy
        yield self.pool.runInteraction(allocations.set_state, first["allocation_id"], "staging-out")
        yield self.pool.runInteraction(allocations.set_state, second["allocation_id"], "staging-in")
        yield self.reserve(4, ["n01", "n02", "n03"])

    @defer.inlineCallbacks
    def test_concurrent_reservations_of_one_node(self):
        """Row locks make the second create see the first: exactly one wins."""
        outcomes = yield defer.DeferredList([self.reserve(job, ["n03", "n01"]) for job in (1, 2, 3)],
                                            consumeErrors=True)
        won = [ok for ok, _ in outcomes]
        self.assertEqual(won.count(True), 1)
        for ok, result in outcomes:
            if not ok:
                self.assertEqual(result.value.errcode, ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES)

    def one_trip(self, statement):
        """A ``*_statement`` as the master runs it: prepared, one round trip, no BEGIN/COMMIT."""
        return prepared.query_dicts(self.pool, *statement)

    @defer.inlineCallbacks
    def test_concurrent_one_trip_reservations(self):
        """Each reservation is one query string (lock, then check and insert): the check sees what
        the lock's holder committed, so exactly one of three at once wins."""
        outcomes = yield defer.DeferredList(
            [self.one_trip(allocations.reserve_statement(allocation(job), ["n02", "n01"], False, "to-running"))
             .addCallback(allocations.reserved) for job in (1, 2, 3)], consumeErrors=True)
        self.assertEqual([ok for ok, _ in outcomes].count(True), 1)
        self.assertEqual({result.value.errcode for ok, result in outcomes if not ok},
                         {ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES})
        rows = yield self.pool.runQuery("SELECT count(*) FROM csm_allocation_node")
        self.assertEqual(rows, [(2,)])

    @defer.inlineCallbacks
    def test_create_and_delete_in_four_statements(self):
        row = allocations.reserved((yield self.one_trip(allocations.reserve_statement(
            allocation(1), ["n01", "n02"], False, "to-running"))))
        allocation_id = row["allocation_id"]
        self.assertEqual((row["state"], row["num_nodes"]), ("to-running", 2))
        moved = yield self.one_trip(allocations.finish_statement(allocation_id, "running", ("to-running",), {
            "n01": {"cpu_usage": 1000, "energy": 50}}, False))  # n02 did not answer
        self.assertEqual(moved[0]["state"], "running")
        again = yield self.one_trip(allocations.finish_statement(allocation_id, "running", ("to-running",), {}, False))
        self.assertEqual(again, [])  # not from running: nothing moves
        old = (yield self.one_trip(allocations.delete_start_statement(allocation_id, ("running",))))[0]
        self.assertEqual((old["state"], old["csm_nodes"]), ("running", ["n01", "n02"]))
        rows = yield self.pool.runQuery("SELECT DISTINCT state FROM csm_allocation_node WHERE allocation_id = %s",
                                        (allocation_id,))
        self.assertEqual(rows, [("deleting-mcast",)])
        history = yield self.one_trip(allocations.history_statement(allocation_id, 0, "complete", {
            "n01": {"cpu_usage": 1600, "energy": 80}, "n02": {"cpu_usage": 5}}))
        self.assertEqual((history[0]["state"], history[0]["exit_status"]), ("complete", 0))
        rows = yield self.pool.runQuery("SELECT node_name, cpu_usage, energy FROM csm_allocation_node_history "
                                        "WHERE allocation_id = %s ORDER BY 1", (allocation_id,))
        self.assertEqual(rows, [("n01", 600, 30), ("n02", -1, -1)])  # n02 had no baseline
        rows = yield self.pool.runQuery("SELECT state FROM csm_allocation_state_history WHERE allocation_id = %s "
                                        "ORDER BY history_time, state = 'complete'", (allocation_id,))
        self.assertEqual([r[0] for r in rows], ["to-running", "running", "deleting-mcast", "complete"])
        # a staging-in allocation needs no epilog: deleting
        staged = yield self.reserve(2, ["n03"], state="staging-in")
        old = (yield self.one_trip(allocations.delete_start_statement(staged["allocation_id"], ("running",))))[0]
        rows = yield self.pool.runQuery("SELECT state FROM csm_allocation WHERE allocation_id = %s",
                                        (staged["allocation_id"],))
        self.assertEqual((old["state"], old["csm_nodes"], rows), ("staging-in", ["n03"], [("deleting",)]))
        gone = yield self.one_trip(allocations.delete_start_statement(allocation_id, ("running",)))
        self.assertEqual(gone, [])

    def test_an_end_in_three_statements(self):
        """The deltas (both updates), the dump, and the closing state with the history row read."""
        def statements(sql_args):
            return len(prepared.prepared(sql_args[0]).names)
        self.assertEqual([statements(allocations.history_statement(1, 0, "complete", readings))
                          for readings in ({"n01": {"energy": 1}}, None)], [3, 2])
        self.assertEqual(statements(allocations.history_many_statement([(1, 0, "complete", None)], True)), 3)

    @defer.inlineCallbacks
    def test_history_keeps_every_column(self):
        """Each live column, set to a value of its own, reaches history (the dump names them)."""
        row = yield self.reserve(7, ["n01"], ssd_file_system_name="fs", isolated_cores=2, user_flags="u",
                                 system_flags="s", ssd_min=3, ssd_max=4, num_processors=5, num_gpus=6,
                                 projected_memory=7, user_group_name="g", user_script="x.sh", account="acct",
                                 comment="c", job_name="j", queue="q", requeue="r", time_limit=9, wc_key="w",
                                 smt_mode=2, core_blink=True, reservation="resv", secondary_job_id=3)
        live = (yield self.pool.runInteraction(allocations.find_active, row["allocation_id"]))[0]
        self.assertEqual([c for c, v in live.items() if v is None], [])  # the test sets every column
        history = (yield self.one_trip(allocations.history_statement(row["allocation_id"], 5, "failed")))[0]
        self.assertEqual({c: history[c] for c in live if c != "state"}, {c: v for c, v in live.items() if c != "state"})
        self.assertEqual((history["state"], history["exit_status"]), ("failed", 5))
        self.assertIsNotNone(history["end_time"])

    @defer.inlineCallbacks
    def test_counters_become_deltas(self):
        row = yield self.reserve(1, NODES, state="to-running")
        allocation_id = row["allocation_id"]
        yield self.one_trip(allocations.finish_statement(allocation_id, "running", ("to-running",), {
            "n01": {"cpu_usage": 1000, "energy": 50, "memory_usage_max": 0, "gpu_usage": -1},
            "n02": {"cpu_usage": 1000, "energy": 50}}, False))
        yield self.one_trip(allocations.finish_statement(allocation_id, "to-staging-out", ("running",), {
            "n01": {"cpu_usage": 4000, "energy": 20, "memory_usage_max": 7 << 20, "gpu_usage": 5},
            "n02": {"cpu_usage": 1500, "energy": 80}}, True))  # n03 did not answer
        rows = yield self.pool.runQuery("SELECT node_name, cpu_usage, energy, memory_usage_max, gpu_usage "
                                        "FROM csm_allocation_node WHERE allocation_id = %s ORDER BY 1",
                                        (allocation_id,))
        self.assertEqual(rows, [("n01", 3000, -2, 7 << 20, -1),  # energy went backwards; no GPU baseline
                                ("n02", 500, 30, -1, -1),
                                ("n03", -1, -1, -1, -1)])

    @defer.inlineCallbacks
    def test_history_and_open_steps(self):
        row = yield self.reserve(1, NODES)
        allocation_id = row["allocation_id"]
        yield self.pool.runOperation(
            "INSERT INTO csm_step (step_id, allocation_id, begin_time, status, executable, working_directory, "
            "argument, environment_variable, num_nodes, num_processors, num_gpus, projected_memory, num_tasks) "
            "VALUES (1, %s, now(), 'running', 'a.out', '/', '', '', 1, 1, 0, 0, 1)", (allocation_id,))
        history = (yield self.one_trip(allocations.history_statement(allocation_id, 3, "complete")))[0]
        self.assertEqual((history["state"], history["exit_status"]), ("complete", 3))
        rows = yield self.pool.runQuery("SELECT error_message FROM csm_step_history WHERE allocation_id = %s",
                                        (allocation_id,))
        self.assertEqual(rows, [("Removed by Allocation.",)])
        rows = yield self.pool.runQuery("SELECT count(*) FROM csm_allocation_node_history WHERE allocation_id = %s",
                                        (allocation_id,))
        self.assertEqual(rows, [(3,)])
        gone = yield self.pool.runInteraction(allocations.find_active, allocation_id)
        self.assertEqual(gone, [])
        # the nodes are free for the next one
        yield self.reserve(2, NODES)
