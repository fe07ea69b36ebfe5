"""Pacing of one process's outgoing connection attempts (csm-sim's thousands of nodes).

A process that starts thousands of links at once runs thousands of TLS handshakes
in one reactor: each takes longer than its peer's deadline. ``ConnectGate`` lets
at most ``limit`` attempts per destination be in progress, from connect until the
link's hello is done (or it failed); the others wait their turn, their deadlines
not yet running. Urgent attempts (a node with no link at all) go before the
others (a node's second link); urgency is asked again when a turn comes, since
a node whose two links waited together has one of them by then; a link whose
other link's attempt is in progress (``PacedEndpoint.attempting``) keeps its
place but waits until that attempt is decided.
"""

import collections

from twisted.internet import defer
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

#: Attempts in progress per destination, at most.
MAX_CONNECTING = 16


class Turns:
    """Up to ``limit`` holders at a time; waiters queue, urgent ones first."""

    def __init__(self, limit):
        self.limit = limit
        self.active = 0
        self.queues = (collections.deque(), collections.deque())  # urgent, then the rest

    def waiting(self):
        return sum(len(queue) for queue in self.queues)

    def acquire(self, urgent=lambda: True):
        """A Deferred that fires when the turn is the caller's (cancelling it leaves the queue)."""
        if self.active < self.limit and not self.waiting():
            self.active += 1
            return defer.succeed(None)
        entry = (urgent, defer.Deferred(lambda d: self._forget(entry)))
        self.queues[1 if urgent() is False else 0].append(entry)
        self.poke()  # a free turn that every waiter had to pass by
        return entry[1]

    def _forget(self, entry):
        for queue in self.queues:
            if entry in queue:
                queue.remove(entry)

    def release(self):
        """A holder is done: its turn goes to the next waiter."""
        self.active -= 1
        self.poke()

    def poke(self):
        """Free turns go to the first urgent waiters, else the first others. ``urgent()`` False:
        no longer urgent (behind the others for good); None: not now (it keeps its place; poke
        again when that changes)."""
        urgent, spare = self.queues
        while self.active < self.limit and (urgent or spare):
            held = []
            chosen = None
            while urgent:
                entry = urgent.popleft()
                now = entry[0]()
                if now:
                    chosen = entry
                    break
                (held if now is None else spare).append(entry)
            urgent.extendleft(reversed(held))
            if chosen is None:
                if not spare:
                    return
                chosen = spare.popleft()
            self.active += 1
            chosen[1].callback(None)


class ConnectGate:
    """One per process: hands out paced endpoints, one ``Turns`` per destination."""

    def __init__(self, limit=MAX_CONNECTING):
        self.limit = limit
        self._turns = {}

    def endpoint(self, endpoint, destination, urgent=lambda: True):
        """``endpoint`` (an ``IStreamClientEndpoint`` to ``destination``), paced;
        ``urgent()`` says at each attempt whether it goes before the others."""
        turns = self._turns.get(destination)
        if turns is None:
            turns = self._turns[destination] = Turns(self.limit)
        return PacedEndpoint(endpoint, turns, urgent)

    def waiting(self):
        """Attempts waiting for their turn, all destinations together."""
        return sum(turns.waiting() for turns in self._turns.values())


@implementer(IStreamClientEndpoint)
class PacedEndpoint:
    """Connects when a turn is free; the turn is held until the link is ready or lost."""

    def __init__(self, endpoint, turns, urgent):
        self._endpoint = endpoint
        self._turns = turns
        self._urgent = urgent
        #: an attempt holds a turn (from connect until the link is ready or lost)
        self.attempting = False
        #: endpoints whose urgency depends on this one's attempt: poked when it is decided
        self.siblings = []

    def connect(self, factory):
        # Cancelling the result (ClientService stopping) cancels the wait or the attempt.
        return self._turns.acquire(self._urgent).addCallback(self._attempt, factory)

    def _attempt(self, _, factory):
        self.attempting = True

        def made(link):
            link.when_ready().addBoth(lambda _: self._release())
            return link

        def failed(failure):
            self._release()
            return failure

        return self._endpoint.connect(factory).addCallbacks(made, failed)

    def _release(self):
        self.attempting = False
        self._turns.release()
        for sibling in self.siblings:
            sibling._turns.poke()
