"""The master's lease in PostgreSQL: one master is active, the others stand by; fencing.

Each master keeps a database session of its own, the *lease session*, named
``csm-master <node>`` (``application_name``; the master's pool sessions carry the
same name). The active master holds a session advisory lock on it. A standby
looks every ``interval`` seconds at who holds the lock:

- nobody: it takes the lock (after seeing it free twice in a row when another
  master held it before, so that a master coming back from a database fail-over
  gets its lease back before a standby steps in);
- a master whose lease session has been silent for more than ``ttl`` seconds (a
  stopped process): its sessions are ended (``pg_terminate_backend``), which frees
  the lock.

Taking the lock, a master first ends every session of any other master and waits
until they are gone: whatever the old master had in flight is committed or rolled
back before the new one writes. The active master renews every ``interval``
seconds (is the lock still its own?). It stops being active at once (fencing)
when its lease session is lost, when the lock is no longer its own, or when
``0.75 * ttl`` pass without a renewal (by its own clock, checked before any
other I/O after the process is continued), always before a standby may end its
sessions.
"""

from twisted.internet import defer

from csm import logs
from csm.db.connection import Connection, close as close_connection

log = logs.logger("csmd")

ACTIVE = "active"
STANDBY = "standby"

#: The advisory lock (two int4 keys: "CSM", 1).
LOCK = (0x43534D, 1)
#: ``application_name`` prefix of every session of a master (``csm-master <node>``).
APPLICATION = "csm-master "
#: Seconds a silent lease session is waited for, as a share of ``ttl``, before fencing.
FENCE_SHARE = 0.75

_KEYS = {"k1": LOCK[0], "k2": LOCK[1]}
_THIS_DATABASE = "(SELECT oid FROM pg_database WHERE datname = current_database())"
HOLDER = ("SELECT a.pid, extract(epoch FROM now() - a.state_change)::float8, a.application_name "
          "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
          "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %(k1)s AND l.objid = %(k2)s "
          "AND l.objsubid = 2 AND l.database = " + _THIS_DATABASE)
MINE = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() "
        "AND classid = %(k1)s AND objid = %(k2)s AND objsubid = 2 AND database = " + _THIS_DATABASE)
TAKE = "SELECT pg_try_advisory_lock(%(k1)s, %(k2)s)"
#: Sessions of masters other than ``%(me)s`` in this database (ended, then counted).
OTHERS = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
          "AND application_name LIKE 'csm-master %%' AND application_name <> %(me)s AND pid <> pg_backend_pid()")
END_HOLDER = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = current_database() "
              "AND application_name = %(app)s")
#: Every master's sessions as ``(node, sessions)``: the standbys an active master reports.
MASTERS = ("SELECT substr(application_name, %(n)s), count(*) FROM pg_stat_activity "
           "WHERE datname = current_database() AND application_name LIKE 'csm-master %%' GROUP BY 1 ORDER BY 1")


class SessionLost(Exception):
    """The lease session went while a look at the lock was under way (already logged)."""


def application_name(node):
    """The ``application_name`` of every database session of master ``node``."""
    return APPLICATION + node


class _LeaseConnection(Connection):
    """The lease session: tells the lease at once when the server ends it."""

    on_lost = None

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if self.on_lost is not None:
            self.on_lost(reason)


class Lease:
    """One master's part in the election; ``on_change(state)`` when it becomes active or
    stops being active (``ACTIVE`` / ``STANDBY``)."""

    def __init__(self, reactor, dsn, node, ttl, on_change, interval=None):
        self.reactor = reactor
        self.dsn = dsn
        self.node = node
        self.ttl = float(ttl)
        self.interval = interval if interval is not None else min(1.0, self.ttl / 4)
        self.on_change = on_change
        self.state = STANDBY
        #: the active master's node name as last seen (this one's while active)
        self.holder = None
        #: why this master last stopped being active
        self.fenced_reason = None
        self.running = False
        self.connection = None
        self._timer = None
        self._deadline = None
        self._ticking = False
        self._free_seen = 0
        self._seen_other = False
        self._held_last = False
        self._connect_failures = 0

    # -- life -----------------------------------------------------------------------------

    def start(self):
        self.running = True
        self._schedule(0)

    def stop(self):
        """Leave the election; the lock goes with the session."""
        self.running = False
        for call in (self._timer, self._deadline):
            if call is not None and call.active():
                call.cancel()
        self._timer = self._deadline = None
        self._drop_session()
        if self.state == ACTIVE:
            self.state = STANDBY

    def _schedule(self, delay):
        if self.running and (self._timer is None or not self._timer.active()):
            self._timer = self.reactor.callLater(delay, self._tick)

    @defer.inlineCallbacks
    def _tick(self):
        self._timer = None
        if self._ticking:
            return
        self._ticking = True
        session = self.connection
        try:
            if session is None:
                yield self._connect()
            elif self.state == ACTIVE:
                yield self._renew()
            else:
                yield self._contend()
        except SessionLost:
            pass
        except Exception as exc:
            if session is None or self.connection is session:
                self._session_failed(exc)
            # else the session was lost meanwhile: its failed call says no more than _session_lost did
        finally:
            self._ticking = False
        self._schedule(self.interval)

    @defer.inlineCallbacks
    def _connect(self):
        connection = _LeaseConnection(self.reactor)
        try:
            yield self._timed(connection.connect(self.dsn, application_name=application_name(self.node)))
        except Exception as exc:
            if self._connect_failures == 0:
                log.warn("master election: cannot reach the database ({error}); trying every {s}s",
                         error=str(exc).strip().splitlines()[0] if str(exc).strip() else exc, s=self.interval)
            self._connect_failures += 1
            close_connection(connection)
            return
        if self._connect_failures:
            log.info("master election: database reached")
        self._connect_failures = 0
        connection.on_lost = lambda reason, c=connection: self._session_lost(c, reason)
        self.connection = connection
        yield self._contend()

    # -- standby --------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _contend(self):
        rows = yield self._query(HOLDER, _KEYS)
        if rows:
            _pid, silent, app = rows[0]
            self._free_seen = 0
            holder = app[len(APPLICATION):] if app.startswith(APPLICATION) else app
            if holder != self.holder:
                log.info("master election: {holder} is the active master; {me} stands by",
                         holder=holder, me=self.node)
            self.holder = holder
            self._seen_other = True
            self._held_last = False
            if silent is not None and silent > self.ttl:
                log.warn("master election: the lease of {holder} has been silent for {s:.1f}s (over {ttl}s): "
                         "ending its database sessions", holder=holder, s=silent, ttl=self.ttl)
                yield self._query(END_HOLDER, {"app": app})
            return
        self._free_seen += 1
        if self._free_seen < (2 if self._seen_other and not self._held_last else 1):
            return
        taken = yield self._query(TAKE, _KEYS)
        if not taken[0][0]:
            return
        yield self._fence_others()
        if self.connection is None or not self.running:
            return  # lost on the way: the lock went with the session
        self.state = ACTIVE
        self.holder = self.node
        self._held_last = True
        self.fenced_reason = None
        self._arm_deadline(self.reactor.seconds())
        log.info("master election: {me} is the active master", me=self.node)
        self.on_change(ACTIVE)

    @defer.inlineCallbacks
    def _fence_others(self):
        """End every other master's sessions and wait (up to ``ttl``) until they are gone."""
        deadline = self.reactor.seconds() + self.ttl
        while True:
            rows = yield self._query(OTHERS, {"me": application_name(self.node)})
            if not rows[0][0]:
                return
            if self.reactor.seconds() >= deadline:
                log.error("master election: {n} sessions of another master are still there after {s}s",
                          n=rows[0][0], s=self.ttl)
                return
            log.info("master election: ended {n} database sessions of another master", n=rows[0][0])
            d = defer.Deferred()
            self.reactor.callLater(0.1, d.callback, None)
            yield d

    # -- active ---------------------------------------------------------------------------

    @defer.inlineCallbacks
    def _renew(self):
        sent = self.reactor.seconds()
        rows = yield self._query(MINE, _KEYS)
        if self.state != ACTIVE:
            return
        if not rows[0][0]:
            self._fence("the lease is no longer held by this session")
            return
        self._arm_deadline(sent)

    def _arm_deadline(self, since):
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        delay = max(0.0, since + FENCE_SHARE * self.ttl - self.reactor.seconds())
        self._deadline = self.reactor.callLater(delay, self._expired)

    def _expired(self):
        self._deadline = None
        if self.state == ACTIVE:
            self._fence("no renewal of the lease within %gs" % (FENCE_SHARE * self.ttl))
            self._drop_session()

    def _fence(self, reason):
        """Stop being the active master, at once."""
        if self.state != ACTIVE:
            return
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None
        self.state = STANDBY
        self.fenced_reason = reason
        log.error("master election: {me} stops being the active master: {reason}", me=self.node, reason=reason)
        self.on_change(STANDBY)

    def step_down(self, reason):
        """Stop being active and leave the lock free for another master."""
        self._fence(reason)
        self._drop_session()

    # -- the session ----------------------------------------------------------------------

    def _query(self, sql, args):
        """``sql`` on the lease session; a server that does not answer within ``ttl`` fails it,
        and a session lost meanwhile raises ``SessionLost``."""
        if self.connection is None:
            return defer.fail(SessionLost())
        return self._timed(self.connection.runQuery(sql, args))

    def _timed(self, d):
        """``d``'s result, or ``TimeoutError`` after ``ttl`` (txpostgres cannot cancel a call
        under way: it is left to finish, its result dropped)."""
        result = defer.Deferred()
        timer = self.reactor.callLater(self.ttl, lambda: result.called or result.errback(
            defer.TimeoutError("no answer from the database within %gs" % self.ttl)))

        def done(value):
            if timer.active():
                timer.cancel()
            if not result.called:
                result.callback(value)
        d.addBoth(done)
        return result

    def _session_lost(self, connection, reason):
        if connection is self.connection:
            self.connection = None
            text = reason.getErrorMessage().strip()
            why = "the lease session was lost (%s)" % text.splitlines()[0] if text else "the lease session was lost"
            if self.state == ACTIVE:
                self._fence(why)  # its one line says so
            else:
                log.warn("master election: {why}; connecting again", why=why)
            self._schedule(self.interval)

    def _session_failed(self, exc):
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warn("master election: lease session failed: {error}", error=text)
        self._drop_session()
        self._fence("the lease session failed (%s)" % text)

    def _drop_session(self):
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.on_lost = None
            close_connection(connection)

    @defer.inlineCallbacks
    def masters(self):
        """``{node: sessions}`` of every master connected to the database (this one included)."""
        if self.connection is None:
            return {}
        rows = yield self._query(MASTERS, {"n": len(APPLICATION) + 1})
        return dict(rows)
