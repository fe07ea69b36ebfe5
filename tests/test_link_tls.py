"""The hello deadline over real TLS in memory: it starts when the TLS handshake is done."""

from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from csm.net.certs import make_pki
from csm.net.factory import LinkFactory
from csm.net.link import HELLO_ANSWER_TIMEOUT, HELLO_TIMEOUT, TLS_HANDSHAKE_TIMEOUT, LinkOwner
from csm.net.tls import TLSContexts


class Identity(LinkOwner):
    def __init__(self, role):
        self.role = role

    def hello(self, link):
        return dict(super().hello(link), node=self.role + "01", role=self.role)


class TLSHelloDeadlineTests(SynchronousTestCase):
    def setUp(self):
        self.tls = TLSContexts(*make_pki(self.mktemp()))

    def connect(self, client_says_hello=True):
        self.clock = Clock()
        links = {}

        def side(role, is_client, initiator, options):
            factory = LinkFactory(Identity(role), self.clock, initiator, 1 << 20, 0)
            tls = TLSMemoryBIOFactory(options, is_client, factory, clock=self.clock).buildProtocol(None)
            links[role] = tls.wrappedProtocol
            return tls

        server = side("aggregator", False, False, self.tls.server_options())
        client = side("compute", True, client_says_hello, self.tls.client_options("127.0.0.1"))
        self.server, self.client = links["aggregator"], links["compute"]
        server_transport = iosim.FakeTransport(server, isServer=True)
        client_transport = iosim.FakeTransport(client, isServer=False)
        # connected, but nothing moves until pump() (a peer queued behind other handshakes)
        self.pump = iosim.connect(server, server_transport, client, client_transport, greet=False,
                                 clock=self.clock)

    def test_time_queued_before_the_handshake_does_not_count(self):
        self.connect()
        self.clock.advance(HELLO_TIMEOUT + 5)
        self.assertTrue(self.server.connected)
        self.pump.flush()
        self.assertTrue(self.server.verified and self.client.verified)
        self.assertEqual(self.client.peer_node, "aggregator01")

    def test_the_hello_deadline_starts_at_the_handshake(self):
        self.connect(client_says_hello=False)
        self.clock.advance(HELLO_TIMEOUT + 5)
        self.pump.flush()  # TLS is up, but no hello comes
        self.assertTrue(self.server.connected)
        self.clock.advance(HELLO_TIMEOUT - 1)
        self.pump.flush()
        self.assertTrue(self.server.connected)
        self.clock.advance(1)
        self.pump.flush()
        self.assertFalse(self.server.connected)

    def test_a_handshake_that_never_ends_is_dropped(self):
        self.connect()
        self.clock.advance(TLS_HANDSHAKE_TIMEOUT)
        self.pump.flush()
        self.assertFalse(self.server.connected)
        self.assertFalse(self.server.verified)

    def client_handshake_done(self):
        """Pump until the client's TLS handshake is done and its hello sent; the server has not
        read it (a busy aggregator): nothing more moves until the next pump."""
        for _ in range(10):
            timer = self.client._hello_timer
            if timer is not None and timer.func == self.client._hello_timed_out:
                break  # re-armed by handshakeCompleted
            self.pump.pump()
        else:
            self.fail("the client's TLS handshake did not finish")
        self.assertFalse(self.server.verified)

    def test_the_initiator_waits_longer_for_a_busy_peers_answer(self):
        """A peer that did its side of the handshake is alive: the initiator does not give up a
        link at HELLO_TIMEOUT that its peer then accepts and counts (a compute's link to an
        aggregator in a reconnect storm: the aggregator saw it lost, a stray csm.status.down)."""
        self.connect()
        self.clock.advance(5)
        self.client_handshake_done()
        self.clock.advance(HELLO_TIMEOUT + 5)
        self.assertFalse(self.client._closing)
        self.pump.flush()
        self.assertTrue(self.server.verified and self.client.verified)
        self.assertTrue(self.server.connected)

    def test_the_initiator_gives_up_a_peer_that_never_answers(self):
        self.connect()
        self.client_handshake_done()
        self.clock.advance(HELLO_ANSWER_TIMEOUT - 1)
        self.assertFalse(self.client._closing)  # still waiting
        self.clock.advance(1)
        self.assertTrue(self.client._closing)
        self.pump.flush()
        self.assertFalse(self.client.connected)
        self.assertFalse(self.client.verified)
