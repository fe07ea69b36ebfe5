"""The compute's primary/secondary aggregator state machine."""

from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from csm.roles.aggregator import FAILOVER, RESET
from csm.roles.compute import SECONDARY_RETRY, AggregatorPair
from csm.roles.upstream import Backoff, reconnect_policy
from csm.wire import InternalCommand


class Endpoint:
    def __init__(self, host, port):
        self.host, self.port = host, port


class FakeDaemon:
    tls = None

    def __init__(self):
        self.reactor = self.clock = MemoryReactorClock()
        self.inventory_sent = []

    def send_inventory(self, link):
        self.inventory_sent.append(link.name)

    def link_factory(self, owner, initiator, name=None):
        from csm.net.factory import LinkFactory
        return LinkFactory(owner, self.clock, initiator, 1 << 20, 15, name=name)

    def dispatch(self, link, message):
        pass


class FakeLink:
    def __init__(self, name, node):
        self.name = name
        self.peer_node = node
        self.sent = []
        self.state = "HAPPY"

    def send(self, message):
        self.sent.append((message.command, message.body()))
        return True

    def words(self):
        return [body for command, body in self.sent if command == InternalCommand.CONNECTION_CTRL]


class PairTests(SynchronousTestCase):
    def setUp(self):
        self.daemon = FakeDaemon()
        self.pair = AggregatorPair(self.daemon, Endpoint("127.0.0.1", 9800), Endpoint("127.0.0.2", 9800))
        self.a = FakeLink("aggregatorA", "agg-a")
        self.b = FakeLink("aggregatorB", "agg-b")

    def test_first_link_up_is_primary(self):
        self.pair._ready(self.a)
        self.assertEqual(self.pair.primary, "aggregatorA")
        self.assertIs(self.pair.current(), self.a)
        self.assertEqual(self.a.words(), [FAILOVER])

    def test_second_link_is_secondary(self):
        self.pair._ready(self.a)
        self.pair._ready(self.b)
        self.assertEqual(self.daemon.inventory_sent, ["aggregatorA", "aggregatorB"])  # on every link
        self.assertEqual(self.pair.primary, "aggregatorA")
        self.assertIs(self.pair.secondary(), self.b)
        self.assertEqual(self.b.words(), [])

    def test_primary_lost_promotes_secondary(self):
        self.pair._ready(self.a)
        self.pair._ready(self.b)
        self.pair._lost(self.a)
        self.assertEqual(self.pair.primary, "aggregatorB")
        self.assertEqual(self.b.words(), [FAILOVER])

    def test_returning_aggregator_stays_secondary(self):
        self.pair._ready(self.a)
        self.pair._ready(self.b)
        self.pair._lost(self.a)
        a2 = FakeLink("aggregatorA", "agg-a")
        self.pair._ready(a2)
        self.assertEqual(self.pair.primary, "aggregatorB")
        self.assertEqual(a2.words(), [])

    def test_secondary_lost_keeps_primary(self):
        self.pair._ready(self.a)
        self.pair._ready(self.b)
        self.pair._lost(self.b)
        self.assertIs(self.pair.current(), self.a)
        self.assertIsNone(self.pair.secondary())

    def test_b_primary_when_a_down_at_start(self):
        self.pair._ready(self.b)
        self.assertEqual(self.pair.primary, "aggregatorB")
        self.pair._ready(self.a)
        self.assertEqual(self.pair.primary, "aggregatorB")

    def test_both_lost(self):
        self.pair._ready(self.a)
        self.pair._ready(self.b)
        self.pair._lost(self.b)
        self.pair._lost(self.a)
        self.assertIsNone(self.pair.current())
        self.assertIsNone(self.pair.primary)

    def test_stale_loss_ignored(self):
        self.pair._ready(self.a)
        old = self.a
        new = FakeLink("aggregatorA", "agg-a")
        self.pair._lost(old)
        self.pair._ready(new)
        self.pair._lost(old)
        self.assertIs(self.pair.current(), new)

    def test_agg_reset_returns_to_configured(self):
        self.pair._ready(self.a)
        self.pair._ready(self.b)
        self.pair._lost(self.a)
        a2 = FakeLink("aggregatorA", "agg-a")
        self.pair._ready(a2)
        result = self.pair.reset()
        self.assertEqual(result, {"primary": "aggregatorA", "changed": True})
        self.assertEqual(self.b.words(), [FAILOVER, RESET])
        self.assertEqual(a2.words(), [FAILOVER])
        self.assertEqual(self.pair.reset()["changed"], False)

    def test_retry_policy(self):
        policy_b = self.pair._policy_for("aggregatorB")(Backoff())
        self.assertEqual([policy_b(n) for n in (1, 2, 3)], [reconnect_policy(n) for n in (1, 2, 3)])
        self.pair._ready(self.a)
        self.assertEqual(policy_b(4), SECONDARY_RETRY)
        self.assertLessEqual(reconnect_policy(100), 1.25)
        self.assertAlmostEqual(reconnect_policy(0), 0.05)

    def test_a_ready_link_resets_its_back_off(self):
        backoff = self.pair.upstreams["aggregatorA"].backoff
        for attempt in range(1, 8):
            backoff(attempt)
        self.pair._ready(self.a)
        self.assertEqual(backoff(1), reconnect_policy(1))

    def test_b_tried_only_after_a_first_attempt(self):
        reactor = self.daemon.reactor
        self.pair.startService()
        self.assertEqual([(h, p) for h, p, *_ in reactor.tcpClients], [("127.0.0.1", 9800)])
        factory = reactor.tcpClients[0][2]
        factory.clientConnectionFailed(None, ConnectionRefusedError())
        self.assertEqual([h for h, p, *_ in reactor.tcpClients], ["127.0.0.1", "127.0.0.2"])
        self.pair.stopService()


class FailbackTests(SynchronousTestCase):
    def setUp(self):
        self.daemon = FakeDaemon()
        self.pair = AggregatorPair(self.daemon, Endpoint("127.0.0.1", 9800), Endpoint("127.0.0.2", 9800),
                                   failback_after=30)
        self.a = FakeLink("aggregatorA", "agg-a")
        self.b = FakeLink("aggregatorB", "agg-b")
        self.pair._ready(self.b)  # A was down at start: B is primary

    def test_fails_back_once_a_is_stable(self):
        self.pair._ready(self.a)
        self.daemon.clock.advance(29)
        self.assertEqual(self.pair.primary, "aggregatorB")
        self.daemon.clock.advance(1)
        self.assertEqual(self.pair.primary, "aggregatorA")
        self.assertEqual(self.b.words(), [FAILOVER, RESET])
        self.assertEqual(self.a.words(), [FAILOVER])

    def test_no_failback_when_a_flaps(self):
        self.pair._ready(self.a)
        self.daemon.clock.advance(20)
        self.pair._lost(self.a)
        self.daemon.clock.advance(20)
        self.assertEqual(self.pair.primary, "aggregatorB")
        self.assertEqual(self.daemon.clock.getDelayedCalls(), [])

    def test_off_by_default(self):
        pair = AggregatorPair(self.daemon, Endpoint("127.0.0.1", 9800), Endpoint("127.0.0.2", 9800))
        pair._ready(FakeLink("aggregatorB", "agg-b"))
        pair._ready(FakeLink("aggregatorA", "agg-a"))
        self.daemon.clock.advance(3600)
        self.assertEqual(pair.primary, "aggregatorB")


class PacedPairTests(SynchronousTestCase):
    """csm-sim's paced attempts: a node whose two links were lost together (every aggregator
    drops its computes when the master goes) does not shake hands on both before other nodes
    have their first link."""

    def setUp(self):
        from csm.net.factory import LinkFactory
        from csm.net.link import LinkOwner
        from csm.net.pacing import ConnectGate
        self.daemon = FakeDaemon()
        self.daemon.connect_gate = ConnectGate(limit=1)
        self.factory = LinkFactory(LinkOwner(), self.daemon.clock, True, 1 << 20, 0)
        agg1, agg2 = Endpoint("127.0.0.1", 9800), Endpoint("127.0.0.2", 9800)
        self.one = AggregatorPair(self.daemon, agg1, agg2)
        self.two = AggregatorPair(self.daemon, agg2, agg1)
        self.three = AggregatorPair(self.daemon, agg2, agg1)

    def attempt(self, pair, name):
        return pair.upstreams[name].paced.connect(self.factory)

    def refuse(self, index):
        self.daemon.reactor.tcpClients[index][2].clientConnectionFailed(None, ConnectionRefusedError())

    def test_a_link_whose_other_link_is_trying_waits_behind_first_links(self):
        one_a = self.attempt(self.one, "aggregatorA")  # agg1's turn
        two_a = self.attempt(self.two, "aggregatorA")  # agg2's turn
        one_b = self.attempt(self.one, "aggregatorB")  # waits at agg2; node one is trying agg1
        three_a = self.attempt(self.three, "aggregatorA")  # waits at agg2: a node with no link
        self.assertTrue(self.one.upstreams["aggregatorA"].paced.attempting)
        self.refuse(1)  # agg2's turn is given back
        self.failureResultOf(two_a, ConnectionRefusedError)
        self.assertEqual([c[0] for c in self.daemon.reactor.tcpClients], ["127.0.0.1", "127.0.0.2", "127.0.0.2"])
        self.refuse(2)
        self.failureResultOf(three_a, ConnectionRefusedError)  # node three went first
        self.assertNoResult(one_b)
        self.assertEqual(len(self.daemon.reactor.tcpClients), 3)  # node one's first attempt still runs
        self.refuse(0)
        self.failureResultOf(one_a, ConnectionRefusedError)
        self.assertEqual([c[0] for c in self.daemon.reactor.tcpClients][3:], ["127.0.0.2"])  # then its second

    def test_a_link_waiting_for_its_other_link_keeps_its_place(self):
        one_a = self.attempt(self.one, "aggregatorA")  # agg1's turn
        two_a = self.attempt(self.two, "aggregatorA")  # agg2's turn
        one_b = self.attempt(self.one, "aggregatorB")  # waits at agg2, not now
        three_a = self.attempt(self.three, "aggregatorA")
        self.refuse(0)  # node one's first link refused: its second is urgent again, first in line
        self.failureResultOf(one_a, ConnectionRefusedError)
        self.refuse(1)
        self.failureResultOf(two_a, ConnectionRefusedError)
        self.refuse(2)
        self.failureResultOf(one_b, ConnectionRefusedError)
        self.assertNoResult(three_a)

    def test_a_link_whose_other_link_came_up_goes_behind(self):
        one_a = self.attempt(self.one, "aggregatorA")
        two_a = self.attempt(self.two, "aggregatorA")
        one_b = self.attempt(self.one, "aggregatorB")
        three_a = self.attempt(self.three, "aggregatorA")
        self.one.primary = "aggregatorA"  # its first link came up
        self.refuse(1)
        self.failureResultOf(two_a, ConnectionRefusedError)
        self.refuse(2)
        self.failureResultOf(three_a, ConnectionRefusedError)
        self.assertEqual(len(self.daemon.reactor.tcpClients), 4)  # the second link, last
        self.assertNoResult(one_b)
        self.assertNoResult(one_a)

    def test_the_other_link_not_trying_leaves_the_link_urgent(self):
        one_a = self.attempt(self.one, "aggregatorA")
        self.refuse(0)
        self.failureResultOf(one_a, ConnectionRefusedError)
        self.assertFalse(self.one.upstreams["aggregatorA"].paced.attempting)
        two_a = self.attempt(self.two, "aggregatorA")  # agg2's turn
        one_b = self.attempt(self.one, "aggregatorB")  # urgent: nothing else of node one is trying
        three_a = self.attempt(self.three, "aggregatorA")
        self.refuse(1)
        self.failureResultOf(two_a, ConnectionRefusedError)
        self.refuse(2)
        self.failureResultOf(one_b, ConnectionRefusedError)  # in order of arrival
        self.assertNoResult(three_a)
