"""The master's database pool on txpostgres, with outage detection; it owns the write queue.

Each pooled ``txpostgres.Connection`` has a ``DeadConnectionDetector`` that
tells the pool when it dies. The pool is in **outage** while any connection is
dead: every call then fails at once with ``CSMERR_DAEMON_DB_ERR`` (no hang),
and the others are probed so they notice too. The pool reconnects in rounds,
at once and then at most 0.8 s apart: one connection tries, and when it gets
through the others follow at once, so a server that is back is used within
about a second while one that keeps failing sees one attempt at a time. The
pool is **connected** again when every connection has recovered, with no
restart. A pool with no successful call for ``heartbeat`` seconds runs
``SELECT 1``, so a server that went away is noticed even when nothing asks
(``heartbeat_service``: a child of the master's ``DatabaseService``).

Writes that daemons send without waiting for a reply (RAS events, inventory,
environmental data) go through ``enqueue_write`` to the pool's ``WriteQueue``
(``csm.db.write_queue``): run in order, kept through an outage, written once
the database is back. The connections and their txpostgres fixes are in
``csm.db.connection``.
"""

import collections

import psycopg2
from twisted.application.internet import TimerService
from twisted.internet import defer
from twisted.python import failure
from txpostgres import reconnection

from csm import logs
from csm.db import schema
from csm.db.batch import SelectBatcher
from csm.db.hosts import libpq_parts
from csm.db.connection import Connection, Detector, db_error, dead, reconnect_delays
from csm.db.connection import close as close_connection
from csm.db.write_queue import WriteQueue
from csm.db.writes import SETTLE_MS, TRANSACTION_STATUS
from csm.errors import CSMError, ErrorCode

log = logs.logger("csmdb")

CONNECTED = "connected"
OUTAGE = "outage"
STOPPED = "stopped"

#: how long a call may wait for a free connection before it fails (CAST: 2 s)
ACQUIRE_TIMEOUT = 2.0
#: an outage sooner than this after the last one ended goes on with its back-off
STABLE = 10.0


def dsn_from_config(db):
    """A libpq DSN from a ``DBConfig``-like object (host, port, name, user, password); several
    hosts connect to the one that takes writes (``csm.db.hosts``)."""
    parts = dict(libpq_parts(db), dbname=db.name, user=db.user)
    if db.password:
        parts["password"] = db.password
    return " ".join("%s=%s" % (key, _quote(value)) for key, value in parts.items() if value not in (None, ""))


def _quote(value):
    text = str(value)
    if not text or any(c in text for c in " '\\"):
        return "'%s'" % text.replace("\\", "\\\\").replace("'", "\\'")
    return text


#: the master's sessions run short statements: JIT compiling one whose row estimates pass
#: ``jit_above_cost`` (set-based statements over jsonb) took about 50 ms, far longer than the statement
SESSION_OPTIONS = "-c jit=off"

#: PostgreSQL 14: pg_terminate_backend(pid, timeout), with which a write whose COMMIT answer was
#: lost is settled (``csm.db.writes.TRANSACTION_STATUS``) instead of being written twice
MIN_SERVER_VERSION = 140000

#: deadlock detected, serialization failure: the transaction is run again
TRANSIENT = ("40P01", "40001")
TRANSIENT_ATTEMPTS = 3


@defer.inlineCallbacks
def _read_schema_version(cursor):
    yield cursor.execute(schema.HAS_VERSION_TABLE)
    if not cursor.fetchone()[0]:
        return None
    yield cursor.execute(schema.INSTALLED_VERSION)
    row = cursor.fetchone()
    return row[0] if row else None


class DatabasePool:
    """A fixed set of connections; fails fast during an outage and recovers by itself."""

    def __init__(self, db_config, reactor, dsn=None, size=None, heartbeat=15.0, max_queue=100000,
                 on_overflow=None, heartbeat_timeout=5.0):
        self.reactor = reactor
        self.dsn = dsn or dsn_from_config(db_config)
        self.size = max(1, size or getattr(db_config, "connection_pool_size", 1) or 1)
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.state = STOPPED
        self.observers = []
        self.writes = WriteQueue(self, max_queue, on_overflow)
        #: merges concurrent keyed SELECTs (``csm.db.queries.keyed_results``)
        self.batcher = SelectBatcher(self, reactor)
        self.version = None  # the schema version read at start
        self._free = collections.deque()
        self._waiters = collections.deque()
        self._outage_answers = {}  # Deferred -> what it fires with when an outage begins
        self._last_success = None
        self._delays = None  # the back-off of the current outage (reconnect_delays)
        self._round = None  # the next round of reconnection (an IDelayedCall)
        self._reconnecting = False
        self._recovered_at = None
        #: attempts to connect anew (status: db_reconnect_attempts)
        self.reconnect_attempts = 0
        self.connections = []
        for _ in range(self.size):
            detector = Detector(reactor, on_death=self._outage_detected)
            connection = Connection(reactor, detector=detector)
            detector.addRecoveryHandler(self._recovered)
            self.connections.append(connection)

    # -- life -----------------------------------------------------------------------------

    @defer.inlineCallbacks
    def start(self):
        """Connect every connection; fails (``CSMERR_DAEMON_DB_ERR``) if the database is unreachable.
        A pool stopped may start again (a master elected anew): writes queued meanwhile then go out."""
        try:
            yield defer.gatherResults([c.connect(self.dsn, options=SESSION_OPTIONS) for c in self.connections],
                                      consumeErrors=True)
        except defer.FirstError as exc:
            self.close()
            raise CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "cannot connect to the database (%s): %s"
                           % (self.dsn, str(exc.subFailure.value).strip())) from None
        server = min(c._connection.server_version for c in self.connections)
        if server < MIN_SERVER_VERSION:
            self.close()
            raise CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "the database (%s) runs PostgreSQL %d.%d; CSM needs %d or later"
                           % (self.dsn, server // 10000, server % 10000, MIN_SERVER_VERSION // 10000))
        attempt = self.writes.unsure  # left by a stop() during an outage (a master fenced, elected anew)
        if attempt is not None and attempt.committed is None:
            try:
                attempt.committed = yield self._committed(self.connections[0], attempt)
            except Exception as exc:
                self.close()
                raise CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "cannot tell whether transaction %s committed: %s"
                               % (attempt.xid, str(exc).strip())) from None
        for connection in self.connections:
            connection.detector.connectionIsDead = False  # connected anew after a stop()
        self._free = collections.deque(self.connections)
        self._set_state(CONNECTED)
        self.writes.drain()
        self._last_success = self.reactor.seconds()
        try:
            self.version = yield self.schema_version()
        except CSMError as exc:
            log.warn("cannot read the schema version: {error}", error=exc.errmsg)
        return self

    def stop(self):
        """Close every connection and end reconnections; calls made afterwards fail."""
        self.state = STOPPED
        if self._round is not None and self._round.active():
            self._round.cancel()
        self._round = None
        for connection in self.connections:
            close_connection(connection)
        for waiter in list(self._waiters):
            waiter.errback(CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "the database pool is closed"))
        self._waiters.clear()
        return defer.succeed(None)

    close = stop

    @property
    def connected(self):
        return self.state == CONNECTED

    def subscribe(self, observer):
        """``observer(state)`` on every change between connected and outage."""
        self.observers.append(observer)

    def _set_state(self, state):
        if state != self.state:
            self.state = state
            if state == OUTAGE:
                log.error("database outage: API calls fail with CSMERR_DAEMON_DB_ERR; {n} writes queued",
                          n=len(self.queue))
                answers, self._outage_answers = self._outage_answers, {}
                for answer, instead in answers.items():
                    answer.callback(instead)
            else:
                log.info("database {state}", state=state)
            for observer in list(self.observers):
                observer(state)

    # -- calls ----------------------------------------------------------------------------

    def runQuery(self, sql, args=None):
        return self._call(lambda c: c.runQuery(sql, args))

    def runOperation(self, sql, args=None):
        return self._call(lambda c: c.runOperation(sql, args))

    def runSelect(self, sql, args=None):
        """One read-only statement: fires with ``(cursor description, rows)``."""
        return self._call(lambda c: c.runSelect(sql, args))

    def runInteraction(self, function, *args, **kwargs):
        """``function(cursor, *args)`` in one transaction; cursor methods return Deferreds."""
        return self._call(lambda c: c.runInteraction(function, *args, **kwargs))

    def runWithConnection(self, use):
        """``use(connection)``: several calls on one pooled connection, held until it fires
        (state that lives in the session, such as prepared statements)."""
        return self._call(use)

    def schema_version(self):
        """Fires with the installed schema version (None when there is no CSM schema)."""
        return self.runInteraction(_read_schema_version)

    def _call(self, use, attempt=1):
        if self.state != CONNECTED:
            return defer.fail(self._outage_error())
        d = self._acquire()
        d.addCallback(self._use, use, attempt)
        return d

    def _outage_error(self):
        return CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "Database error; can't connect (database %s)"
                        % self.state)

    def _acquire(self):
        if self._free:
            return defer.succeed(self._free.popleft())
        waiter = defer.Deferred()
        self._waiters.append(waiter)
        timer = self.reactor.callLater(ACQUIRE_TIMEOUT, self._acquire_timed_out, waiter)
        waiter.addBoth(lambda result: (timer.cancel() if timer.active() else None) or result)
        return waiter

    def _acquire_timed_out(self, waiter):
        if waiter in self._waiters:
            self._waiters.remove(waiter)
            waiter.errback(CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "no free database connection within %gs"
                                    % ACQUIRE_TIMEOUT))

    def _release(self, connection):
        if self._waiters:
            self._waiters.popleft().callback(connection)
        else:
            self._free.append(connection)

    def _use(self, connection, use, attempt=1):
        d = defer.maybeDeferred(use, connection)

        def done(result):
            self._last_success = self.reactor.seconds()
            self._release(connection)
            return result

        def failed(failure):
            self._release(connection)
            if dead(failure) or connection.detector.connectionIsDead:
                self._outage_detected()
                return defer.fail(self._outage_error())
            if failure.check(psycopg2.Error):
                if getattr(failure.value, "pgcode", None) in TRANSIENT and attempt < TRANSIENT_ATTEMPTS:
                    log.info("database {error}: transaction retried", error=failure.value.pgcode)
                    return self._call(use, attempt + 1)  # it was rolled back whole: run it again
                raise db_error(failure.value)
            return failure
        return d.addCallbacks(done, failed)

    # -- outage ---------------------------------------------------------------------------

    def _outage_detected(self):
        if self.state == CONNECTED:
            now = self.reactor.seconds()
            if self._delays is None or self._recovered_at is None or now - self._recovered_at >= STABLE:
                self._delays = reconnect_delays()  # else a flapping server: the back-off goes on
            self._set_state(OUTAGE)
            for waiter in list(self._waiters):
                waiter.errback(self._outage_error())
            self._waiters.clear()
            # make every connection find out, so that all of them reconnect
            for connection in self.connections:
                if not connection.detector.connectionIsDead:
                    self._probe(connection).addErrback(lambda _: None)
        self._reconnect_soon()

    def _reconnect_soon(self):
        """Schedule the next round of reconnection, unless one is due or running."""
        if self.state != OUTAGE or self._round is not None or self._reconnecting:
            return
        if any(c.detector.connectionIsDead for c in self.connections):
            self._round = self.reactor.callLater(next(self._delays), self._reconnect_round)

    @defer.inlineCallbacks
    def _reconnect_round(self):
        """One dead connection tries; once it is through, the other dead ones follow at once.
        A server that keeps failing sees one attempt at a time, at most 1.25 a second."""
        self._round = None
        self._reconnecting = True
        try:
            down = [c for c in self.connections if c.detector.connectionIsDead]
            if down and (yield self._reconnect(down[0])):
                yield defer.DeferredList([self._reconnect(c) for c in down[1:]])
        finally:
            self._reconnecting = False
        self._reconnect_soon()

    @defer.inlineCallbacks
    def _reconnect(self, connection):
        """Fires with True once ``connection`` is back; False if the attempt failed or had no
        answer within ``heartbeat_timeout`` (a server that accepts and does not answer).

        The first connection back settles a transaction left unsure before anything else is
        written: a server that crashed before it made a transaction durable hands out its id
        again."""
        self.reconnect_attempts += 1
        timer = self.reactor.callLater(self.heartbeat_timeout, close_connection, connection)
        try:
            yield defer.maybeDeferred(connection.detector.reconnect)
            attempt = self.writes.unsure
            if attempt is not None and attempt.committed is None and self.state != STOPPED:
                attempt.committed = yield self._committed(connection, attempt)
        except Exception:
            close_connection(connection)
            return False
        finally:
            if timer.active():
                timer.cancel()
        if self.state == STOPPED:
            close_connection(connection)
            return False
        connection.detector.connectionRecovered()
        return True

    @defer.inlineCallbacks
    def _committed(self, connection, attempt):
        """Whether ``attempt``'s transaction committed (False if that cannot be told: its
        writes are run again). One still in progress on a backend that outlived its
        connection is ended first: the server answers once that backend has exited."""
        try:
            rows = yield connection.runQueryUnchecked(TRANSACTION_STATUS, {"xid": attempt.xid, "pid": attempt.pid,
                                                                           "wait_ms": SETTLE_MS})
        except psycopg2.Error as exc:
            if dead(failure.Failure(exc)):
                raise
            log.info("queued writes of transaction {xid} are run again: {error}", xid=attempt.xid,
                     error=str(exc).strip().splitlines()[0])  # "in the future": lost in a crash
            return False
        if rows[0][0] == "in progress":
            log.warn("transaction {xid} is still in progress: its writes are run again", xid=attempt.xid)
            return False
        return rows[0][0] == "committed"

    def _recovered(self):
        if self.state == OUTAGE and not any(c.detector.connectionIsDead for c in self.connections):
            self._recovered_at = self.reactor.seconds()
            self._set_state(CONNECTED)
            self.writes.drain()

    def heartbeat_service(self):
        """The periodic ``_heartbeat``, a ``TimerService`` for the pool's owner to run as a child."""
        timer = TimerService(self.heartbeat, self._heartbeat)
        timer.setName("heartbeat")
        timer.clock = self.reactor
        return timer

    def _heartbeat(self):
        """``SELECT 1`` unless a call succeeded within the last period (or the pool is not connected)."""
        if self.state != CONNECTED or not self._free:
            return
        if self.reactor.seconds() - self._last_success >= self.heartbeat * 0.99:
            self._call(self._probe).addErrback(lambda _: None)

    def _probe(self, connection):
        """``SELECT 1`` on ``connection``; no answer within ``heartbeat_timeout`` (a server
        that went silent) declares the connection dead, which closes and reconnects it."""
        timer = self.reactor.callLater(self.heartbeat_timeout, self._silent, connection)

        def answered(result):
            if timer.active():
                timer.cancel()
            return result
        return connection.runOperation("SELECT 1").addBoth(answered)

    def _silent(self, connection):
        log.error("the database did not answer within {t}s: connection declared dead", t=self.heartbeat_timeout)
        connection.detector.checkForDeadConnection(failure.Failure(
            reconnection.ConnectionDead("no answer within %gs" % self.heartbeat_timeout)))

    # -- the write queue ------------------------------------------------------------------

    def unless_outage(self, d, instead):
        """``d``'s result, or ``instead`` as soon as an outage begins (``d`` is then left to
        finish on its own: a queued write is written once the database is back)."""
        answer = defer.Deferred()
        self._outage_answers[answer] = instead

        def settle(result):
            if self._outage_answers.pop(answer, self) is not self:
                answer.callback(result)
            elif isinstance(result, failure.Failure):
                log.warn("{error} (after the caller was told it was queued)", error=result.getErrorMessage())
        d.addBoth(settle)
        return answer

    def enqueue_write(self, kind, function, *args, want_result=False):
        """Queue ``function(cursor, *args)``, written in order (``csm.db.write_queue``)."""
        return self.writes.enqueue(kind, function, args, want_result)

    @property
    def writes_promptly(self):
        """A write queued now goes to the database at once (``WriteQueue.prompt``)."""
        return self.writes.prompt

    @property
    def queue(self):
        return self.writes.queue

    def status(self):
        return dict(self.writes.status(), db_state=self.state, db_schema_version=self.version,
                    db_pool_size=self.size, db_free_conn_size=len(self._free),
                    db_reconnect_attempts=self.reconnect_attempts, db_merged_queries=self.batcher.calls,
                    db_merged_statements=self.batcher.statements)
