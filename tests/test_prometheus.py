"""Prometheus: the shipped rules and dashboard, the master's per-compute links, and a real
Prometheus scraping a small tree (``make prometheus`` installs Debian's package)."""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile

import treq
from twisted.internet import defer, reactor, task, threads
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase
from twisted.web.client import HTTPConnectionPool

from csm import metrics, prometheus
from csm.cluster import PROJECT, LocalCluster
from csm.roles.nodeset import NodeSet

CONF = os.path.join(PROJECT, "conf", "prometheus")
MISSING = "Debian's prometheus package is not installed (make prometheus)"
#: PromQL words that are not series names
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
_FAMILY = re.compile(r"(GaugeMetricFamily|CounterMetricFamily|Counter|Histogram)\(\s*\"(\w+)\"")


def program(name):
    path = shutil.which(name)
    if path is None:
        raise SkipTest(MISSING)
    return path


def series_names(expression):
    """The series names a PromQL expression reads (functions, labels and ranges left out)."""
    text = re.sub(r'"[^"]*"', "", expression)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    return {name for name in re.findall(r"(?<![\w:.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text)
            if name.lower() not in _KEYWORDS}


def dashboard_expressions():
    with open(prometheus.DASHBOARD) as f:
        dashboard = json.load(f)
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def recorded_names():
    with open(prometheus.RULES) as f:
        return set(re.findall(r"^\s*- record:\s*(\S+)\s*$", f.read(), re.M))


def declared_names():
    """Series the daemons' code declares (counters with _total, histograms with their parts)."""
    names = {"up"} | {name for name, _help in metrics.DCGM_NAMES.values()}
    for path in glob.glob(os.path.join(PROJECT, "csm", "**", "*.py"), recursive=True):
        with open(path) as f:
            for kind, name in _FAMILY.findall(f.read()):
                if kind in ("Counter", "CounterMetricFamily"):
                    names.add(name + "_total")
                elif kind == "Histogram":
                    names.update(name + suffix for suffix in ("_bucket", "_sum", "_count"))
                else:
                    names.add(name)
    return names


class SeriesNamesTests(SynchronousTestCase):
    def test_names(self):
        self.assertEqual(series_names('histogram_quantile(0.99, sum by (api, le) '
                                      '(rate(csm_api_request_seconds_bucket{api="x y"}[5m])))'),
                         {"csm_api_request_seconds_bucket"})
        self.assertEqual(series_names("count(csm_compute_aggregator_links == 1) or vector(0)"),
                         {"csm_compute_aggregator_links"})
        self.assertEqual(series_names("csm:api_requests:rate5m / on (api) up"), {"csm:api_requests:rate5m", "up"})


class ComputeLinksTests(SynchronousTestCase):
    """``csm_compute_aggregator_links`` from the master's node set."""

    def values(self, links, nodeset):
        return {sample.labels["compute"]: sample.value for sample in links.family(nodeset.computes).samples}

    def test_counts_follow_the_aggregators(self):
        nodeset, links = NodeSet(lambda *event: None), metrics.ComputeLinks()
        nodeset.update("agg01", [{"node": "c01", "up": True, "primary": True},
                                 {"node": "c02", "up": True, "primary": False}])
        nodeset.update("agg02", [{"node": "c01", "up": True, "primary": False}])
        self.assertEqual(self.values(links, nodeset), {"c01": 2, "c02": 1})
        nodeset.aggregator_lost("agg02")
        self.assertEqual(self.values(links, nodeset), {"c01": 1, "c02": 1})
        nodeset.aggregator_lost("agg01")  # both down: still reported, at 0
        self.assertEqual(self.values(links, nodeset), {"c01": 0, "c02": 0})

    def test_seen_between_scrapes(self):
        """A compute that came and went between two scrapes is reported down, not missed."""
        links = metrics.ComputeLinks()
        nodeset = NodeSet(lambda msg_id, node, aggregator: links.seen.add(node))
        nodeset.update("agg01", [{"node": "c03", "up": True, "primary": True}])
        nodeset.aggregator_lost("agg01")
        self.assertEqual(self.values(links, nodeset), {"c03": 0})


class RulesTests(SynchronousTestCase):
    def promtool(self, *args):
        proc = subprocess.run([program("promtool")] + list(args), cwd=CONF, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stdout)
        return proc.stdout

    def test_check_rules(self):
        self.assertIn("SUCCESS", self.promtool("check", "rules", "csm_rules.yml"))

    def test_rule_unit_tests(self):
        """Each alert against made-up series (conf/prometheus/csm_rules_test.yml)."""
        self.assertIn("SUCCESS", self.promtool("test", "rules", "csm_rules_test.yml"))

    def test_rules_with_a_short_hold(self):
        """The copy the live test loads: every ``for:`` cut to 1s, still valid rules."""
        path = prometheus.rules_with_hold(prometheus.RULES, os.path.join(tempfile.mkdtemp(), "rules.yml"), "1s")
        with open(prometheus.RULES) as f, open(path) as g:
            original, held = f.read(), g.read()
        self.assertEqual(re.findall(r"^\s+for: (\S+)$", held, re.M), ["1s"] * original.count("for:"))
        self.assertEqual(len(held.splitlines()), len(original.splitlines()))
        self.assertIn("SUCCESS", self.promtool("check", "rules", path))

    def test_rules_read_declared_series(self):
        with open(prometheus.RULES) as f:
            expressions = re.findall(r"^\s+expr:\s*(?:>\s*\n((?:\s{10}.*\n)+)|(.*)$)", f.read(), re.M)
        names = set()
        for folded, line in expressions:
            names |= series_names(folded or line)
        self.assertTrue(names)
        self.assertEqual(names - declared_names() - recorded_names(), set())


class DashboardTests(SynchronousTestCase):
    def test_panels_read_declared_series(self):
        expressions = dashboard_expressions()
        self.assertGreaterEqual(len(expressions), 10)
        known = declared_names() | recorded_names()
        for title, expression in expressions:
            names = series_names(expression)
            self.assertTrue(names, "%s: %s reads no series" % (title, expression))
            self.assertEqual(names - known, set(), "%s: %s" % (title, expression))

    def test_series_names_catches_an_unknown_series(self):
        self.assertEqual(series_names("sum(csm_no_such_series)") - declared_names(), {"csm_no_such_series"})


class ScrapeTests(TestCase):
    """A real Prometheus scrapes a tree of master, two aggregators, a utility and two computes."""

    timeout = 240

    @defer.inlineCallbacks
    def setUp(self):
        program("prometheus")
        self.run_dir = tempfile.mkdtemp(prefix="csm-prom-")
        self.cluster = LocalCluster(self.run_dir, computes=2, aggregators=2, utilities=1, tls=False, fast_db=True,
                                    metrics=True, extra={"compute": {"data_collection.buckets": [
                                        {"execution_interval": "00:00:01", "item_list": ["debug"]}]}})
        self.addCleanup(threads.deferToThread, self.cluster.stop)
        yield threads.deferToThread(self.cluster.start)
        yield threads.deferToThread(self.cluster.wait_complete, "c01", 90, True)
        targets = prometheus.write_targets(os.path.join(self.run_dir, "csm_targets.json"), self.cluster)
        rules = prometheus.rules_with_hold(prometheus.RULES, os.path.join(self.run_dir, "rules.yml"), "1s")
        self.server = prometheus.PrometheusServer(os.path.join(self.run_dir, "prometheus"), targets,
                                                  interval="1s", rules=[rules])
        self.addCleanup(threads.deferToThread, self.server.stop)
        yield threads.deferToThread(self.server.start)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)

    @defer.inlineCallbacks
    def api(self, path, **params):
        response = yield treq.get(self.server.url + "/api/v1/" + path, params=params, pool=self.pool, timeout=10)
        body = yield response.json()
        self.assertEqual(body["status"], "success", body)
        return body["data"]

    def query(self, expression):
        return self.api("query", query=expression).addCallback(lambda data: data["result"])

    @defer.inlineCallbacks
    def until(self, expression, check, timeout=60.0):
        """The result of ``expression`` once ``check(result)`` holds (Prometheus scrapes and
        evaluates every second here)."""
        deadline = reactor.seconds() + timeout
        while True:
            result = yield self.query(expression)
            if check(result):
                return result
            if reactor.seconds() > deadline:
                self.fail("%s: %s after %gs" % (expression, result, timeout))
            yield task.deferLater(reactor, 0.5, lambda: None)

    @staticmethod
    def by(result, label):
        return {series["metric"].get(label, ""): float(series["value"][1]) for series in result}

    @defer.inlineCallbacks
    def test_scrape_and_redundancy_alert(self):
        daemons = set(self.cluster.daemons)
        yield self.until('up{job="csm"}', lambda r: self.by(r, "csm_node") == dict.fromkeys(daemons, 1.0))
        info = yield self.query("csm_daemon_info")
        self.assertEqual({s["metric"]["node"]: s["metric"]["role"] for s in info},
                         {name: daemon.role for name, daemon in self.cluster.daemons.items()})
        uptime = self.by((yield self.query("csm_daemon_uptime_seconds")), "csm_node")
        self.assertEqual(set(uptime), daemons)
        self.assertTrue(all(0 < value < 600 for value in uptime.values()), uptime)
        self.assertEqual(self.by((yield self.query("csm_database_up")), "csm_node"), {"master": 1.0})
        self.assertEqual(self.by((yield self.query("csm_reachable_computes")), "csm_node"), {"master": 2.0})
        self.assertEqual(self.by((yield self.query("csm_compute_aggregator_links")), "compute"),
                         {"c01": 2.0, "c02": 2.0})
        self.assertEqual(self.by((yield self.query("sum by (link) (csm_aggregator_computes)")), "link"),
                         {"PRIMARY": 2.0, "SECONDARY": 2.0})
        links = yield self.query('csm_link_up{link="master"}')
        self.assertEqual(self.by(links, "csm_node"), {"agg01": 1.0, "agg02": 1.0, "util01": 1.0})
        env = yield self.until('csm_env_csm_test_env_seq{Hostname="c01"}', lambda r: r)
        self.assertGreater(float(env[0]["value"][1]), 0)
        yield self.until('csm_nodes{state="DISCOVERED"}', lambda r: r and float(r[0]["value"][1]) >= 4)

        rc, out = yield threads.deferToThread(self.cluster.cli, "c01", "csm_allocation_create", "-j", "5", "-n",
                                              "c01", "-s", "staging-in", "-t", "diagnostics")
        self.assertEqual(rc, 0, out)
        yield self.until('csm_allocations{state="staging-in"}', lambda r: self.by(r, "csm_node") == {"master": 1.0})
        requests = yield self.until('sum by (csm_node) (csm_api_requests_total{api="csm_allocation_create"})',
                                    lambda r: self.by(r, "csm_node").get("master", 0) >= 1)
        self.assertEqual(self.by(requests, "csm_node")["c01"], 1.0)  # c01 forwarded it
        yield self.until("csm:daemons_up:count", lambda r: self.by(r, "csm_role") == {
            "master": 1.0, "aggregator": 2.0, "utility": 1.0, "compute": 2.0})

        # every dashboard panel's query runs and reads series Prometheus has (or rules make)
        names = set((yield self.api("label/__name__/values")))
        for title, expression in dashboard_expressions():
            yield self.query(expression.replace("$__rate_interval", "1m"))
            missing = series_names(expression) - names - recorded_names() - {
                name for name, _help in metrics.DCGM_NAMES.values()}  # no GPU here
            self.assertEqual(missing, set(), title)
        # a healthy tree raises no alert (but a link lost while starting is a FATAL RAS event)
        quiet = yield self.query('ALERTS{alertname!="CSMFatalRASEvent"}')
        self.assertEqual(quiet, [])

        yield threads.deferToThread(self.cluster.daemons["agg01"].kill)
        firing = yield self.until('ALERTS{alertname="CSMComputeWithoutRedundancy", alertstate="firing"}',
                                  lambda r: set(self.by(r, "compute")) == {"c01", "c02"})
        self.assertEqual({s["metric"]["severity"] for s in firing}, {"warning"})
        down = yield self.until('ALERTS{alertname="CSMDaemonDown", alertstate="firing"}', lambda r: r)
        self.assertEqual(self.by(down, "csm_node"), {"agg01": 1.0})
        count = yield self.query("csm:computes_without_redundancy:count")
        self.assertEqual(float(count[0]["value"][1]), 2.0)
        # the master stored csm.status.down (FATAL) for the aggregator's lost link
        yield self.until('ALERTS{alertname="CSMFatalRASEvent", alertstate="firing"}', lambda r: r)
