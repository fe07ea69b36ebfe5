"""The master's multicast waits for unreachable nodes by notification from the node set."""

import types

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from csm.api import multicast
from csm.roles.nodeset import NodeSet
from csm.roles.peers import PeerTable


class _Link:
    """An aggregator's link as the master's peer table holds it (only what the wait reads)."""

    usable = True
    peer_node = "agg2"
    peer = {"version": "test"}


class WaitForPrimariesTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.master = types.SimpleNamespace(clock=self.clock, nodeset=NodeSet(lambda *a: None),
                                            aggregators=PeerTable("aggregator"))

    def wait(self, nodes, most):
        results = []
        multicast._wait_for_primaries(self.master, nodes, most).addCallback(results.append)
        return results

    def test_fires_when_the_report_comes(self):
        """No polling period: the wait ends in the same turn as the aggregator's report."""
        results = self.wait(["c01"], 5.0)
        self.clock.advance(0.01)
        self.assertEqual(results, [])
        self.master.aggregators.connected(_Link())
        self.master.nodeset.update("agg2", [{"node": "c01", "up": True, "primary": True}])
        self.assertEqual(results, [["c01"]])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_gives_up_at_the_deadline(self):
        results = self.wait(["c01", "c02"], 5.0)
        self.master.aggregators.connected(_Link())
        self.master.nodeset.update("agg2", [{"node": "c01", "up": True, "primary": True}])
        self.assertEqual(results, [])
        self.clock.advance(4.9)
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.assertEqual(results, [["c01"]])
        self.assertEqual(self.master.nodeset._waiters, [])

    def test_short_budget_does_not_wait(self):
        self.assertEqual(self.wait(["c01"], 1.0), [[]])
