"""The health check's ``bounced=N``: how often a daemon's link went away, as CAST counts it."""

from twisted.trial.unittest import SynchronousTestCase

from csm.roles.peers import PeerTable


class _Link:
    def __init__(self, node):
        self.peer_node = node
        self.peer = {"version": "1.8.5"}

    def close(self, reason):
        pass


class BouncedTests(SynchronousTestCase):
    def test_a_drop_is_a_bounce(self):
        table = PeerTable("aggregator")
        first = _Link("agg02")
        self.assertEqual(table.connected(first).bounced, 0)
        self.assertEqual(table.disconnected(first).bounced, 1)  # csm_ctrl_cmd.sh: bounced=1 while it is away
        second = _Link("agg02")
        self.assertEqual(table.connected(second).bounced, 1)  # coming back is not another bounce
        self.assertEqual(table.disconnected(second).bounced, 2)

    def test_a_replaced_link_is_no_bounce(self):
        table = PeerTable("aggregator")
        first, second = _Link("agg01"), _Link("agg01")
        table.connected(first)
        table.connected(second)
        self.assertIsNone(table.disconnected(first))
        self.assertEqual(table.get("agg01").bounced, 0)
