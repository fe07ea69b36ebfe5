"""csm.db.prepared against a real PostgreSQL: statements prepared once per connection."""

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from csm.db import prepared
from csm.db.pool import DatabasePool
from csm.errors import CSMError, ErrorCode
from tests import dbfixture

SQL = """
INSERT INTO t (k, v) VALUES (%(k)s, %(v)s);
UPDATE t SET v = v || '%%' WHERE k = %(k)s;
SELECT k, v, %(k)s + 1 AS next FROM t WHERE k = %(k)s
"""


class PreparedTextTests(SynchronousTestCase):
    def test_executes(self):
        statement = prepared.Prepared(SQL)
        self.assertEqual(len(statement.names), 3)
        self.assertEqual(statement.execute, "; ".join("EXECUTE %s(%%(k)s%s)" % (name, more) for name, more
                                                      in zip(statement.names, (", %(v)s", "", ""))))
        self.assertIn("PREPARE %s AS UPDATE t SET v = v || '%%%%' WHERE k = $1" % statement.names[1],
                      statement.prepare)
        self.assertIs(prepared.prepared(SQL), prepared.prepared(SQL))
        self.assertEqual(prepared.Prepared("SELECT 1").execute, "EXECUTE " + prepared.Prepared("SELECT 1").names[0])


class PreparedTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.pool = yield dbfixture.started_pool(self, size=1)
        yield self.pool.runOperation("CREATE TABLE t (k int PRIMARY KEY, v text)")

    @defer.inlineCallbacks
    def calls(self):
        """{statement name: times it ran} on the pool's one connection."""
        rows = yield self.pool.runQuery("SELECT name, generic_plans + custom_plans FROM pg_prepared_statements")
        return dict(rows)

    @defer.inlineCallbacks
    def test_prepared_once_then_executed(self):
        statement = prepared.prepared(SQL)
        for k in range(3):
            rows = yield prepared.query_dicts(self.pool, SQL, {"k": k, "v": "x"})
            self.assertEqual(rows, [{"k": k, "v": "x%", "next": k + 1}])
        calls = yield self.calls()
        self.assertEqual([calls.get(name) for name in statement.names], [3, 3, 3])
        # a connection without them (here: they were dropped) prepares them again
        yield self.pool.runOperation("DEALLOCATE ALL")
        rows = yield prepared.query_dicts(self.pool, SQL, {"k": 9, "v": "y"})
        self.assertEqual(rows[0]["v"], "y%")
        calls = yield self.calls()
        self.assertEqual([calls.get(name) for name in statement.names], [1, 1, 1])

    @defer.inlineCallbacks
    def test_each_connection_prepares_once(self):
        pool = DatabasePool(None, reactor, dsn=self.pool.dsn, size=3)
        yield pool.start()
        self.addCleanup(pool.close)
        sql = "SELECT %(k)s::int * 2 AS twice"
        for k in range(12):  # the pool hands its connections out in turn
            rows = yield prepared.query_dicts(pool, sql, {"k": k})
            self.assertEqual(rows, [{"twice": 2 * k}])
        self.assertEqual(prepared.prepared(sql).prepares, 3)

    @defer.inlineCallbacks
    def test_one_transaction(self):
        yield prepared.query_dicts(self.pool, SQL, {"k": 1, "v": "x"})
        error = yield self.assertFailure(prepared.query_dicts(self.pool, SQL, {"k": 1, "v": "z"}), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DB_ERROR)  # the key exists: nothing of it stays
        rows = yield self.pool.runQuery("SELECT k, v FROM t")
        self.assertEqual(rows, [(1, "x%")])
