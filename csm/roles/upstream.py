"""The link to a parent daemon: reconnects by itself, backing off while attempts fail."""

import collections
import random

from twisted.application.internet import ClientService
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer

from csm import logs
from csm.api.commands import RAS_EVENT_CREATE
from csm.net.endpoints import client_endpoint
from csm.roles.master_list import QUICK_DELAY, MasterList, RefusalOwner

log = logs.logger("csmnet")

#: Fire-and-forget RAS events an aggregator or utility keeps while its master is away.
MAX_HELD = 10000
#: CAST's quick retries (50 ms x (n + 1)^2, up to 1.25 s) for this many failures in a row.
QUICK_RETRIES = 4
#: Past them the delay doubles with each failure up to this many seconds.
MAX_RETRY_DELAY = 30.0
#: ... or up to this many after a refused connection: nobody listens yet (a parent starting,
#: an aggregator whose master is away), which costs the parent nothing, and the link should
#: be up soon after the parent is.
REFUSED_RETRY_DELAY = 5.0


def reconnect_policy(attempt):
    """CAST's back-off: 50 ms x (n + 1)^2, at most 1.25 s."""
    return min(0.05 * (attempt + 1) ** 2, 1.25)


def retry_delay(failures, draw=random.random, cap=MAX_RETRY_DELAY):
    """Seconds before the next attempt after ``failures`` failed ones in a row (1 or more).

    The first ``QUICK_RETRIES`` are CAST's; then the delay doubles per failure up to
    ``cap``, and is drawn at random between half of it and all of it, so that thousands
    of nodes failing together (a reconnect storm) spread out instead of coming back in step.
    """
    if failures <= QUICK_RETRIES:
        return reconnect_policy(failures)
    ceiling = min(cap, reconnect_policy(QUICK_RETRIES) * 2.0 ** min(failures - QUICK_RETRIES, 64))
    return ceiling * (0.5 + 0.5 * draw())


class Backoff:
    """A ``ClientService`` retry policy that counts failures until a link is *ready*.

    ClientService counts attempts only until a connection is made, so a connection
    that never gets its hello answered (an aggregator too busy to shake hands) would
    be retried quickly for ever. Here only ``reset()`` (called when the link's
    handshake is done) starts the count again.
    """

    def __init__(self, draw=random.random, cap=MAX_RETRY_DELAY):
        self.failures = 0
        self.draw = draw
        self.cap = cap
        #: The last attempt was refused (set by ``RefusalNotingEndpoint``).
        self.refused = False
        #: The next attempt goes to another master of a round (``MasterList``): at once.
        self.quick = False
        #: A standby master refused the hello: an election is under way.
        self.standby = False

    def __call__(self, attempt):
        if self.quick:
            self.quick = False
            return QUICK_DELAY
        self.failures += 1
        cap = min(self.cap, REFUSED_RETRY_DELAY) if self.refused else self.cap
        if self.standby:
            cap = min(cap, reconnect_policy(QUICK_RETRIES))
        return retry_delay(self.failures, self.draw, cap)

    def reset(self):
        self.failures = 0
        self.standby = False


@implementer(IStreamClientEndpoint)
class RefusalNotingEndpoint:
    """An endpoint that tells a ``Backoff`` whether its last connection attempt was refused."""

    def __init__(self, endpoint, backoff):
        self.endpoint = endpoint
        self.backoff = backoff

    def connect(self, factory):
        d = self.endpoint.connect(factory)
        d.addCallbacks(self._made, self._failed)
        return d

    def _made(self, protocol):
        self.backoff.refused = False
        return protocol

    def _failed(self, failure):
        self.backoff.refused = failure.check(ConnectionRefusedError) is not None
        return failure


def handshake(link):
    """``ClientService``'s ``prepareConnection``: a connection counts as made once its hello is
    answered, so ``whenConnected`` fires with a ready link.

    A connection lost before that is still taken as made (and then lost), never as a failed
    preparation: ``ClientService`` cannot take a rejected connection whose loss it hears of
    later (no transition for the loss: an unhandled error), and ``Backoff`` counts such
    connections as failures until a link is ready anyway.
    """
    return link.when_ready().addErrback(lambda _: None)


class MasterClient:
    """What an aggregator and a utility share: requests climb to their master (``self.master``,
    an ``UpstreamLink``), which keeps fire-and-forget RAS events while no master is reachable."""

    def upstream(self):
        return self.master.current()

    def hold_upstream(self, message):
        """A fire-and-forget RAS event while no master is reachable: sent to the next one."""
        return self.master.hold(message)


class UpstreamLink:
    """One reconnecting link to a parent daemon.

    ``policy(backoff)`` may wrap the back-off (the compute's secondary waits longer).
    A daemon's ``connect_gate`` (csm-sim's), when set, paces the attempts; ``urgent()``
    says whether an attempt goes before others there.
    """

    def __init__(self, daemon, endpoint, owner, name, policy=None, urgent=lambda: True):
        """``endpoint``: one parent, or a list of masters (``MasterList``)."""
        endpoints = list(endpoint) if isinstance(endpoint, (list, tuple)) else [endpoint]
        self.endpoint = endpoints[0]
        self.name = name
        self.link = None
        self.backoff = Backoff()
        self.masters = None
        #: fire-and-forget RAS events waiting for the link (``hold``)
        self.held = collections.deque()
        self.dropped = 0
        connectors = [RefusalNotingEndpoint(client_endpoint(daemon.reactor, e, daemon.tls), self.backoff)
                      for e in endpoints]
        connector = connectors[0]
        if len(endpoints) > 1:
            self.masters = connector = MasterList(connectors, ["%s:%d" % (e.host, e.port) for e in endpoints],
                                                  self.backoff)
            owner = RefusalOwner(owner, self.masters)
        factory = daemon.link_factory(owner, True, name=name)
        gate = getattr(daemon, "connect_gate", None)
        #: the paced endpoint (``PacedEndpoint``) where a gate paces the attempts, else None
        self.paced = None
        if gate is not None and self.masters is None:
            connector = self.paced = gate.endpoint(connector, (self.endpoint.host, self.endpoint.port), urgent)
        self.service = ClientService(connector, factory, clock=daemon.clock,
                                     retryPolicy=self.backoff if policy is None else policy(self.backoff),
                                     prepareConnection=handshake)
        self.service.setName(name)

    def ready(self, link):
        self.link = link
        self.backoff.reset()
        held, self.held = self.held, collections.deque()
        if held:
            log.info("sending {n} RAS events held while no {name} was reachable", n=len(held), name=self.name)
        for message in held:
            link.send(message)

    def hold(self, message):
        """Keep a fire-and-forget RAS event while the link is down (the oldest go past
        ``MAX_HELD``); True when it is held."""
        if message.command != RAS_EVENT_CREATE.cmd_id:
            return False
        self.held.append(message)
        if len(self.held) > MAX_HELD:
            self.held.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warn("{n} RAS events dropped while no {name} was reachable", n=self.dropped, name=self.name)
        return True

    def lost(self, link):
        if self.link is link:
            self.link = None
            if self.masters is not None:
                self.masters.next()  # the active master went: another takes over

    def current(self):
        return self.link
