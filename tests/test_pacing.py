"""csm-sim's pacing of connection attempts, and its bounded stop, on a MemoryReactorClock."""

from twisted.application import service
from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from csm import __version__
from csm.net.factory import LinkFactory
from csm.net.link import LinkOwner
from csm.net.pacing import ConnectGate
from csm.sim import STOP_GRACE, stop_within
from csm.wire import Flags, InternalCommand, Message


def hello_answer():
    return Message.make(InternalCommand.STATUS, {"version": __version__, "node": "agg01", "role": "aggregator"},
                        flags=Flags.INT | Flags.RESP).encode()


class GateTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = MemoryReactorClock()
        self.gate = ConnectGate(limit=2)
        self.factory = LinkFactory(LinkOwner(), self.reactor, True, 1 << 20, 0)

    def attempt(self, port=9800):
        endpoint = TCP4ClientEndpoint(self.reactor, "127.0.0.1", port)
        return self.gate.endpoint(endpoint, ("127.0.0.1", port)).connect(self.factory)

    def started(self):
        return len(self.reactor.tcpClients)

    def connect(self, index):
        """The reactor connects attempt ``index``: its link, waiting for the hello answer."""
        link = self.reactor.tcpClients[index][2].buildProtocol(None)
        link.makeConnection(StringTransport())
        return link

    def test_at_most_limit_attempts_per_destination(self):
        attempts = [self.attempt() for _ in range(4)]
        other = self.attempt(port=9801)  # another aggregator has turns of its own
        self.assertEqual(self.started(), 3)
        self.assertEqual(self.gate.waiting(), 2)
        link = self.connect(0)
        self.assertEqual(self.started(), 3)  # connected is not done: the hello is still due
        link.dataReceived(hello_answer())
        self.assertTrue(self.successResultOf(attempts[0]).verified)
        self.assertEqual(self.started(), 4)
        for waiting in attempts[1:] + [other]:
            self.assertNoResult(waiting)

    def test_failed_or_lost_attempts_give_their_turn(self):
        attempts = [self.attempt() for _ in range(4)]
        self.reactor.tcpClients[0][2].clientConnectionFailed(None, ConnectionRefusedError())
        self.failureResultOf(attempts[0], ConnectionRefusedError)
        self.assertEqual(self.started(), 3)
        self.connect(1).connectionLost(Failure(ConnectionDone()))  # dropped before the hello
        self.assertEqual(self.started(), 4)

    def test_a_waiting_attempt_can_be_cancelled(self):
        attempts = [self.attempt() for _ in range(3)]
        attempts[2].cancel()
        self.failureResultOf(attempts[2], defer.CancelledError)
        self.connect(0).connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.started(), 2)
        self.assertEqual(self.gate.waiting(), 0)


class Stuck(service.Service):
    """A node whose links never finish closing."""

    def stopService(self):
        super().stopService()
        return defer.Deferred()


class StopTests(SynchronousTestCase):
    def test_stop_is_bounded(self):
        clock = MemoryReactorClock()
        top = service.MultiService()
        Stuck().setServiceParent(top)
        top.startService()
        done = stop_within(top, clock)
        clock.advance(STOP_GRACE - 0.1)
        self.assertNoResult(done)
        clock.advance(0.1)
        self.successResultOf(done)

    def test_a_quick_stop_does_not_wait(self):
        clock = MemoryReactorClock()
        top = service.MultiService()
        service.Service().setServiceParent(top)
        top.startService()
        self.successResultOf(stop_within(top, clock))
        self.assertEqual(clock.getDelayedCalls(), [])


class UrgentTests(SynchronousTestCase):
    def test_urgent_attempts_go_first(self):
        reactor = MemoryReactorClock()
        gate = ConnectGate(limit=1)
        factory = LinkFactory(LinkOwner(), reactor, True, 1 << 20, 0)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", 9800)
        spare = gate.endpoint(endpoint, "agg01", urgent=lambda: False)
        urgent = gate.endpoint(endpoint, "agg01")
        first = urgent.connect(factory)
        second_link = spare.connect(factory)  # a node's second link
        lonely = urgent.connect(factory)  # a node with no link at all
        self.assertEqual(len(reactor.tcpClients), 1)
        reactor.tcpClients[0][2].clientConnectionFailed(None, ConnectionRefusedError())
        self.failureResultOf(first, ConnectionRefusedError)
        self.assertEqual(len(reactor.tcpClients), 2)
        reactor.tcpClients[1][2].clientConnectionFailed(None, ConnectionRefusedError())
        self.failureResultOf(lonely, ConnectionRefusedError)
        self.assertNoResult(second_link)
        self.assertEqual(len(reactor.tcpClients), 3)

    def test_urgency_is_asked_again_when_a_turn_comes(self):
        reactor = MemoryReactorClock()
        gate = ConnectGate(limit=1)
        factory = LinkFactory(LinkOwner(), reactor, True, 1 << 20, 0)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", 9800)
        node = {"primary": None}
        first = gate.endpoint(endpoint, "agg01").connect(factory)
        second_link = gate.endpoint(endpoint, "agg01", urgent=lambda: node["primary"] is None).connect(factory)
        other_node = gate.endpoint(endpoint, "agg01").connect(factory)
        node["primary"] = "aggregatorB"  # its other link came up meanwhile
        reactor.tcpClients[0][2].clientConnectionFailed(None, ConnectionRefusedError())
        self.failureResultOf(first, ConnectionRefusedError)
        reactor.tcpClients[1][2].clientConnectionFailed(None, ConnectionRefusedError())
        self.failureResultOf(other_node, ConnectionRefusedError)
        self.assertNoResult(second_link)
