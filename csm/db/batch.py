"""Concurrent keyed SELECTs merged into one statement.

Many clients asking for one node each at the same moment would each cost a
statement, a round trip and a pooled connection. ``SelectBatcher.select`` takes
a ``Select`` (with every filter but the keys), a key column and the caller's
keys; the calls made in one reactor turn with the same statement are run as
one ``column = ANY(all their keys)`` at the start of the next turn, and each
caller gets the rows whose key is one of its own, in the statement's order:
what it would have got alone. A call alone in its turn runs as it is. When a
merged statement fails for any reason but a database outage (a key PostgreSQL
refuses, say), each of its callers is run alone again, so that one bad request
fails by itself and spoils no other.
"""

from twisted.internet import defer

from csm.errors import CSMError, ErrorCode

#: The most keys one merged statement carries; more go in further statements.
MAX_KEYS = 1000


class TurnMerger:
    """Calls queued by key in one reactor turn, run at the start of the next (``_flush_key``
    runs one key's ``(argument, Deferred)`` calls)."""

    def __init__(self, pool, reactor):
        self.pool = pool
        self.reactor = reactor
        self.statements = 0
        self.calls = 0
        self._pending = {}
        self._flush = None

    def _queue(self, key, argument, value):
        """A Deferred for ``argument``, queued under ``key`` (``value`` kept with the first)."""
        waiting = self._pending.setdefault(key, (value, []))[1]
        d = defer.Deferred()
        waiting.append((argument, d))
        self.calls += 1
        if self._flush is None:
            self._flush = self.reactor.callLater(0, self.flush)
        return d

    def flush(self):
        """Run everything waiting (the reactor calls this at the start of the next turn)."""
        self._flush = None
        pending, self._pending = self._pending, {}
        for key, (value, waiting) in pending.items():
            self._flush_key(key, value, waiting)

    @staticmethod
    def _failed(failure, group, alone):
        """A merged statement failed: each waiting call of ``group`` runs ``alone``, unless the
        database is out (then each fails with it)."""
        waiting = [call for call in group if not call[1].called]
        outage = failure.check(CSMError) and failure.value.errcode == ErrorCode.CSMERR_DAEMON_DB_ERR
        if len(waiting) > 1 and not outage:
            for call in waiting:
                alone(call)
            return
        for _, d in waiting:
            d.errback(failure)


class SelectBatcher(TurnMerger):
    """Merges the keyed SELECTs of one reactor turn; fires each with ``(description, rows)``."""

    def __init__(self, pool, reactor, max_keys=MAX_KEYS):
        super().__init__(pool, reactor)
        self.max_keys = max_keys

    def select(self, query, column, keys):
        """Rows of ``query`` whose ``column`` is one of ``keys`` (a non-empty list)."""
        sql, args = query.sql()
        return self._queue((sql, repr(args), column), list(keys), query)

    def _flush_key(self, key, query, waiting):
        for group in self._groups(waiting):
            self._run(query, key[2], group)

    def _groups(self, waiting):
        """``waiting`` cut into groups of at most ``max_keys`` keys (a bigger call goes alone)."""
        group, size = [], 0
        for call in waiting:
            if group and size + len(call[0]) > self.max_keys:
                yield group
                group, size = [], 0
            group.append(call)
            size += len(call[0])
        if group:
            yield group

    def _run(self, query, column, group):
        keys = list(dict.fromkeys(key for call_keys, _ in group for key in call_keys))
        self.statements += 1
        d = self.pool.runSelect(*query.copy().any_of(column, keys).sql())
        d.addCallback(self._split, column, group)
        d.addErrback(self._failed, group, lambda call: self._run(query, column, [call]))

    @staticmethod
    def _split(result, column, group):
        description, rows = result
        if len(group) == 1:
            group[0][1].callback(result)
            return
        index = next(i for i, c in enumerate(description) if c[0] == column)
        for call_keys, d in group:
            wanted = frozenset(call_keys)
            d.callback((description, [row for row in rows if row[index] in wanted]))
