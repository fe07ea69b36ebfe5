"""The master's pool against a real PostgreSQL, including a server that goes away."""

import os
import signal
import time
from types import SimpleNamespace

import psycopg2
from twisted.internet import defer, reactor, task, threads
from twisted.protocols import portforward
from twisted.python import failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from csm.db import pool as pool_module, schema
from csm.db.connection import Connection
from csm.db.embedded import EmbeddedPostgres
from csm.db.pool import CONNECTED, OUTAGE, DatabasePool
from csm.errors import CSMError, ErrorCode
from csm.roles.database import DatabaseService
from tests import dbfixture


def insert_event(cursor, text):
    return cursor.execute("INSERT INTO outage_log (kind, text) VALUES ('ras', %s)", (text,))


def insert_env(cursor, text):
    return cursor.execute("INSERT INTO outage_log (kind, text) VALUES ('env', %s)", (text,))


@defer.inlineCallbacks
def wait_until(predicate, timeout=30.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %gs" % timeout)
        yield task.deferLater(reactor, interval, lambda: None)


class PoolTests(TestCase):
    @defer.inlineCallbacks
    def test_queries(self):
        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=2)
        yield pool.start()
        self.addCleanup(pool.close)
        rows = yield pool.runQuery("SELECT msg_id FROM csm_ras_type WHERE msg_id = %s", ("csm.status.down",))
        self.assertEqual(rows, [("csm.status.down",)])
        results = yield defer.gatherResults([pool.runQuery("SELECT pg_sleep(0.05), %s", (i,)) for i in range(6)])
        self.assertEqual([r[0][1] for r in results], list(range(6)))
        error = yield self.assertFailure(pool.runQuery("SELECT * FROM no_such_table"), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DB_ERROR)
        self.assertEqual(pool.state, CONNECTED)
        version = yield pool.schema_version()
        self.assertEqual((version, pool.status()["db_schema_version"]), (schema.SCHEMA_VERSION,) * 2)

    @defer.inlineCallbacks
    def test_stopped_pool_fails_calls(self):
        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=1)
        yield pool.start()
        yield pool.stop()
        error = yield self.assertFailure(pool.runQuery("SELECT 1"), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)

    @defer.inlineCallbacks
    def test_unreachable_database_at_start(self):
        pool = DatabasePool(None, reactor, dsn="host=127.0.0.1 port=1 dbname=x user=x connect_timeout=2", size=1)
        error = yield self.assertFailure(pool.start(), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)

    @defer.inlineCallbacks
    def test_server_older_than_needed_is_refused_at_start(self):
        _, dsn = dbfixture.fresh_database(self)
        self.patch(pool_module, "MIN_SERVER_VERSION", 990000)  # the real server is older than that
        pool = DatabasePool(None, reactor, dsn=dsn, size=2)
        error = yield self.assertFailure(pool.start(), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)
        self.assertIn("CSM needs 99 or later", error.errmsg)
        self.assertTrue(all(c._connection is None or c._connection.closed for c in pool.connections))


class CommitAnswerLost(portforward.ProxyServer):
    """A PostgreSQL session passed through, but for the factory's next ``cuts`` COMMITs: each
    goes to the server, and the client's side is cut before the server can answer."""

    COMMIT = b"Q\x00\x00\x00\x0bcommit\x00"

    seen = b""

    def dataReceived(self, data):
        super().dataReceived(data)
        self.seen = (self.seen + data)[-len(self.COMMIT):]  # a message split across reads too
        if self.factory.cuts and self.seen == self.COMMIT:
            self.factory.cuts -= 1
            self.transport.abortConnection()


class OutageTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        self.pg = EmbeddedPostgres()
        yield threads.deferToThread(self.pg.start)
        self.addCleanup(self.pg.stop)
        connection = psycopg2.connect(self.pg.dsn)
        with connection, connection.cursor() as cur:
            cur.execute("CREATE TABLE outage_log (n serial PRIMARY KEY, kind text, text text)")
        connection.close()
        self.pool = DatabasePool(None, reactor, dsn=self.pg.dsn, size=3, max_queue=1000)
        self.states = []
        self.pool.subscribe(self.states.append)
        yield self.pool.start()
        self.addCleanup(self.pool.close)

    @defer.inlineCallbacks
    def test_outage_fails_fast_queues_writes_and_recovers(self):
        yield threads.deferToThread(self.pg.stop_server)
        started = time.monotonic()
        error = yield self.assertFailure(self.pool.runQuery("SELECT 1"), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(self.pool.state, OUTAGE)
        # later calls fail at once too
        error = yield self.assertFailure(self.pool.runQuery("SELECT 1"), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)
        for n in range(50):
            self.pool.enqueue_write("ras", insert_event, "event %d" % n)
        self.assertEqual(len(self.pool.queue), 50)
        yield threads.deferToThread(self.pg.start_server)
        yield wait_until(lambda: self.pool.state == CONNECTED and not self.pool.queue)
        rows = yield self.pool.runQuery("SELECT text FROM outage_log ORDER BY n")
        self.assertEqual([r[0] for r in rows], ["event %d" % n for n in range(50)])
        self.assertEqual(self.states, [CONNECTED, OUTAGE, CONNECTED])
        # every connection, reconnected too, runs without JIT compilation (SESSION_OPTIONS)
        jit = yield defer.gatherResults([self.pool.runQuery("SELECT current_setting('jit'), pg_sleep(0.05)")
                                         for _ in range(3)])
        self.assertEqual([rows[0][0] for rows in jit], ["off"] * 3)

    @defer.inlineCallbacks
    def test_server_gone_under_a_running_transaction(self):
        """The connection drops while a transaction runs: its call fails with 24 and nothing is
        logged as an unhandled error (txpostgres rolled back on the closed cursor and logged
        ``cursor already closed``)."""
        d = self.pool.runInteraction(lambda cursor: cursor.execute("SELECT pg_sleep(60)"))
        yield wait_until(lambda: self.pg.query("SELECT count(*) FROM pg_stat_activity "
                                               "WHERE query = 'SELECT pg_sleep(60)'")[0][0])
        yield threads.deferToThread(self.pg.stop_server, "immediate")
        error = yield self.assertFailure(d, CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)
        self.assertEqual(self.flushLoggedErrors(), [])
        yield threads.deferToThread(self.pg.start_server)
        yield wait_until(lambda: self.pool.state == CONNECTED)
        rows = yield self.pool.runInteraction(lambda cursor: cursor.execute("SELECT 1").addCallback(
            lambda cursor: cursor.fetchall()))
        self.assertEqual(rows, [(1,)])

    @defer.inlineCallbacks
    def test_reconnect_to_a_server_that_answers_late(self):
        """The pool's backends end while the postmaster is stopped (SIGSTOP): the server takes
        TCP connections and answers none. Attempts give up after ``heartbeat_timeout`` and try
        again, the reactor stays free, writes wait in the queue; once the postmaster goes on,
        the pool is back and writes them."""
        pool = DatabasePool(None, reactor, dsn=self.pg.dsn, size=3, heartbeat_timeout=2.0)
        yield pool.start()
        self.addCleanup(pool.stop)
        admin = dbfixture.connect(self.pg.dsn)
        self.addCleanup(admin.close)
        with open(os.path.join(self.pg.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        os.kill(postmaster, signal.SIGSTOP)
        self.addCleanup(os.kill, postmaster, signal.SIGCONT)
        yield threads.deferToThread(admin.cursor().execute, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
        yield wait_until(lambda: pool.state == OUTAGE, timeout=10.0)
        ticks = []
        ticker = task.LoopingCall(lambda: ticks.append(time.monotonic()))
        ticker.start(0.02)
        pool.enqueue_write("ras", insert_event, "late")
        yield task.deferLater(reactor, 5.0, lambda: None)
        self.assertEqual(pool.state, OUTAGE)
        self.assertGreaterEqual(pool.reconnect_attempts, 2)  # a silent attempt is given up
        os.kill(postmaster, signal.SIGCONT)
        yield wait_until(lambda: pool.state == CONNECTED and not pool.queue, timeout=10.0)
        ticker.stop()
        # an attempt that blocked the reactor would stop it for its 2 s; a loaded machine's
        # scheduling alone has stopped it for 0.9 s
        self.assertLess(max(b - a for a, b in zip(ticks, ticks[1:])), 1.5)
        rows = yield pool.runQuery("SELECT text FROM outage_log")
        self.assertEqual(rows, [("late",)])

    def pool_behind_commit_cutter(self):
        """A pool of one connection through a ``CommitAnswerLost`` proxy (``proxy.cuts`` arms it)."""
        proxy = portforward.ProxyFactory("127.0.0.1", self.pg.port)
        proxy.protocol = CommitAnswerLost
        proxy.cuts = 0
        port = reactor.listenTCP(0, proxy, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        pool = DatabasePool(None, reactor, dsn="host=127.0.0.1 port=%d dbname=postgres user=postgres sslmode=disable"
                            % port.getHost().port, size=1)
        return pool, proxy

    @defer.inlineCallbacks
    def test_a_commit_whose_answer_is_lost_is_not_written_twice(self):
        """The connection is cut once COMMIT is sent: the server commits, the pool sees the
        connection go. Back again, it finds the transaction committed and does not run it again.
        A proxy passes COMMIT to the server and cuts the pool's side at once, so the answer can
        never arrive first (a cut of the pool's own socket raced the server's answer)."""
        pool, proxy = self.pool_behind_commit_cutter()
        states = []
        pool.subscribe(states.append)
        yield pool.start()
        self.addCleanup(pool.close)
        proxy.cuts = 1  # the write's COMMIT
        result = yield pool.enqueue_write("ras", lambda cursor, text: insert_event(cursor, text).addCallback(
            lambda _: text), "once", want_result=True)
        self.assertEqual((result, proxy.cuts), ("once", 0))
        self.assertEqual(states, [CONNECTED, OUTAGE, CONNECTED])
        rows = yield pool.runQuery("SELECT text FROM outage_log")
        self.assertEqual(rows, [("once",)])

    @defer.inlineCallbacks
    def test_a_commit_whose_answer_is_lost_is_settled_by_a_restarted_pool(self):
        """As above, but the pool is stopped as the outage begins (a master fenced when its
        database went) and started again (elected anew): the start settles the transaction
        before it writes; it ran the writes again, twice in the database."""
        pool, proxy = self.pool_behind_commit_cutter()
        pool.subscribe(lambda state: pool.stop() if state == OUTAGE else None)
        yield pool.start()
        self.addCleanup(pool.close)
        proxy.cuts = 1  # the write's COMMIT
        written = pool.enqueue_write("ras", lambda cursor, text: insert_event(cursor, text).addCallback(
            lambda _: text), "once", want_result=True)
        yield wait_until(lambda: pool.writes.unsure is not None and pool.state != CONNECTED)
        self.assertEqual(proxy.cuts, 0)
        yield pool.start()
        self.assertEqual((yield written), "once")
        rows = yield pool.runQuery("SELECT text FROM outage_log")
        self.assertEqual(rows, [("once",)])

    @defer.inlineCallbacks
    def test_an_overflow_during_the_outage_keeps_the_unsure_transactions_writes(self):
        """A transaction left unsure (its COMMIT sent, the answer lost) is the head of the
        queue: an overflow meanwhile drops a write still waiting, not one of its writes (that
        failed "dropped" though the transaction had committed it)."""
        pool, proxy = self.pool_behind_commit_cutter()
        pool.subscribe(lambda state: pool.stop() if state == OUTAGE else None)
        yield pool.start()
        self.addCleanup(pool.close)
        proxy.cuts = 1
        written = pool.enqueue_write("env", lambda cursor, text: insert_env(cursor, text).addCallback(
            lambda _: text), "committed", want_result=True)
        yield wait_until(lambda: pool.writes.unsure is not None and pool.state != CONNECTED)
        pool.writes.max_queue = 1
        waiting = pool.enqueue_write("env", insert_env, "waiting", want_result=True)
        self.assertEqual((written.called, waiting.called), (False, True))  # dropped inside enqueue
        error = yield self.assertFailure(waiting, CSMError)
        self.assertIn("dropped", error.errmsg)
        yield pool.start()
        self.assertEqual((yield written), "committed")
        self.assertEqual(pool.writes.dropped["env"], 1)
        rows = yield pool.runQuery("SELECT text FROM outage_log")
        self.assertEqual(rows, [("committed",)])

    @defer.inlineCallbacks
    def test_a_caller_waiting_for_a_write_is_answered_when_the_outage_begins(self):
        runs = []

        def slow_first_time(cursor, text):
            runs.append(text)
            return cursor.execute("SELECT pg_sleep(%s)", (60 if len(runs) == 1 else 0,)).addCallback(
                lambda _: insert_event(cursor, text))
        written = self.pool.enqueue_write("ras", slow_first_time, "slow", want_result=True)
        answer = self.pool.unless_outage(written, "queued")
        self.assertTrue(self.pool.writes_promptly)
        yield wait_until(lambda: runs)
        yield threads.deferToThread(self.pg.stop_server, "immediate")
        self.assertEqual((yield answer), "queued")
        self.assertFalse(self.pool.writes_promptly)
        self.pool.enqueue_write("ras", insert_event, "meanwhile")
        yield threads.deferToThread(self.pg.start_server)
        yield written
        rows = yield self.pool.runQuery("SELECT text FROM outage_log ORDER BY n")
        self.assertEqual(rows, [("slow",), ("meanwhile",)])
        self.assertTrue(self.pool.writes_promptly)

    @defer.inlineCallbacks
    def test_idle_pool_notices_the_server_going(self):
        yield threads.deferToThread(self.pg.stop_server)
        yield wait_until(lambda: self.pool.state == OUTAGE, timeout=2.0)  # no call made
        yield threads.deferToThread(self.pg.start_server)
        yield wait_until(lambda: self.pool.state == CONNECTED)
        rows = yield self.pool.runQuery("SELECT 1")
        self.assertEqual(rows, [(1,)])

    @defer.inlineCallbacks
    def test_stop_during_outage_leaves_nothing_pending(self):
        yield threads.deferToThread(self.pg.stop_server)
        yield wait_until(lambda: self.pool.state == OUTAGE, timeout=2.0)
        yield self.pool.stop()
        self.assertIsNone(self.pool._round)

    @defer.inlineCallbacks
    def test_heartbeat_declares_a_silent_server_dead(self):
        pool = DatabasePool(None, reactor, dsn=self.pg.dsn, size=2, heartbeat=0.3, heartbeat_timeout=0.5)
        states = []
        pool.subscribe(states.append)
        yield pool.start()
        self.addCleanup(pool.stop)
        heartbeat = pool.heartbeat_service()
        heartbeat.startService()
        self.addCleanup(heartbeat.stopService)
        connection = psycopg2.connect(self.pg.dsn)
        with connection.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
                        "AND pid <> pg_backend_pid()")
            backends = [row[0] for row in cur.fetchall()]
        connection.close()
        for pid in backends:  # the backends go silent, the server still takes new connections
            os.kill(pid, signal.SIGSTOP)
            self.addCleanup(os.kill, pid, signal.SIGCONT)
        started = time.monotonic()
        yield wait_until(lambda: OUTAGE in states, timeout=5.0)
        self.assertLess(time.monotonic() - started, 2.0)
        yield wait_until(lambda: pool.state == CONNECTED, timeout=10.0)
        rows = yield pool.runQuery("SELECT 1")
        self.assertEqual(rows, [(1,)])
        self.assertEqual(states, [CONNECTED, OUTAGE, CONNECTED])

    @defer.inlineCallbacks
    def test_overflow_drops_environmental_data_first(self):
        self.pool.writes.max_queue = 4
        overflows = []
        self.pool.writes.on_overflow = lambda kind, count: overflows.append(kind)
        yield threads.deferToThread(self.pg.stop_server)
        yield self.assertFailure(self.pool.runQuery("SELECT 1"), CSMError)
        for n in range(3):
            self.pool.enqueue_write("env", insert_env, "env %d" % n)
            self.pool.enqueue_write("ras", insert_event, "ras %d" % n)
        self.assertEqual([w.kind for w in self.pool.queue], ["ras", "ras", "env", "ras"])
        self.assertEqual(overflows, ["env", "env"])
        yield threads.deferToThread(self.pg.start_server)
        yield wait_until(lambda: self.pool.state == CONNECTED and not self.pool.queue)
        rows = yield self.pool.runQuery("SELECT text FROM outage_log ORDER BY n")
        self.assertEqual([r[0] for r in rows], ["ras 0", "ras 1", "env 2", "ras 2"])


class HeartbeatScheduleTests(SynchronousTestCase):
    def test_a_child_timer_of_the_masters_database_service(self):
        """The heartbeat runs while its service does (a child of the master's DatabaseService),
        not as a LoopingCall the pool starts and stops by hand."""
        clock = task.Clock()
        pool = DatabasePool(None, clock, dsn="dbname=unused", heartbeat=15.0)
        probes = []
        pool._call = lambda use: probes.append(use) or defer.succeed(None)
        database = DatabaseService(SimpleNamespace(db=pool))
        self.assertEqual([child.name for child in database], ["heartbeat"])
        heartbeat = database.getServiceNamed("heartbeat")
        heartbeat.startService()
        clock.advance(15)
        self.assertEqual(probes, [])  # not connected: nothing to probe
        pool.state, pool._free, pool._last_success = CONNECTED, ["connection"], clock.seconds()
        clock.advance(15)
        self.assertEqual(len(probes), 1)
        heartbeat.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_postponed_by_successful_calls(self):
        clock = task.Clock()
        pool = DatabasePool(None, clock, dsn="dbname=unused", heartbeat=15.0)
        probes = []
        pool._call = lambda use: probes.append(use) or defer.succeed(None)
        pool.state, pool._free, pool._last_success = CONNECTED, ["connection"], clock.seconds()
        clock.advance(10)
        pool._last_success = clock.seconds()  # a call succeeded
        clock.advance(5)
        pool._heartbeat()
        self.assertEqual(probes, [])
        clock.advance(10)
        pool._heartbeat()
        self.assertEqual(len(probes), 1)


class ReconnectScheduleTests(SynchronousTestCase):
    """The rounds of reconnection, on a Clock; the server's answer is made at txpostgres's
    reconnect (a real server is in OutageTests)."""

    def setUp(self):
        self.clock = task.Clock()
        self.pool = DatabasePool(None, self.clock, dsn="dbname=unused", size=3)
        self.attempts, self.up = [], False
        for index, connection in enumerate(self.pool.connections):
            connection.detector.reconnect = lambda index=index: self.attempt(index)
        self.pool.state = CONNECTED

    def attempt(self, index):
        self.attempts.append((self.clock.seconds(), index))
        return defer.succeed(None) if self.up else defer.fail(psycopg2.OperationalError("refused"))

    def server_goes(self):
        for connection in self.pool.connections[1:]:
            connection.detector.connectionIsDead = True
        self.pool.connections[0].detector.checkForDeadConnection(failure.Failure(psycopg2.OperationalError("gone")))

    def advance(self, until):
        """Run the clock to ``until``, stopping at each call due on the way."""
        while True:
            due = [call.getTime() for call in self.clock.getDelayedCalls() if call.getTime() <= until]
            if not due:
                break
            self.clock.advance(min(due) - self.clock.seconds())
        self.clock.advance(until - self.clock.seconds())

    def test_one_connection_tries_a_second_apart_at_most_then_all(self):
        self.server_goes()
        self.clock.advance(0)
        self.assertEqual(self.pool.state, OUTAGE)
        self.advance(60.0)
        times = [t for t, _ in self.attempts]
        self.assertEqual(times[0], 0.0)
        self.assertEqual({index for _, index in self.attempts}, {0})  # the others wait for it
        self.assertLessEqual(max(b - a for a, b in zip(times, times[1:])), 0.8 + 1e-6)
        self.assertLess(len(times), 80)  # 1.25 a second once backed off
        self.up = True
        self.advance(61.0)
        tries = [(t, index) for t, index in self.attempts if t >= 60.0]
        self.assertEqual(sorted(index for _, index in tries), [0, 1, 2])
        self.assertEqual(len({t for t, _ in tries}), 1)  # the others at once after the first
        self.assertEqual(self.pool.state, CONNECTED)

    def test_a_server_that_keeps_failing_keeps_the_back_off(self):
        """Connected for a moment and gone again (a crash loop): each outage waits longer
        than the last, up to 0.8 s; after 10 s connected the back-off starts afresh."""
        self.up = True
        waits = []
        for flap in range(7):
            gone = self.clock.seconds()
            self.server_goes()
            self.advance(gone + 1.05)
            self.assertEqual(self.pool.state, CONNECTED)
            waits.append(round(self.attempts[-1][0] - gone, 2))
            self.advance(gone + 2.0)
        self.assertEqual(waits, [0.0, 0.1, 0.2, 0.4, 0.8, 0.8, 0.8])
        self.advance(self.clock.seconds() + 10.0)
        self.server_goes()
        self.clock.advance(0)
        self.assertEqual(self.attempts[-1][0], self.clock.seconds())


class SettleTests(TestCase):
    """Whether a transaction left unsure by a lost connection committed (``_committed``)."""

    @defer.inlineCallbacks
    def unsure(self, commit):
        _, dsn = dbfixture.fresh_database(self)
        other = psycopg2.connect(dsn)
        self.addCleanup(other.close)
        with other.cursor() as cur:
            cur.execute("CREATE TABLE settle_log (n int)")
            other.commit()
            cur.execute("INSERT INTO settle_log VALUES (1) RETURNING txid_current(), pg_backend_pid()")
            xid, pid = cur.fetchone()
        if commit:
            other.commit()
        connection = Connection(reactor)
        yield connection.connect(dsn)
        self.addCleanup(connection.close)
        # a clock that never moves: waiting on it (a poll) would hang the test
        pool = DatabasePool(None, task.Clock(), dsn=dsn)
        committed = yield pool._committed(connection, SimpleNamespace(xid=xid, pid=pid))
        rows = yield connection.runQuery("SELECT count(*) FROM settle_log")
        return committed, rows[0][0]

    @defer.inlineCallbacks
    def test_in_progress_is_ended_and_waited_for_by_the_server(self):
        self.assertEqual((yield self.unsure(commit=False)), (False, 0))

    @defer.inlineCallbacks
    def test_committed(self):
        self.assertEqual((yield self.unsure(commit=True)), (True, 1))


class SchemaCheckTests(TestCase):
    def test_master_refuses_unknown_version(self):
        error = self.assertRaises(schema.SchemaError, schema.check_version, "17.0")
        self.assertIn("17.0", str(error))


def broken_write(cursor):
    return cursor.execute("SELECT * FROM no_such_table")


broken_write.safe_in_batch = True


class BatchTests(TestCase):
    @defer.inlineCallbacks
    def test_a_write_that_breaks_the_transaction_fails_alone(self):
        _, dsn = dbfixture.fresh_database(self)
        dbfixture.connect(dsn).cursor().execute("CREATE TABLE outage_log (n serial PRIMARY KEY, kind text, text text)")
        pool = DatabasePool(None, reactor, dsn=dsn, size=1)
        yield pool.start()
        self.addCleanup(pool.close)
        writes = [pool.enqueue_write("ras", insert_event, "a", want_result=True),
                  pool.enqueue_write("ras", broken_write, want_result=True),
                  pool.enqueue_write("ras", insert_event, "c", want_result=True)]
        results = yield defer.DeferredList(writes, consumeErrors=True)
        self.assertEqual([ok for ok, _ in results], [True, False, True])
        self.assertEqual(results[1][1].value.errcode, ErrorCode.CSMERR_DB_ERROR)
        rows = yield pool.runQuery("SELECT text FROM outage_log ORDER BY n")
        self.assertEqual([r[0] for r in rows], ["a", "c"])


class OverflowTests(TestCase):
    @defer.inlineCallbacks
    def test_a_write_in_the_running_transaction_is_not_dropped(self):
        """The queue overflows while its batch runs: a write waiting is dropped, not the
        batch's own (its Deferred failed "dropped" and the batch then committed it)."""
        pool = yield dbfixture.started_pool(self)
        yield pool.runOperation("CREATE TABLE outage_log (n serial PRIMARY KEY, kind text, text text)")
        gate, running = defer.Deferred(), defer.Deferred()

        def held(cursor, text):
            running.callback(None)
            return insert_env(cursor, text).addCallback(lambda _: gate).addCallback(lambda _: text)

        in_flight = pool.enqueue_write("env", held, "in flight", want_result=True)
        yield running
        pool.writes.max_queue = 1
        waiting = pool.enqueue_write("env", insert_env, "waiting", want_result=True)
        self.assertEqual((in_flight.called, waiting.called), (False, True))  # dropped inside enqueue
        error = yield self.assertFailure(waiting, CSMError)
        self.assertIn("dropped", error.errmsg)
        self.assertEqual(pool.writes.dropped["env"], 1)
        gate.callback(None)
        self.assertEqual((yield in_flight), "in flight")
        rows = yield pool.runQuery("SELECT text FROM outage_log")
        self.assertEqual(rows, [("in flight",)])


class InventoryWriteTests(TestCase):
    @defer.inlineCallbacks
    def test_inventory_then_ssd_wear(self):
        from csm.db.inventory import update_ssd_wear, upsert_node_inventory
        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=1)
        yield pool.start()
        self.addCleanup(pool.close)
        state = yield pool.enqueue_write("inventory", upsert_node_inventory, {
            "node": {"node_name": "c01", "type": "compute", "collection_time": "2026-01-01 00:00:00"},
            "ssd": [{"serial_number": "S1", "size": 100, "wear_lifespan_used": 1.0}]}, want_result=True)
        self.assertEqual(state, "DISCOVERED")
        yield pool.enqueue_write("env", update_ssd_wear, "c01", [{"serial_number": "S1", "wear_lifespan_used": 2.5,
                                                                 "wear_total_bytes_written": 10}], want_result=True)
        rows = yield pool.runQuery("SELECT wear_lifespan_used, wear_total_bytes_written FROM csm_ssd_wear_history")
        self.assertEqual(rows, [(2.5, 10)])


class DeadlockTests(TestCase):
    @defer.inlineCallbacks
    def test_deadlock_is_retried_not_an_outage(self):
        """Two transactions locking two rows in opposite order: PostgreSQL aborts one, the pool
        runs it again, and nobody calls it an outage."""
        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=2)
        yield pool.start()
        self.addCleanup(pool.close)
        yield pool.runOperation("CREATE TABLE pair (id int PRIMARY KEY, n int)")
        yield pool.runOperation("INSERT INTO pair VALUES (1, 0), (2, 0)")
        runs = []
        holding = []  # the first runs wait here until both hold their first row: a sure deadlock

        @defer.inlineCallbacks
        def cross(cursor, first, second):
            runs.append(first)
            yield cursor.execute("UPDATE pair SET n = n + 1 WHERE id = %s", (first,))
            if len(holding) < 2:
                waiting = defer.Deferred()
                holding.append(waiting)
                if len(holding) == 2:
                    for each in holding:
                        each.callback(None)
                yield waiting
            yield cursor.execute("UPDATE pair SET n = n + 1 WHERE id = %s", (second,))
        yield defer.gatherResults([pool.runInteraction(cross, 1, 2), pool.runInteraction(cross, 2, 1)])
        self.assertEqual(pool.state, CONNECTED)
        # The victim ran again (a loaded run once saw four runs: the pool retries until the
        # transaction commits); what matters is that each committed once and nobody saw an outage.
        self.assertGreaterEqual(len(runs), 3)
        rows = yield pool.runQuery("SELECT n FROM pair ORDER BY id")
        self.assertEqual(rows, [(2,), (2,)])
