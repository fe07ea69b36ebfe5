"""Who a daemon knows downstream: links by node name, with their history."""

import attrs


@attrs.define
class Peer:
    """A downstream daemon that connected at least once."""

    node: str
    role: str
    link: object = None
    version: str = "n/a"
    #: How many times the link went away since it first came (CAST counts a bounce when it drops).
    bounced: int = 0
    primary: bool = False
    connects: int = 0

    @property
    def connected(self):
        return self.link is not None


class PeerTable:
    """Peers of one kind (aggregators of a master, computes of an aggregator)."""

    def __init__(self, role):
        self.role = role
        self.peers = {}

    def connected(self, link):
        """A verified link from ``link.peer_node``; a newer link replaces an older one."""
        node = link.peer_node
        peer = self.peers.get(node)
        if peer is None:
            peer = self.peers[node] = Peer(node=node, role=self.role)
        previous = peer.link
        peer.link = link
        peer.version = link.peer.get("version", "n/a")
        peer.primary = False
        peer.connects += 1
        if previous is not None and previous is not link:
            previous.close("replaced by a new connection from %s" % node)
        return peer

    def disconnected(self, link):
        """``link`` went away; returns its peer if it was the current link."""
        peer = self.peers.get(link.peer_node)
        if peer is not None and peer.link is link:
            peer.link = None
            peer.primary = False
            peer.bounced += 1
            return peer
        return None

    def get(self, node):
        return self.peers.get(node)

    def active(self):
        return [p for p in self.peers.values() if p.link is not None]

    def links(self):
        return [p.link for p in self.peers.values() if p.link is not None]

    def __iter__(self):
        return iter(sorted(self.peers.values(), key=lambda p: p.node))

    def __len__(self):
        return len(self.peers)
