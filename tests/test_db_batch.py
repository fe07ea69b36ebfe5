"""Keyed SELECTs of one reactor turn merged into one statement, against a real PostgreSQL."""

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from csm.api.node import NODE_SELECT
from csm.db.batch import SelectBatcher
from csm.db.queries import Select, keyed_results
from csm.errors import CSMError, ErrorCode
from tests import dbfixture

NODES = [("n%02d" % n, "IN_SERVICE" if n % 2 else "DISCOVERED") for n in range(1, 13)]


def names(result):
    return [row["node_name"] for row in result["results"]]


class BatcherTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.pool = yield dbfixture.started_pool(self, size=2)
        for name, state in NODES:
            yield self.pool.runOperation("INSERT INTO csm_node (node_name, state, type) VALUES (%s, %s, 'compute')",
                                         (name, state))
        self.statements = []
        run_select = self.pool.runSelect
        self.pool.runSelect = lambda sql, args=None: self.statements.append(args) or run_select(sql, args)

    def query(self, state=None):
        return Select(NODE_SELECT).equal("state::text", state).order_by(None, (), "node_name")

    @defer.inlineCallbacks
    def test_calls_of_one_turn_share_a_statement_and_each_gets_its_own_rows(self):
        asked = [["n03"], ["n01", "n02"], ["n12", "n01", "n12"], ["nosuch"], ["n05", "nosuch"]]
        results = yield defer.gatherResults([keyed_results(self.pool, self.query(), "node_name", keys)
                                             for keys in asked])
        self.assertEqual([names(r) for r in results], [["n03"], ["n01", "n02"], ["n01", "n12"], [], ["n05"]])
        self.assertEqual(len(self.statements), 1)
        self.assertEqual(sorted(self.statements[0][-1]), sorted(["n03", "n01", "n02", "n12", "nosuch", "n05"]))
        self.assertEqual(results[0]["results"][0]["state"], "IN_SERVICE")  # whole rows, as query_results gives
        status = self.pool.status()
        self.assertEqual((status["db_merged_queries"], status["db_merged_statements"]), (5, 1))

    @defer.inlineCallbacks
    def test_other_filters_are_other_statements(self):
        results = yield defer.gatherResults([
            keyed_results(self.pool, self.query("IN_SERVICE"), "node_name", ["n01", "n02", "n03"]),
            keyed_results(self.pool, self.query("DISCOVERED"), "node_name", ["n01", "n02", "n03"]),
            keyed_results(self.pool, self.query("IN_SERVICE"), "node_name", ["n04", "n05"])])
        self.assertEqual([names(r) for r in results], [["n01", "n03"], ["n02"], ["n05"]])
        self.assertEqual(len(self.statements), 2)

    @defer.inlineCallbacks
    def test_calls_of_later_turns_are_not_held_back(self):
        first = yield keyed_results(self.pool, self.query(), "node_name", ["n01"])
        second = yield keyed_results(self.pool, self.query(), "node_name", ["n02"])
        self.assertEqual((names(first), names(second)), (["n01"], ["n02"]))
        self.assertEqual(len(self.statements), 2)

    @defer.inlineCallbacks
    def test_statements_carry_at_most_max_keys(self):
        self.pool.batcher = SelectBatcher(self.pool, reactor, max_keys=4)
        asked = [["n01", "n02"], ["n03", "n04"], ["n05", "n06"], ["n07", "n08", "n09", "n10", "n11"], ["n12"]]
        results = yield defer.gatherResults([keyed_results(self.pool, self.query(), "node_name", keys)
                                             for keys in asked])
        self.assertEqual([names(r) for r in results], asked)
        self.assertEqual([len(args[-1]) for args in self.statements], [4, 2, 5, 1])

    @defer.inlineCallbacks
    def test_a_failing_statement_fails_every_call(self):
        broken = Select("SELECT node_name, no_such_column FROM csm_node")
        calls = [keyed_results(self.pool, broken, "node_name", [name]) for name in ("n01", "n02", "n03")]
        for call in calls:
            error = yield self.assertFailure(call, CSMError)
            self.assertEqual(error.errcode, ErrorCode.CSMERR_DB_ERROR)
            self.assertIn("no_such_column", error.errmsg)
        self.assertEqual(len(self.statements), 4)  # merged, then each alone (each fails for itself)
        rows = yield keyed_results(self.pool, self.query(), "node_name", ["n04"])  # the pool is fine after
        self.assertEqual(names(rows), ["n04"])

    @defer.inlineCallbacks
    def test_a_key_postgresql_refuses_fails_its_call_alone(self):
        calls = [keyed_results(self.pool, self.query(), "node_name", keys)
                 for keys in (["n01"], ["n02\x00"], ["n03", "n04"])]
        first = yield calls[0]
        error = yield self.assertFailure(calls[1], Exception)
        third = yield calls[2]
        self.assertEqual((names(first), names(third)), (["n01"], ["n03", "n04"]))
        self.assertIn("NUL", str(error))
        self.assertEqual(self.pool.batcher.statements, 4)  # the merged one, then each alone

    @defer.inlineCallbacks
    def test_a_closed_pool_fails_every_call(self):
        yield self.pool.stop()
        calls = [keyed_results(self.pool, self.query(), "node_name", [name]) for name in ("n01", "n02")]
        for call in calls:
            error = yield self.assertFailure(call, CSMError)
            self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)
        self.assertEqual(len(self.statements), 1)  # an outage is not tried again call by call
