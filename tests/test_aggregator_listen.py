"""The aggregator's compute port: open only while the master link is up, anew each time."""

import json
import os

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT
from csm.config import load_daemon_config
from csm.roles.aggregator import AggregatorDaemon
from csm.roles.compute_port import LISTEN_RETRY


class RefusingReactor(MemoryReactorClock):
    """Refuses the first ``refusals`` listens (the port is still held), then listens."""

    refusals = 0

    def listenTCP(self, port, factory, backlog=50, interface=""):
        if self.refusals:
            self.refusals -= 1
            raise CannotListenError(interface, port, OSError("Address already in use"))
        return super().listenTCP(port, factory, backlog, interface)


def aggregator_config(path):
    """An aggregator agg01 without a local socket or BDS (nothing is reached: the tests give it a
    memory reactor); returns its ``DaemonConfig``."""
    conf = os.path.join(PROJECT, "conf")
    with open(path, "w") as f:
        json.dump({"csm": {"role": "Aggregator", "node_name": "agg01",
                           "api_permission_file": os.path.join(conf, "csm_api.acl"),
                           "api_configuration_file": os.path.join(conf, "csm_api.cfg"),
                           "net": {"master": {"host": "127.0.0.1", "port": 9801},
                                   "compute_listen": {"host": "127.0.0.1", "port": 9815},
                                   "local_client_listen": {"socket": ""}},
                           "bds": {"host": "NONE", "port": 0}}}, f)
    return load_daemon_config(path)


class ComputePortTests(SynchronousTestCase):
    def setUp(self):
        self.reactor = RefusingReactor()
        self.daemon = AggregatorDaemon(aggregator_config(self.mktemp()), self.reactor)
        self.daemon.startService()
        self.addCleanup(self.daemon.stopService)
        self.master = object()
        self.daemon.master.current = lambda: self.master if self.master_up else None
        self.master_up = False

    def compute_ports(self):
        return [port for port, *_ in self.reactor.tcpServers if port == 9815]

    def test_listens_while_the_master_is_up_and_again_after_it_returns(self):
        self.assertEqual(self.compute_ports(), [])  # no master yet: no computes
        self.master_up = True
        self.daemon.compute_port.open()
        self.assertEqual(self.compute_ports(), [9815])
        self.master_up = False
        self.daemon._master_lost(self.master)
        self.assertIsNone(self.daemon.compute_port.listener)
        self.master_up = True  # the master restarted: a new listening port
        self.daemon.compute_port.open()
        self.assertEqual(self.compute_ports(), [9815, 9815])
        self.assertIsNotNone(self.daemon.compute_port.listener)

    def test_a_refused_port_is_tried_again(self):
        self.reactor.refusals = 2
        self.master_up = True
        self.daemon.compute_port.open()
        self.assertEqual(self.compute_ports(), [])
        self.reactor.advance(LISTEN_RETRY)
        self.assertEqual(self.compute_ports(), [])
        self.reactor.advance(LISTEN_RETRY)
        self.assertEqual(self.compute_ports(), [9815])
        self.assertIsNone(self.daemon.compute_port.retry)

    def test_the_port_is_a_child_closed_by_the_tree(self):
        """Stopping the daemon stops its children: the compute port closes, a retry is cancelled."""
        self.assertIs(self.daemon.getServiceNamed("compute-port"), self.daemon.compute_port)
        self.master_up = True
        self.daemon.compute_port.open()
        self.assertIsNotNone(self.daemon.compute_port.listener)
        self.reactor.refusals = 1
        self.daemon._master_lost(self.master)
        self.daemon.compute_port.open()
        self.assertIsNotNone(self.daemon.compute_port.retry)
        self.daemon.stopService()
        self.assertIsNone(self.daemon.compute_port.listener)
        self.assertEqual(self.reactor.getDelayedCalls(), [])
