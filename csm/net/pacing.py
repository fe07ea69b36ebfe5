"""Pacing of one process's outgoing connection attempts (csm-sim's thousands of nodes).

A process that starts thousands of links at once runs thousands of TLS handshakes
in one reactor: each takes longer than its peer's deadline. ``ConnectGate`` lets
at most ``limit`` attempts per destination be in progress, from connect until the
link's hello is done (or it failed); the others wait their turn, their deadlines
not yet running.
"""

from twisted.internet.defer import DeferredSemaphore
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

#: Attempts in progress per destination, at most.
MAX_CONNECTING = 16


class ConnectGate:
    """One per process: hands out paced endpoints, one semaphore per destination."""

    def __init__(self, limit=MAX_CONNECTING):
        self.limit = limit
        self._turns = {}

    def endpoint(self, endpoint, destination):
        """``endpoint`` (an ``IStreamClientEndpoint`` to ``destination``), paced."""
        turns = self._turns.get(destination)
        if turns is None:
            turns = self._turns[destination] = DeferredSemaphore(self.limit)
        return PacedEndpoint(endpoint, turns)

    def waiting(self):
        """Attempts waiting for their turn, all destinations together."""
        return sum(len(turns.waiting) for turns in self._turns.values())


@implementer(IStreamClientEndpoint)
class PacedEndpoint:
    """Connects when a turn is free; the turn is held until the link is ready or lost."""

    def __init__(self, endpoint, turns):
        self._endpoint = endpoint
        self._turns = turns

    def connect(self, factory):
        # Cancelling the result (ClientService stopping) cancels the wait or the attempt.
        return self._turns.acquire().addCallback(self._attempt, factory)

    def _attempt(self, _, factory):
        def made(link):
            link.when_ready().addBoth(lambda _: self._turns.release())
            return link

        def failed(failure):
            self._turns.release()
            return failure

        return self._endpoint.connect(factory).addCallbacks(made, failed)
