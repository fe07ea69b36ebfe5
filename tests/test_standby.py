"""A master's standby: the pool start of an election that is over does not end a later one."""

import json
import os
from types import SimpleNamespace

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT
from csm.config import load_daemon_config
from csm.election import ACTIVE, STANDBY
from csm.errors import CSMError, ErrorCode
from csm.ras.slurm import NodeStateFeed
from csm.roles.master import MasterDaemon
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


class ActiveOnlyTests(SynchronousTestCase):
    """The Slurm feed runs on the active master only (two would drain and resume every node twice)."""

    def master(self, ha):
        conf = os.path.join(PROJECT, "conf")
        path = self.mktemp()
        with open(path, "w") as f:
            json.dump({"csm": {"role": "Master", "node_name": "master-a",
                               "api_permission_file": os.path.join(conf, "csm_api.acl"),
                               "api_configuration_file": os.path.join(conf, "csm_api.cfg"),
                               "db": {"host": "127.0.0.1", "name": "csmdb", "user": "csmdb"},
                               "ha": {"enabled": ha}, "ras": {"slurm": {"enabled": True}},
                               "net": {"local_client_listen": {"socket": ""},
                                       "aggregator_listen": {"host": "127.0.0.1", "port": 0},
                                       "utility_listen": {"host": "127.0.0.1", "port": 0}}}}, f)
        master = MasterDaemon(load_daemon_config(path), reactor=Clock())
        master.db = FakePool()  # the election's pool starts are not this test's
        return master

    def feed(self, master):
        feeds = [child for child in master.while_active if isinstance(child, NodeStateFeed)]
        self.assertEqual(len(feeds), 1)
        feed = feeds[0]
        self.patch(feed, "_connect", lambda: None)  # no database here: whether it runs is the point
        return feed

    def test_feed_runs_only_while_elected(self):
        master = self.master(ha=True)
        feed = self.feed(master)
        master.while_active.startService()
        self.assertFalse(feed.running)
        master.standby.lease.state = ACTIVE
        master.standby._changed(ACTIVE)
        self.assertTrue(feed.running)  # elected: it listens, and brings Slurm in line first
        master.standby.lease.state = STANDBY
        master.standby._changed(STANDBY)
        self.assertFalse(feed.running)
        master.while_active.stopService()

    def test_feed_runs_with_a_master_alone(self):
        master = self.master(ha=False)
        feed = self.feed(master)
        master.while_active.startService()
        self.assertTrue(feed.running)
        master.while_active.stopService()
        self.assertFalse(feed.running)
