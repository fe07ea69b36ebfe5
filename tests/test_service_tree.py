"""The service tree of a daemon: children stop one at a time, the last added first."""

from twisted.application import service
from twisted.internet import defer
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from csm.roles.aggregator import AggregatorDaemon
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
