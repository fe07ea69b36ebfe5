"""Concurrent statements of one kind merged into one set-based prepared statement.

Under load many allocations reach the same step at once (their prologs answer
in the same moment): each would cost a statement, a round trip, a transaction
and a pooled connection. ``Merger.run`` takes a ``Kind`` (how one call runs
alone, how several run together and how the answer is split between them), a
key (calls merge only with calls of the same key) and the caller's item; the
calls made in one reactor turn run as one statement at the start of the next
turn, and each caller gets the rows it would have got alone. A call alone in
its turn runs as it is. When a merged statement fails for any reason but a
database outage, each of its callers is run alone again, so that one bad call
fails by itself and spoils no other.

Merged calls must not depend on each other (the allocation API holds one lock
per allocation, so two calls of one turn are on different allocations).
"""

from twisted.internet import defer

from csm.db import prepared
from csm.db.batch import TurnMerger

#: The most calls one merged statement carries; more go in further statements.
MAX_CALLS = 100


class Kind:
    """``alone(key, item)`` and ``together(key, items)`` give ``(sql, args)`` (``%(name)s``
    parameters); ``split(rows, items)`` gives each item its rows of the merged answer. With
    ``resources(item)`` (names), items sharing one go to different statements."""

    def __init__(self, alone, together, split, resources=None):
        self.alone, self.together, self.split, self.resources = alone, together, split, resources


class Merger(TurnMerger):
    """Merges the calls of one reactor turn; fires each with its rows as dicts."""

    def __init__(self, pool, reactor, max_calls=MAX_CALLS):
        super().__init__(pool, reactor)
        self.max_calls = max_calls
        self._held = {}  # key in flight -> the calls waiting for it to end

    def run(self, kind, key, item):
        return self._queue((kind, key), item, None)

    def _flush_key(self, key, _, waiting):
        held = self._held.get(key)
        if held is not None:
            held.extend(waiting)
            return
        self._held[key] = []
        statements = [self._run(*key, group) for group in self._groups(key[0], waiting)]
        defer.DeferredList(statements).addBoth(self._ended, key)

    def _ended(self, _, key):
        """``key``'s statements ended: the calls held meanwhile run now, together."""
        held = self._held.pop(key)
        if held:
            self._flush_key(key, None, held)

    def _groups(self, kind, waiting):
        """``waiting`` in groups of at most ``max_calls``, none with two calls sharing a resource
        (a call goes to the first group it fits)."""
        groups = []
        for call in waiting:
            names = set(kind.resources(call[0])) if kind.resources else set()
            for used, calls in groups:
                if len(calls) < self.max_calls and not used & names:
                    used |= names
                    calls.append(call)
                    break
            else:
                groups.append((names, [call]))
        return [calls for _, calls in groups]

    def _run(self, kind, key, group):
        """A Deferred that fires (with None) once ``group``'s statement ended and its calls
        were answered."""
        self.statements += 1
        items = [item for item, _ in group]
        if len(group) == 1:
            return defer.maybeDeferred(
                lambda: prepared.query_dicts(self.pool, *kind.alone(key, items[0]))).chainDeferred(group[0][1])
        d = defer.maybeDeferred(lambda: prepared.query_dicts(self.pool, *kind.together(key, items)))
        d.addCallback(lambda rows: [call[1].callback(mine) for call, mine in zip(group, kind.split(rows, items))])
        d.addErrback(self._failed, group, lambda call: self._run(kind, key, [call]))
        return d
