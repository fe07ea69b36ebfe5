"""A real Prometheus scrapes the master and an aggregator."""

import json
import os
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm.cluster import LocalCluster, free_port


def prometheus_binary():
    """Debian's prometheus, installed here when missing (as root); SkipTest when it cannot be."""
    path = shutil.which("prometheus")
    if path:
        return path
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise SkipTest("prometheus is not installed and cannot be installed (not root, or no apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                                "prometheus"]):
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          stdin=subprocess.DEVNULL, timeout=600).returncode != 0:
            raise SkipTest("could not install Debian's prometheus package (%s failed)" % " ".join(cmd[:2]))
    path = shutil.which("prometheus")
    if not path:
        raise SkipTest("prometheus installed but not on PATH")
    return path


class PrometheusTests(SynchronousTestCase):
    def test_scraped_series(self):
        binary = prometheus_binary()
        master_port, agg_port, web_port = free_port(), free_port(), free_port()
        run_dir = tempfile.mkdtemp(prefix="csm-prom-")
        cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=0, tls=False, extra={
            "master": {"net.metrics_listen": {"host": "127.0.0.1", "port": master_port}},
            "aggregator": {"net.metrics_listen": {"host": "127.0.0.1", "port": agg_port}},
            "compute": {"data_collection.buckets": [{"execution_interval": "00:00:01", "item_list": ["debug"]}]}})
        self.addCleanup(cluster.stop)
        cluster.start()
        config = os.path.join(run_dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n"
                    "  - job_name: csm\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d', '127.0.0.1:%d']\n" % (master_port, agg_port))
        prom = subprocess.Popen([binary, "--config.file", config, "--storage.tsdb.path", os.path.join(run_dir, "tsdb"),
                                 "--web.listen-address", "127.0.0.1:%d" % web_port],
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(run_dir, "prom.log"), "w"),
                                stdin=subprocess.DEVNULL)
        self.addCleanup(lambda: (prom.terminate(), prom.wait(30)))

        def query(expression):
            url = "http://127.0.0.1:%d/api/v1/query?%s" % (web_port, urllib.parse.urlencode({"query": expression}))
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return json.loads(response.read())["data"]["result"]
            except OSError:
                return []

        def series(expression, count):
            return cluster.wait_for(lambda: (lambda r: r if len(r) >= count else None)(query(expression)),
                                    timeout=60, interval=0.5, what="%s in Prometheus" % expression)

        roles = {r["metric"]["role"] for r in series("csm_daemon_info", 2)}
        self.assertEqual(roles, {"master", "aggregator"})
        env = series('csm_env_csm_test_env_seq{Hostname="c01"}', 1)
        self.assertGreater(float(env[0]["value"][1]), 0)
        nodes = series('csm_nodes{state="DISCOVERED"}', 1)
        self.assertGreaterEqual(float(nodes[0]["value"][1]), 2)  # c01 and agg01
        rc, out = cluster.cli("c01", "csm_allocation_create", "-j", "5", "-n", "c01", "-s", "staging-in",
                              "-t", "diagnostics")  # diagnostics: c01 may be DISCOVERED
        self.assertEqual(rc, 0, out)
        self.assertEqual(series('csm_allocations{state="staging-in"}', 1)[0]["value"][1], "1")
        self.assertEqual(series("csm_database_up", 1)[0]["value"][1], "1")
        self.assertTrue(series('csm_link_up{link="master"}', 1))
