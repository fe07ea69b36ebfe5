"""A link's reads a turn, over real loopback sockets (plain and TLS), and the master's links."""

import types

from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase

from csm.net.certs import make_pki
from csm.net.endpoints import client_endpoint, server_endpoint
from csm.net.readsize import MASTER_READ, limit_reads
from csm.net.tls import TLSContexts

SENT = 256 * 1024


class Chunks(protocol.Protocol):
    """Records how many bytes it is handed in each reactor turn; ``limit`` bytes a read when given."""

    def __init__(self, limit, done):
        self.limit, self.done, self.sizes, self.turn = limit, done, [], None

    def connectionMade(self):
        if self.limit:
            limit_reads(self, self.limit)

    def dataReceived(self, data):
        if self.turn is None:
            self.turn = 0
            reactor.callLater(0, self.turn_ended)  # runs once this turn's reads are handled
        self.turn += len(data)

    def turn_ended(self):
        self.sizes.append(self.turn)
        self.turn = None
        if sum(self.sizes) >= SENT:
            self.done.callback(self.sizes)


class Sender(protocol.Protocol):
    def __init__(self):
        self.lost = defer.Deferred()

    def connectionMade(self):
        self.transport.write(b"x" * SENT)

    def connectionLost(self, reason):
        self.lost.callback(None)

    def close(self):
        self.transport.abortConnection()
        return self.lost


class ReadSizeTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def read(self, limit, tls=None):
        """The sizes of the reads a server makes of ``SENT`` bytes written at once."""
        done = defer.Deferred()
        here = types.SimpleNamespace(host="127.0.0.1", port=0)
        port = yield server_endpoint(reactor, here, tls).listen(
            protocol.Factory.forProtocol(lambda: Chunks(limit, done)))
        self.addCleanup(port.stopListening)
        there = types.SimpleNamespace(host="127.0.0.1", port=port.getHost().port)
        sender = yield client_endpoint(reactor, there, tls).connect(protocol.Factory.forProtocol(Sender))
        self.addCleanup(sender.close)
        sizes = yield done
        return sizes

    @defer.inlineCallbacks
    def test_reads_at_most_the_limit_a_turn(self):
        sizes = yield self.read(4096)
        self.assertEqual(sum(sizes), SENT)
        self.assertLessEqual(max(sizes), 4096)

    @defer.inlineCallbacks
    def test_under_tls_the_socket_reads_are_limited(self):
        """The TCP connection under TLS reads the limit a turn: a turn decrypts at most the one
        TLS record (16 KiB) those bytes complete (a 64 KiB read: up to four)."""
        tls = TLSContexts(*make_pki(self.mktemp()))
        sizes = yield self.read(4096, tls)
        self.assertEqual(sum(sizes), SENT)
        self.assertLessEqual(max(sizes), 16384)

    @defer.inlineCallbacks
    def test_without_a_limit_a_read_takes_more(self):
        """What the limit changes: Twisted's own reads (64 KiB) hand over more at once."""
        sizes = yield self.read(None)
        self.assertGreater(max(sizes), 4096)


class MasterLinkTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_a_utility_link_to_the_master_reads_master_read_a_turn(self):
        from csm.net.factory import LinkFactory
        from csm.net.link import LinkOwner
        from csm.roles.master import MasterDaemon
        from tests.test_master_flush import master_config

        master = MasterDaemon(master_config(self.mktemp()))
        master.startService()
        self.addCleanup(master.stopService)
        port = master.getServiceNamed("utility-port").port

        class Utility(LinkOwner):
            def hello(self, link):
                return dict(super().hello(link), node="util01", role="utility")
        ready = defer.Deferred()
        factory = LinkFactory(Utility(), reactor, True, 1 << 20, 0)
        there = types.SimpleNamespace(host="127.0.0.1", port=port.getHost().port)
        link = yield client_endpoint(reactor, there).connect(factory)
        self.addCleanup(link.transport.loseConnection)
        link.when_ready().chainDeferred(ready)
        yield ready  # the master took the link before it answered the hello
        self.assertEqual(master.utilities.get("util01").link.transport.bufferSize, MASTER_READ)

