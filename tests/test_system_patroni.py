"""The database made highly available by Patroni and etcd: kill the primary under load."""

import os
import shutil
import tempfile
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm.cluster import LocalCluster
from csm.errors import CSMError
from tests.test_system_db_outage import EventSender

HEARTBEAT = 3


class PatroniFailoverTests(SynchronousTestCase):
    def setUp(self):
        from csm.db.patroni import PatroniCluster, PatroniNotFound
        try:
            self.patroni = PatroniCluster(nodes=2, etcd_members=1, fast=True)
        except PatroniNotFound as exc:
            raise SkipTest(str(exc))
        self.addCleanup(self.patroni.stop)
        self.patroni.start()
        run_dir = tempfile.mkdtemp(prefix="csm-patroni-tree-")
        os.chmod(run_dir, 0o755)
        self.addCleanup(shutil.rmtree, run_dir, True)
        self.cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=1, masters=2,
                                    heartbeat_interval=HEARTBEAT, patroni=self.patroni)
        self.addCleanup(self.cluster.stop)
        self.cluster.start()
        self.cluster.wait_complete("c01", timeout=60)

    def stored(self, tag):
        rows = self.cluster.sql("SELECT message, count(*) FROM csm_ras_event_action WHERE message LIKE %s "
                                "GROUP BY message", ("c01: %s %%" % tag,))
        return dict(rows or [])

    def test_kill_the_primary_patroni_promotes_the_master_follows(self):
        old = self.patroni.primary()
        sender = EventSender(self.cluster, "patroni")
        sender.start()
        self.addCleanup(sender.stop)
        time.sleep(1.0)
        self.patroni.kill(old)
        killed = time.monotonic()
        self.cluster.wait_for(lambda: self.patroni.primary() not in (None, old), timeout=60, interval=0.2,
                              what="Patroni to promote the replica")
        promoted = time.monotonic() - killed
        active = self.cluster.wait_for(self.cluster.active_master, timeout=60, what="an active master")
        self.cluster.wait_complete("c01", timeout=60)
        before = len(sender.calls)
        self.cluster.wait_for(lambda: len(sender.calls) > before + 20, timeout=20, what="events after the fail-over")
        calls = sender.stop()
        self.cluster.wait_for(lambda: (lambda s: s["db_state"] == "connected" and not s["db_queued_writes"])(
            self.cluster.status(active)), timeout=30, what="the queued writes")
        acknowledged = {"c01: " + c for c, _, reply in calls if not isinstance(reply, CSMError)}
        stored = self.stored("patroni")
        self.assertEqual(acknowledged - set(stored), set(), "promoted after %.1fs" % promoted)
        self.assertEqual(set(stored.values()), {1})
        # the health check names the new primary
        rc, out = self.cluster.cli("util01", "csm_infrastructure_health_check")
        self.assertEqual(rc, 0, out)
        self.assertIn("database primary: 127.0.0.1:%d" % self.patroni.port(self.patroni.primary()), out)
