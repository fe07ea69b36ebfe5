"""The service tree of a daemon: children stop one at a time, the last added first."""

from twisted.application import internet, service
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from csm.roles.aggregator import AggregatorDaemon
from csm.servicetree import service_tree
from tests.test_aggregator_listen import aggregator_config


class Recorder(service.Service):
    def __init__(self, name, stopped, wait=None):
        self.name = name
        self.stopped = stopped
        self.wait = wait

    def stopService(self):
        super().stopService()
        self.stopped.append(self.name)
        return self.wait


class StopOrderTests(SynchronousTestCase):
    def test_children_stop_in_reverse_one_at_a_time(self):
        daemon = AggregatorDaemon(aggregator_config(self.mktemp()), MemoryReactorClock())
        stopped = []
        slow = defer.Deferred()
        Recorder("uses", stopped).setServiceParent(daemon)
        Recorder("serves", stopped, wait=slow).setServiceParent(daemon)
        daemon.startService()
        done = daemon.stopService()
        self.assertEqual(stopped, ["serves"])  # "uses" waits until "serves" has stopped
        self.assertNoResult(done)
        slow.callback(None)
        self.assertEqual(stopped, ["serves", "uses"])
        self.successResultOf(done)
        self.assertFalse(any(child.running for child in daemon))


class PrintedTreeTests(SynchronousTestCase):
    def test_tree_of_an_aggregator(self):
        """What the admin shell's ``tree()`` prints (the real one is in tests.test_system_nodes)."""
        reactor = MemoryReactorClock()
        daemon = AggregatorDaemon(aggregator_config(self.mktemp()), reactor)
        timer = internet.TimerService(5, daemon.info)
        timer.setName("tick")
        timer.clock = reactor
        timer.setServiceParent(daemon)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        daemon.master.current = lambda: object()
        daemon.compute_port.open()
        self.assertEqual(service_tree(daemon).splitlines(), [
            "AggregatorDaemon",
            "|-- ClientService 'master'",
            "|-- ComputePort 'compute-port' listening on tcp 0.0.0.0:9815",
            "`-- TimerService 'tick' every 5s: info",
        ])
        daemon.compute_port.close()
        self.assertIn("ComputePort 'compute-port' closed", service_tree(daemon))
