"""A master's standby: the pool start of an election that is over does not end a later one."""

from types import SimpleNamespace

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from csm.election import ACTIVE, STANDBY
from csm.errors import CSMError, ErrorCode
from csm.roles.standby import Standby


class FakePool:
    dsn = "dbname=csmdb"
    state = "stopped"

    def __init__(self):
        self.queue = []
        self.starts = []
        self.stops = 0

    def start(self):
        self.starts.append(defer.Deferred())
        return self.starts[-1]

    def stop(self):
        self.stops += 1


class StandbyTests(SynchronousTestCase):
    def setUp(self):
        self.pool = FakePool()
        config = SimpleNamespace(ha=SimpleNamespace(lease_seconds=4.0), net=SimpleNamespace(heartbeat_interval=15))
        daemon = SimpleNamespace(config=config, reactor=Clock(), db=self.pool, node_name="master-a",
                                 aggregators=[], utilities=[])
        self.standby = Standby(daemon)
        self.lease = self.standby.lease

    def change(self, state):
        """What the lease does: its state, then ``on_change``."""
        self.lease.state = state
        self.standby._changed(state)

    def refuse(self, index):
        self.pool.starts[index].errback(CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "the database pool is closed"))

    def test_failed_start_of_an_earlier_term_is_ignored(self):
        self.change(ACTIVE)
        self.change(STANDBY)  # fenced while the pool was connecting: stopped
        self.change(ACTIVE)  # elected again: a second start
        self.refuse(0)  # the first start ends, refused by the stop
        self.assertEqual(self.lease.state, ACTIVE)
        self.assertEqual(self.pool.stops, 1)

    def test_failed_start_of_this_term_steps_down(self):
        self.change(ACTIVE)
        self.refuse(0)
        self.assertEqual(self.lease.state, STANDBY)
        self.assertEqual(self.lease.fenced_reason, "the database pool could not start")
        self.assertEqual(self.pool.stops, 1)
