"""Reconnect back-off: CAST's quick retries, then jittered exponential delays until a link is ready."""

import random

from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from csm.roles.upstream import (MAX_RETRY_DELAY, QUICK_RETRIES, REFUSED_RETRY_DELAY, Backoff, UpstreamLink,
                                reconnect_policy, retry_delay)
from csm.net.link import LinkOwner, LinkProtocol
from tests.test_link import RecordingOwner
from tests.test_compute_pair import Endpoint, FakeDaemon


class DelayTests(SynchronousTestCase):
    def test_first_retries_are_casts(self):
        self.assertEqual([retry_delay(n, draw=lambda: 0.0) for n in range(1, QUICK_RETRIES + 1)],
                         [reconnect_policy(n) for n in range(1, QUICK_RETRIES + 1)])
        self.assertEqual(retry_delay(QUICK_RETRIES), 1.25)

    def test_then_doubling_with_jitter_within_bounds(self):
        draws = random.Random(26)
        for failures in range(QUICK_RETRIES + 1, 40):
            ceiling = min(MAX_RETRY_DELAY, 1.25 * 2 ** (failures - QUICK_RETRIES))
            self.assertEqual(retry_delay(failures, draw=lambda: 0.0), ceiling / 2)
            self.assertEqual(retry_delay(failures, draw=lambda: 1.0), ceiling)
            delays = [retry_delay(failures, draw=draws.random) for _ in range(200)]
            self.assertTrue(all(ceiling / 2 <= d <= ceiling for d in delays), (failures, min(delays), max(delays)))
            self.assertGreater(max(delays) - min(delays), ceiling / 4)  # spread, not in step
        self.assertEqual(retry_delay(10 ** 6, draw=lambda: 1.0), MAX_RETRY_DELAY)

    def test_counts_failures_until_reset(self):
        backoff = Backoff(draw=lambda: 1.0)
        delays = [round(backoff(1), 6) for _ in range(7)]  # ClientService says 1 after each made connection
        self.assertEqual(delays, [0.2, 0.45, 0.8, 1.25, 2.5, 5.0, 10.0])
        backoff.reset()
        self.assertEqual(backoff(1), 0.2)


class UpstreamBackoffTests(SynchronousTestCase):
    """Through ClientService's retryPolicy hook, on a MemoryReactorClock."""

    def setUp(self):
        self.daemon = FakeDaemon()
        self.reactor = self.daemon.reactor
        self.upstream = UpstreamLink(self.daemon, Endpoint("127.0.0.1", 9801), owner=LinkOwner(), name="master")
        self.upstream.backoff.draw = lambda: 1.0
        self.upstream.service.startService()
        self.addCleanup(self.upstream.service.stopService)

    def retry_delay(self):
        [call] = self.reactor.getDelayedCalls()
        return call.getTime() - self.reactor.seconds()

    def refused(self):
        self.reactor.tcpClients[-1][2].clientConnectionFailed(None, ConnectionRefusedError())
        return self.retry_delay()

    def connected_then_lost(self):
        """A connection made and dropped before its hello (a peer too busy to shake hands)."""
        link = self.reactor.tcpClients[-1][2].buildProtocol(None)
        link.makeConnection(StringTransport())
        link.connectionLost(Failure(ConnectionDone()))
        return self.retry_delay()

    def test_connected_once_the_hello_is_answered(self):
        """prepareConnection: ``whenConnected`` fires with a ready link, not at the TCP connect."""
        connected = []
        self.upstream.service.whenConnected().addCallback(connected.append)
        client = self.reactor.tcpClients[-1][2].buildProtocol(None)
        server = LinkProtocol(RecordingOwner("master"), self.reactor, initiator=False)
        pump = iosim.connect(server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client),
                             greet=False)
        self.assertEqual(connected, [])
        pump.flush()
        self.assertEqual(len(connected), 1)
        self.assertTrue(connected[0].verified)
        self.assertEqual(connected[0].peer_node, "master-node")

    def next_attempt(self):
        self.reactor.advance(self.retry_delay())

    def test_delays_grow_across_connections_that_never_get_ready(self):
        delays = []
        for _ in range(8):
            delays.append(round(self.connected_then_lost(), 6))
            self.next_attempt()
        self.assertEqual(delays, [0.2, 0.45, 0.8, 1.25, 2.5, 5.0, 10.0, 20.0])
        self.assertAlmostEqual(self.connected_then_lost(), MAX_RETRY_DELAY)

    def test_refused_connections_back_off_less(self):
        """Nobody listening costs the parent nothing: refusals stop growing at REFUSED_RETRY_DELAY,
        and the count goes on, so a connection then accepted and dropped backs off further."""
        delays = []
        for _ in range(8):
            delays.append(round(self.refused(), 6))
            self.next_attempt()
        self.assertEqual(delays, [0.2, 0.45, 0.8, 1.25, 2.5, REFUSED_RETRY_DELAY, REFUSED_RETRY_DELAY,
                                  REFUSED_RETRY_DELAY])
        self.assertAlmostEqual(self.connected_then_lost(), MAX_RETRY_DELAY)
        self.next_attempt()
        self.assertAlmostEqual(self.refused(), REFUSED_RETRY_DELAY)

    def test_a_ready_link_starts_again_with_quick_retries(self):
        for _ in range(6):
            self.refused()
            self.next_attempt()
        link = self.reactor.tcpClients[-1][2].buildProtocol(None)
        link.makeConnection(StringTransport())
        self.upstream.ready(link)  # the hello was answered
        link.connectionLost(Failure(ConnectionDone()))
        self.assertAlmostEqual(self.retry_delay(), reconnect_policy(1))
