"""Two computes with one node name: the second is refused (both sides say so, a RAS event),
the first keeps its link; a compute that comes back while its old link is silent replaces it."""

from twisted.internet.testing import EventLoggingObserver, MemoryReactorClock
from twisted.logger import globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from csm import __version__
from csm.api.commands import RAS_EVENT_CREATE
from csm.net.link import LinkOwner, LinkProtocol
from csm.roles.aggregator import DUPLICATE_NODE, AggregatorDaemon
from tests.test_aggregator_listen import aggregator_config


class Node(LinkOwner):
    """One end of a link: says hello as ``role`` ``node`` and keeps what it is sent."""

    def __init__(self, role, node):
        self.role, self.node = role, node
        self.received = []

    def hello(self, link):
        return {"version": __version__, "node": self.node, "role": self.role}

    def message_received(self, link, message):
        self.received.append(message)


class DuplicateComputeTests(SynchronousTestCase):
    def setUp(self):
        self.clock = MemoryReactorClock()
        self.daemon = AggregatorDaemon(aggregator_config(self.mktemp()), self.clock)
        self.master = Node("master", "master")
        upstream, _server, self.master_pump = self.pair(
            lambda: LinkProtocol(self.master, self.clock, initiator=False, heartbeat_interval=0),
            lambda: LinkProtocol(Node("aggregator", "agg01"), self.clock, initiator=True, heartbeat_interval=0))
        self.daemon.master.current = lambda: upstream
        self.logged = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)

    def pair(self, server, client):
        client_link, server_link, pump = iosim.connectedServerAndClient(server, client, greet=False, clock=self.clock)
        pump.flush()
        return client_link, server_link, pump

    def compute(self, node="c01"):
        """A compute's link to the aggregator: (compute side, aggregator side, pump)."""
        return self.pair(lambda: self.daemon.compute_port.factory.buildProtocol(None),
                         lambda: LinkProtocol(Node("compute", node), self.clock, initiator=True,
                                              heartbeat_interval=15, name="aggregatorA"))

    def ras_events(self):
        self.master_pump.flush()
        return [m.body() for m in self.master.received if m.command == RAS_EVENT_CREATE.cmd_id]

    def text(self):
        from twisted.logger import formatEvent
        return "\n".join(formatEvent(event) for event in self.logged)

    def test_second_compute_of_a_name_is_refused_and_the_first_kept(self):
        first, first_here, _ = self.compute()
        self.assertTrue(first.verified)
        second, second_here, _ = self.compute()
        self.assertFalse(second.verified or second.connected or second_here.connected)
        self.assertIs(self.daemon.computes.get("c01").link, first_here)
        self.assertTrue(first.connected and first_here.connected)
        self.assertEqual(self.daemon.computes.get("c01").connects, 1)
        text = self.text()
        self.assertIn("aggregatorA refused this daemon: node name c01 is already connected to aggregator agg01 "
                      "(from ", text)  # the compute's side
        self.assertIn("refusing c01 (%s): node name c01 is already connected" % __version__, text)  # the aggregator's
        [event] = self.ras_events()
        self.assertEqual((event["msg_id"], event["location_name"]), (DUPLICATE_NODE, "c01"))
        self.assertIn("aggregator=agg01", event["kvcsv"])
        self.compute()  # it tries again: refused again, no second event for the same pair
        self.assertEqual(len(self.ras_events()), 1)
        self.assertIs(self.daemon.computes.get("c01").link, first_here)
        _other, other_here, _ = self.compute("c02")  # other names are not affected
        self.assertIs(self.daemon.computes.get("c02").link, other_here)

    def test_a_compute_back_while_its_old_link_is_silent_replaces_it(self):
        first, first_here, _ = self.compute()
        self.clock.advance(16)  # nothing pumped: the aggregator has not heard from it for an interval
        self.assertNotEqual(first_here.state, "HAPPY")
        again, again_here, _ = self.compute()
        self.assertTrue(again.verified)
        self.assertIs(self.daemon.computes.get("c01").link, again_here)
        self.assertEqual(self.ras_events(), [])
