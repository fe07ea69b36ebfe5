"""An aggregator's or utility's masters: one connection at a time, the next after a failure.

``MasterList`` is the endpoint of the master link when ``csm.net.masters`` names
more than one master. A refused connection, a standby's "not active" answer to the
hello, or the loss of the active master's link moves it to the next master; while a
round of the list is not done the next attempt is quick (``QUICK_DELAY``), without
the back-off. A standby's refusal caps the back-off at CAST's quick retries (an
election is under way: a master will be active within the lease).
"""

from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

from csm import logs

log = logs.logger("csmnet")

#: The refusal a standby master sends to an aggregator's or utility's hello starts with this
#: (here, not in ``csm.election``: an aggregator does not import the database driver).
NOT_ACTIVE = "not active"

#: Seconds before trying the next master of a round.
QUICK_DELAY = 0.05


@implementer(IStreamClientEndpoint)
class MasterList:
    """Connects to ``endpoints[index]``; ``next()`` moves on, telling ``backoff`` whether
    the round is done (``backoff.quick``: the next attempt goes at once)."""

    def __init__(self, endpoints, names, backoff):
        self.endpoints = list(endpoints)
        self.names = list(names)
        self.backoff = backoff
        self.index = 0

    @property
    def current(self):
        return self.names[self.index]

    def connect(self, factory):
        d = self.endpoints[self.index].connect(factory)
        d.addErrback(self._failed)
        return d

    def _failed(self, failure):
        self.next()
        return failure

    def next(self):
        self.index = (self.index + 1) % len(self.endpoints)
        self.backoff.quick = self.index != 0

    def refused(self, error):
        """The master refused the hello: a standby goes on to the next at once."""
        if error.errmsg.startswith(NOT_ACTIVE):
            self.backoff.standby = True
            log.info("master {master} is not active; trying the next", master=self.current)
            self.next()


class RefusalOwner:
    """A link owner that tells a ``MasterList`` of refused hellos; the rest goes to ``owner``."""

    def __init__(self, owner, masters):
        self.owner = owner
        self.masters = masters

    def hello_refused(self, link, error):
        self.masters.refused(error)
        self.owner.hello_refused(link, error)

    def __getattr__(self, name):
        return getattr(self.owner, name)
