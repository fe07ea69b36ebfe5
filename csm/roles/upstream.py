"""The link to the master, for aggregators and utilities: reconnects by itself."""

from twisted.application.internet import ClientService

from csm.net.endpoints import client_endpoint


def reconnect_policy(attempt):
    """CAST's back-off: 50 ms x n^2, at most 1.25 s."""
    return min(0.05 * (attempt + 1) ** 2, 1.25)


class UpstreamLink:
    """One reconnecting link to a parent daemon."""

    def __init__(self, daemon, endpoint, owner, name, policy=reconnect_policy):
        self.endpoint = endpoint
        self.name = name
        self.link = None
        factory = daemon.link_factory(owner, True, name=name)
        self.service = ClientService(client_endpoint(daemon.reactor, endpoint, daemon.tls),
                                     factory, retryPolicy=policy, clock=daemon.clock)

    def ready(self, link):
        self.link = link

    def lost(self, link):
        if self.link is link:
            self.link = None

    def current(self):
        return self.link
