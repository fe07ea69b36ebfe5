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

Calls arriving while a statement of their key is in flight wait for it to end
and then run together (at a moderate rate a few come each turn: they would make a
statement each), but for ``HOLD_MOST`` seconds at the most: a statement waiting on
a lock (a node row another transaction holds) would otherwise hold every later
call of its kind, the whole cluster's creates behind one node. Past that the held
calls run as a second statement, and the key follows that one.

Merged calls must not depend on each other (the allocation API holds one lock
per allocation, so two calls of one turn are on different allocations).
"""

from twisted.internet import defer

from csm.db import prepared
from csm.db.batch import TurnMerger

#: The most calls one merged statement carries; more go in further statements.
MAX_CALLS = 100
#: The longest calls wait for the statement of their key in flight (seconds).
HOLD_MOST = 0.1


class Kind:
    """``alone(key, item)`` and ``together(key, items)`` give ``(sql, args)`` (``%(name)s``
    parameters); ``split(rows, items)`` gives each item its rows of the merged answer. With
    ``resources(item)`` (names), items sharing one go to different statements."""

    def __init__(self, alone, together, split, resources=None):
        self.alone, self.together, self.split, self.resources = alone, together, split, resources


class _Flight:
    """A key's statements in flight: when they started, the calls held for them, the hold's timer."""

    __slots__ = ("started", "held", "timer")

    def __init__(self, started):
        self.started, self.held, self.timer = started, [], None


class Merger(TurnMerger):
    """Merges the calls of one reactor turn; fires each with its rows as dicts."""

    def __init__(self, pool, reactor, max_calls=MAX_CALLS, hold_most=HOLD_MOST):
        super().__init__(pool, reactor)
        self.max_calls = max_calls
        self.hold_most = hold_most
        self._flights = {}  # key -> its latest _Flight while in flight

    def run(self, kind, key, item):
        return self._queue((kind, key), item, None)

    def _flush_key(self, key, _, waiting):
        flight = self._flights.get(key)
        if flight is not None:
            flight.held.extend(waiting)
            if flight.timer is None:
                left = flight.started + self.hold_most - self.reactor.seconds()
                flight.timer = self.reactor.callLater(max(0.0, left), self._release, key, flight)
            return
        flight = self._flights[key] = _Flight(self.reactor.seconds())
        statements = [self._run(*key, group) for group in self._groups(key[0], waiting)]
        defer.DeferredList(statements).addBoth(self._ended, key, flight)

    def _ended(self, _, key, flight):
        """``key``'s statements ended: the calls held meanwhile run now, together."""
        if flight.timer is not None and flight.timer.active():
            flight.timer.cancel()
        self._release(key, flight)

    def _release(self, key, flight):
        """``flight`` no longer holds its key (it ended, or is past ``hold_most``): its held calls run."""
        flight.timer = None
        if self._flights.get(key) is flight:
            del self._flights[key]
        held, flight.held = flight.held, []
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
