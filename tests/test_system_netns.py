"""Network faults between hosts: every daemon in a network namespace of its own (csm.hosts).

Master, two aggregators and three computes, each its own host (name, address,
certificate) on a private bridge. c01 and c03 are configured with agg01 first,
c02 with agg02 (a compute's primary is the first link up, so the tests read it).
The faults are cut links (nothing passes, nothing is refused by a peer) and an
unplugged host, made and healed while the daemons run. The tests share one tree
per test process: each heals what it broke and waits for the whole tree with both
links before the next (a tree that does not come back is stopped, and the next
test starts a new one).
"""

import atexit
import os
import re
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm import hosts
from csm.cluster import PROJECT, LocalCluster

HEARTBEAT = 3
OTHER = {"agg01": "agg02", "agg02": "agg01"}
#: A dead link is noticed after about 2.5 heartbeat intervals; then reconnects and failover.
NOTICED = 12 * HEARTBEAT


_shared = {}


def shared_tree():
    """(network, cluster): started on first use, stopped at exit or when a test leaves it broken."""
    if "tree" not in _shared:
        network = hosts.Network().start()
        run_dir = tempfile.mkdtemp(prefix="csm-netns-")
        os.chmod(run_dir, 0o755)
        cluster = LocalCluster(run_dir, computes=3, aggregators=2, utilities=0, tls=True,
                               heartbeat_interval=HEARTBEAT, fast_db=True, hosts=network)
        _shared["tree"] = network, cluster
        atexit.register(stop_tree)
        try:
            cluster.start()
            cluster.wait_complete("c01", timeout=60, redundant=True)
        except Exception:
            stop_tree()
            raise
    return _shared["tree"]


def stop_tree():
    network, cluster = _shared.pop("tree", (None, None))
    if cluster is not None:
        cluster.stop()
        network.stop()


class NamespaceFaultTests(SynchronousTestCase):
    def assert_own_hosts(self):
        """Names and addresses of the bridge in every config, certificate and link; none on loopback."""
        for daemon in self.cluster.daemons.values():
            with open(daemon.path) as f:
                self.assertNotIn("127.0.0.1", f.read())
        addresses = {host.address for host in self.network.hosts.values()}
        self.assertEqual(len(addresses), len(self.network.hosts))
        out = self.network.hosts["c01"].run(["hostname"], capture_output=True, text=True).stdout
        self.assertEqual(out.strip(), "c01")
        report = self.cluster.health("c01")
        self.assertEqual(sorted(a["node"] for a in report["aggregators"] if a["responding"]), ["agg01", "agg02"])

    def setUp(self):
        reason = hosts.unavailable()
        if reason:
            raise SkipTest(reason)
        self.network, self.cluster = shared_tree()
        self.marks = {name: len(self.cluster.log_text(name)) for name in self.cluster.daemons}
        self.addCleanup(self.restore)

    def restore(self):
        """Heal every fault; the whole tree with both links again, or a new tree for the next test."""
        self.network.heal_all()
        try:
            self.cluster.wait_complete("c01", timeout=2 * NOTICED, redundant=True)
        except Exception:
            stop_tree()
            raise

    def log(self, daemon):
        """What ``daemon`` logged since this test began."""
        return self.cluster.log_text(daemon)[self.marks[daemon]:]

    def db(self, statement, *args):
        return self.cluster.sql(statement, args)

    def primaries(self):
        """{compute: primary aggregator} as each compute says."""
        return {name: self.cluster.primary_of(name) for name in ("c01", "c02", "c03")}

    def links_in_db(self):
        return dict((node, (primary, secondary)) for node, primary, secondary in self.db(
            "SELECT node_name, primary_agg, secondary_agg FROM csm_node WHERE type = 'compute' ORDER BY node_name"))

    def wait_db(self, expected, what):
        return self.cluster.wait_for(lambda: self.links_in_db() == expected, timeout=NOTICED,
                                     what="%s in csm_node (last %s)" % (what, self.links_in_db()))

    def wait_log(self, daemon, text, times=1):
        return self.cluster.wait_for(lambda: self.log(daemon).count(text) >= times,
                                     timeout=NOTICED, what="%r in %s's log" % (text, daemon))

    def test_link_down_between_one_compute_and_its_primary(self):
        """c01 loses its primary only: it fails over to the other aggregator; c02 and c03 do not move."""
        self.assert_own_hosts()
        before = self.primaries()
        old = before["c01"]
        new = OTHER[old]
        self.wait_db({node: (primary, OTHER[primary]) for node, primary in before.items()}, "the tree")
        self.network.cut("c01", old)
        self.cluster.wait_for(lambda: self.cluster.primary_of("c01") == new, timeout=NOTICED,
                              what="c01 to fail over to %s" % new)
        expected = {node: (primary, OTHER[primary]) for node, primary in before.items()}
        expected["c01"] = (new, None)
        self.wait_db(expected, "c01 on %s alone" % new)
        self.wait_log("master", "RAS csm.status.lost_redundancy on c01")
        self.assertEqual(self.primaries(), dict(before, c01=new))
        self.assertNotIn("lost_redundancy on c03", self.log("master"))
        self.assertNotIn("lost_redundancy on c02", self.log("master"))
        rc, out = self.cluster.cli("c01", "csm_node_attributes_query", "-n", "c03")
        self.assertEqual(rc, 0, out)
        # healed: c01 takes its old primary back as its secondary and stays where it is
        self.network.heal("c01", old)
        expected["c01"] = (new, old)
        self.wait_db(expected, "c01 with %s as secondary" % old)
        self.assertEqual(self.primaries(), dict(before, c01=new))

    def test_aggregator_cut_from_master_drops_its_computes(self):
        """agg01 loses the master but not its computes: it drops them (as CAST) and they fail over."""
        self.network.cut("agg01", "master")
        self.wait_log("agg01", "master connection lost")
        self.cluster.wait_for(lambda: self.primaries() == {"c01": "agg02", "c02": "agg02", "c03": "agg02"},
                              timeout=NOTICED, what="agg01's computes to fail over to agg02")
        self.wait_db({"c01": ("agg02", None), "c02": ("agg02", None), "c03": ("agg02", None)},
                     "every compute on agg02 alone")
        report = self.cluster.health("c02")
        self.assertEqual({a["node"]: a["responding"] for a in report["aggregators"]},
                         {"agg01": False, "agg02": True})
        self.network.heal("agg01", "master")
        self.wait_db({"c01": ("agg02", "agg01"), "c02": ("agg02", "agg01"), "c03": ("agg02", "agg01")},
                     "agg01 back as every compute's secondary")
        self.cluster.wait_complete("c01", timeout=NOTICED, redundant=True)

    def test_master_cut_off_and_healed(self):
        """The master unplugged, then back: the tree re-forms once, every acknowledged event is stored."""
        acknowledged, refused = [], []

        def event(tag):
            try:
                rc, _ = self.cluster.cli("c01", "csm_ras_event_create", "-m", "admin.common.info", "-l", "c01",
                                         "-k", "comment=%s" % tag, timeout=60)
            except subprocess.TimeoutExpired:
                rc = None
            (acknowledged if rc == 0 else refused).append(tag)

        event("before")
        self.network.isolate("master")
        event("cut")
        self.wait_log("agg01", "master connection lost")
        self.wait_log("agg02", "master connection lost")
        event("cut-noticed")
        self.network.rejoin("master")
        report = self.cluster.wait_complete("c01", timeout=2 * NOTICED, redundant=True)
        event("after")
        self.assertIn("before", acknowledged)
        self.assertIn("after", acknowledged)
        self.assertIn("cut-noticed", refused)
        stored = [row[0] for row in self.db("SELECT kvcsv FROM csm_ras_event_action "
                                            "WHERE msg_id = 'admin.common.info' AND location_name = 'c01'")]
        for tag in acknowledged:
            self.assertTrue(any("comment=%s" % tag in (raw or "") for raw in stored), (tag, stored))
        # one link each: the master sees each aggregator once, each compute has one primary and one secondary
        peers = [link["peer"] for link in self.cluster.status("master")["links"] if link["state"] == "HAPPY"]
        self.assertEqual(sorted(peers), ["agg01", "agg02"])
        for aggregator in report["aggregators"]:
            names = [compute["node"] for compute in aggregator["computes"]]
            self.assertEqual(len(names), len(set(names)), aggregator)
        links = [(c["node"], c["link"]) for a in report["aggregators"] for c in a["computes"]]
        self.assertEqual(sorted(links), sorted((node, kind) for node in ("c01", "c02", "c03")
                                               for kind in ("PRIMARY", "SECONDARY")))
        self.assertEqual(set(self.links_in_db()), {"c01", "c02", "c03"})
        self.assertTrue(all(primary and secondary for primary, secondary in self.links_in_db().values()))


class DemoOnHostsTests(SynchronousTestCase):
    def test_demo_hosts_once(self):
        """csm-demo --hosts: the tree on hosts of its own, shown working, and nothing left behind."""
        reason = hosts.unavailable()
        if reason:
            raise SkipTest(reason)
        run_dir = os.path.join(tempfile.mkdtemp(prefix="csm-demo-hosts-"), "run")
        proc = subprocess.run([sys.executable, "-m", "csm.demo", "--hosts", "--once", "--nodes", "2",
                               "--no-prometheus", "--run-dir", run_dir], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=240, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, PYTHONPATH=PROJECT))
        self.assertEqual(proc.returncode, 0, proc.stdout)
        self.assertIn("every daemon on its own host", proc.stdout)
        self.assertRegex(proc.stdout, r"agg01 +10\.213\.")
        self.assertIn("AGGREGATOR: agg02", proc.stdout)
        with open(os.path.join(run_dir, "c01.cfg")) as f:
            self.assertNotIn("127.0.0.1", f.read())
        prefix = re.search(r"network namespace (csmh\d+-)", proc.stdout).group(1)
        self.assertEqual([name for name in os.listdir(hosts.NETNS_DIR) if name.startswith(prefix)], [])
