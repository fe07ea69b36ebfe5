"""The master's compute reachability counts and their RAS events."""

from twisted.trial.unittest import SynchronousTestCase

from csm.roles.nodeset import FULL_REDUNDANCY, LOST_REDUNDANCY, STATUS_DOWN, STATUS_UP, NodeSet


class NodeSetTests(SynchronousTestCase):
    def setUp(self):
        self.events = []
        self.changes = []
        self.nodes = NodeSet(lambda *event: self.events.append(event[:2]),
                             lambda view: self.changes.append((view.node, view.primary, view.secondary)))

    def up(self, agg, node, primary=False):
        self.nodes.update(agg, [{"node": node, "up": True, "primary": primary}])

    def test_counts_give_cast_events(self):
        self.up("a1", "c1")
        self.up("a1", "c1", primary=True)
        self.up("a2", "c1")
        self.nodes.update("a1", [{"node": "c1", "up": False}])
        self.nodes.update("a2", [{"node": "c1", "up": False}])
        self.assertEqual(self.events, [(STATUS_UP, "c1"), (FULL_REDUNDANCY, "c1"),
                                       (LOST_REDUNDANCY, "c1"), (STATUS_DOWN, "c1")])

    def test_primary_tracked_and_routed(self):
        self.up("a1", "c1", primary=True)
        self.up("a2", "c1")
        self.up("a2", "c2", primary=True)
        self.assertEqual(self.nodes.primary_of("c1"), "a1")
        self.up("a2", "c1", primary=True)  # failover: a2 is primary now
        self.assertEqual(self.nodes.primary_of("c1"), "a2")
        self.assertEqual(self.nodes.computes["c1"].secondary, "a1")
        self.assertEqual(self.nodes.by_primary(["c1", "c2", "c3"]), {"a2": ["c1", "c2"], None: ["c3"]})
        self.assertIn(("c1", "a2", "a1"), self.changes)

    def test_aggregator_loss_takes_its_computes(self):
        self.up("a1", "c1", primary=True)
        self.up("a1", "c2", primary=True)
        self.up("a2", "c2")
        self.nodes.aggregator_lost("a1")
        self.assertIn((STATUS_DOWN, "c1"), self.events)
        self.assertIn((LOST_REDUNDANCY, "c2"), self.events)
        self.assertIsNone(self.nodes.primary_of("c1"))

    def test_full_report_drops_unlisted(self):
        self.up("a1", "c1", primary=True)
        self.up("a1", "c2", primary=True)
        self.nodes.update("a1", [{"node": "c2", "up": True, "primary": True}], full=True)
        self.assertNotIn("c1", self.nodes.computes)
        self.assertEqual(self.events[-1], (STATUS_DOWN, "c1"))
