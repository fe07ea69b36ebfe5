"""Factories that build ``LinkProtocol``s for listeners and connectors."""

from twisted.internet.protocol import Factory

from csm.net.link import LinkProtocol


class LinkFactory(Factory):
    """Builds links that report to ``owner``; ``initiator`` says who says hello first."""

    protocol = LinkProtocol
    #: one log line per connection (csm-sim makes thousands) says nothing
    noisy = False

    def __init__(self, owner, clock, initiator, max_payload, heartbeat_interval, name=None,
                 exact_version=False):
        self.owner = owner
        self.clock = clock
        self.initiator = initiator
        self.max_payload = max_payload
        self.heartbeat_interval = heartbeat_interval
        self.name = name
        self.exact_version = exact_version

    def buildProtocol(self, addr):
        proto = self.protocol(self.owner, self.clock, self.initiator, max_payload=self.max_payload,
                              heartbeat_interval=self.heartbeat_interval, name=self.name,
                              exact_version=self.exact_version)
        proto.factory = self
        return proto
