"""An aggregator whose master went: its computes are forgotten at once, not when their links
have finished closing, so a master back before then hears nothing of them."""

from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from csm.roles.aggregator import AggregatorDaemon
from csm.wire import InternalCommand
from tests.test_aggregator_listen import aggregator_config


class ClosingLink:
    """A link whose close takes a while (a TLS close): ``close()`` only starts it."""

    def __init__(self, node):
        self.peer_node = node
        self.peer = {"version": "test"}
        self.closing = False
        self.sent = []

    def close(self, reason=""):
        self.closing = True

    def send(self, message):
        self.sent.append(message)


class MasterLossTests(SynchronousTestCase):
    def setUp(self):
        self.daemon = AggregatorDaemon(aggregator_config(self.mktemp()), MemoryReactorClock())
        self.daemon.inventory = lambda: defer.succeed(None)
        self.daemon.startService()
        self.addCleanup(self.daemon.stopService)
        self.master = ClosingLink("master")
        self.daemon.master.current = lambda: self.master

    def reports(self):
        """The NODESET_UPDATE bodies the current master link got."""
        return [m.body() for m in self.master.sent if m.command == InternalCommand.NODESET_UPDATE]

    def test_a_master_back_before_the_computes_have_gone_hears_nothing_of_them(self):
        computes = [ClosingLink("c%02d" % i) for i in range(3)]
        for link in computes:
            self.daemon._compute_ready(link)
        self.assertEqual(len(self.daemon.computes.active()), 3)
        self.daemon._master_lost(self.master)
        self.assertTrue(all(link.closing for link in computes))
        self.assertEqual(self.daemon.computes.active(), [])

        self.master = ClosingLink("master")  # restarted while the compute links still close
        self.daemon._master_ready(self.master)
        for link in computes:  # their closes complete now
            self.daemon._compute_lost(link)
        self.assertEqual(self.reports(), [{"computes": [], "full": True}])
        self.assertEqual([p.bounced for p in self.daemon.computes], [1, 1, 1])

    def test_a_compute_that_comes_back_is_reported_up(self):
        old = ClosingLink("c01")
        self.daemon._compute_ready(old)
        self.daemon._master_lost(self.master)
        self.master = ClosingLink("master")
        self.daemon._master_ready(self.master)
        new = ClosingLink("c01")
        self.daemon._compute_ready(new)
        self.daemon._compute_lost(old)  # the old link's close completes after the new one came
        self.assertEqual(self.reports(), [{"computes": [], "full": True},
                                          {"computes": [{"node": "c01", "up": True, "primary": False}], "full": False}])
        self.assertIs(self.daemon.computes.get("c01").link, new)
