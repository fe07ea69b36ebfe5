"""One connection of the master's pool: txpostgres, with its failures made clean.

A connection that drops (an idle socket reporting a dead server, a transaction
whose server went away) fails the call with the connection error and tells its
``Detector``; nothing is logged as an unhandled error. The pool reconnects it.
"""

import psycopg2
from twisted.internet import defer
from twisted.python import failure
from txpostgres import reconnection, txpostgres

from csm import logs
from csm.errors import CSMError, ErrorCode

log = logs.logger("csmdb")

#: the longest pause between two attempts to reach a server that went away (with the time
#: to connect the pool, a server that is back is used within a second)
RECONNECT_MAX_DELAY = 0.8


def db_error(exc):
    """The ``CSMError`` (CSMERR_DB_ERROR) of a statement the server refused."""
    return CSMError(ErrorCode.CSMERR_DB_ERROR, "Database error: %s"
                    % (exc.pgerror or str(exc)).strip().splitlines()[0])


def dead(failure):
    """The connection is gone (not: the server refused one statement, e.g. a deadlock)."""
    code = getattr(failure.value, "pgcode", None)
    if code and not code.startswith(("08", "57P")):  # the server answered: it is there
        return False
    return failure.check(reconnection.ConnectionDead, psycopg2.InterfaceError,
                         psycopg2.OperationalError, txpostgres.RollbackFailed) is not None


class Detector(reconnection.DeadConnectionDetector):
    """Marks its connection dead and tells the pool (``on_death``), which reconnects it:
    the pool paces the attempts of all its connections together."""

    def __init__(self, reactor, on_death):
        super().__init__(deathChecker=dead, reactor=reactor)
        self.on_death = on_death

    def startReconnecting(self, reason):
        self.on_death()


def reconnect_delays():
    """Seconds before each round of reconnection: at once, then doubling from 0.1 s up to
    ``RECONNECT_MAX_DELAY``, so a server that is back is used within about a second."""
    delay = 0.0
    while True:
        yield delay
        delay = min(RECONNECT_MAX_DELAY, max(0.1, delay * 2))


class Connection(txpostgres.Connection):
    """A txpostgres connection whose idle socket reporting a dead server is a clean
    disconnection (the pool reconnects), not an unhandled error in the reactor."""

    def doRead(self):
        try:
            return super().doRead()
        except (psycopg2.Error, ValueError):  # ValueError: the socket closed under txpostgres (fd -1)
            return failure.Failure()

    def _runInteraction(self, interaction, *args, **kwargs):
        """txpostgres's transaction, but a connection that is gone is not rolled back: the
        server ended the transaction with it, and txpostgres's rollback on the closed cursor
        logged ``cursor already closed`` as an unhandled error. The first failure goes on.
        An interaction may name its own ``begin`` statements."""
        cursor = self.cursor()
        d = cursor.execute(getattr(interaction, "begin", "begin"))
        d.addCallback(interaction, *args, **kwargs)
        d.addCallback(lambda result: cursor.execute("commit").addCallback(lambda _: result))
        return d.addErrback(self._rollback, cursor)

    def _rollback(self, reason, cursor):
        if self._connection.closed:
            return reason

        def failed(error):
            log.warn("rollback failed ({error}): the connection is closed and made anew",
                     error=str(error.value).strip())
            return failure.Failure(txpostgres.RollbackFailed(self, reason))
        d = defer.maybeDeferred(cursor.execute, "rollback")
        return d.addCallbacks(lambda _: reason, failed)

    def runQueryUnchecked(self, sql, args=None):
        """``runQuery`` while the pool still counts this connection dead (just connected)."""
        return self.lock.run(self._runQuery, sql, args)

    def runSelect(self, sql, args=None):
        """One statement on its own (autocommit: no BEGIN and COMMIT round trips);
        fires with ``(cursor description, rows)``."""
        return self._doit(self._runSelect, sql, args)

    def _runSelect(self, sql, args):
        d = self.cursor().execute(sql, args)
        return d.addCallback(lambda cursor: (cursor.description, cursor.fetchall()))


def close(connection):
    """Close ``connection``, whatever state it is in (a pending connect fails with it)."""
    try:
        connection.close()
    except Exception:
        pass
