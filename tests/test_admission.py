"""Admission control on a listening port: a real tcp.Port and real sockets, a MemoryReactorClock
for the reactor's reader set and time (the test calls the port's doRead itself)."""

import socket

from twisted.internet import tcp
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from csm import __version__
from csm.net.admission import HandshakeLimit
from csm.net.factory import LinkFactory
from csm.net.link import HELLO_TIMEOUT, LinkOwner
from csm.wire import Flags, InternalCommand, Message


def hello():
    return Message.make(InternalCommand.STATUS, {"version": __version__, "node": "c01", "role": "compute"},
                        flags=Flags.INT).encode()


class KeepingFactory(LinkFactory):
    """Keeps the links it builds."""

    def __init__(self, *args):
        super().__init__(*args)
        self.links = []

    def buildProtocol(self, addr):
        self.links.append(super().buildProtocol(addr))
        return self.links[-1]


class AdmissionTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        factory = KeepingFactory(LinkOwner(), self.reactor, False, 1 << 20, 0)
        self.links = factory.links
        self.limit = HandshakeLimit(factory, limit=2)
        self.port = tcp.Port(0, self.limit, interface="127.0.0.1", reactor=self.reactor)
        self.port.startListening()
        self.limit.listening(self.port)
        self.addCleanup(self.close)
        self.clients = []

    def close(self):
        for link in self.links:
            if link.connected:
                link.transport.abortConnection()
        for client in self.clients:
            client.close()
        self.port.stopListening()
        self.reactor.advance(0)

    def connect(self, n):
        for _ in range(n):
            client = socket.create_connection(("127.0.0.1", self.port.getHost().port))  # into the backlog
            self.clients.append(client)

    def accept(self, waiting):
        """``waiting`` connections in the backlog; the reactor finds the port readable."""
        self.connect(waiting)
        self.port.doRead()

    def reading(self):
        return self.port in self.reactor.getReaders()

    def test_accepts_no_more_than_the_limit_then_waits(self):
        self.accept(5)
        self.assertEqual(len(self.links), 2)
        self.assertEqual(self.limit.shaking, 2)
        self.assertFalse(self.reading())  # the other three wait in the backlog, not accepted and dropped

    def test_a_finished_handshake_lets_the_next_one_in(self):
        self.accept(5)
        self.links[0].dataReceived(hello())
        self.assertTrue(self.links[0].verified)
        self.assertEqual(self.limit.shaking, 1)
        self.assertTrue(self.reading())
        self.assertEqual(self.port.numberAccepts, 1)  # one free slot: one accept per wake-up
        self.port.doRead()
        self.assertEqual(len(self.links), 3)
        self.assertFalse(self.reading())

    def test_a_failed_handshake_frees_its_slot(self):
        self.accept(3)
        self.reactor.advance(HELLO_TIMEOUT)  # neither said hello: both dropped
        self.assertEqual([link.connected for link in self.links], [False, False])
        self.assertEqual(self.limit.shaking, 0)
        self.assertTrue(self.reading())
        self.port.doRead()
        self.assertEqual(len(self.links), 3)
        self.assertTrue(self.reading())

    def test_no_reading_once_the_port_is_given_up(self):
        self.accept(3)
        self.limit.listening(None)
        self.links[0].dataReceived(hello())
        self.assertFalse(self.reading())
