"""A pool stopped and started again (a master fenced, then elected anew)."""

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from csm.db.pool import CONNECTED, DatabasePool
from tests import dbfixture


def insert_event(cursor, text):
    return cursor.execute("INSERT INTO restart_log (text) VALUES (%s)", (text,))


class RestartTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_writes_queued_while_stopped_go_out_after_a_new_start(self):
        _, dsn = dbfixture.fresh_database(self)
        connection = dbfixture.connect(dsn)
        self.addCleanup(connection.close)
        connection.cursor().execute("CREATE TABLE restart_log (text text)")
        pool = DatabasePool(None, reactor, dsn=dsn, size=2)
        self.addCleanup(pool.close)
        yield pool.start()
        yield pool.enqueue_write("ras", insert_event, "before", want_result=True)
        yield pool.stop()
        # the server ends the sessions meanwhile (another master took over)
        dbfixture.server().query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE datname = %s AND pid <> pg_backend_pid()", (dsn.split("dbname=")[1].split()[0],))
        written = pool.enqueue_write("ras", insert_event, "while stopped", want_result=True)
        self.assertFalse(written.called)
        yield pool.start()
        yield written
        self.assertEqual(pool.state, CONNECTED)
        rows = yield defer.gatherResults([pool.runQuery("SELECT text FROM restart_log ORDER BY 1")
                                          for _ in range(4)])  # every connection works
        self.assertEqual(rows, [[("before",), ("while stopped",)]] * 4)
