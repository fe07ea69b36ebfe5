"""``csm-demo``: the whole tree shown working, with simulated computes beyond 16."""

import json
import os
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm import demo, prometheus
from csm.cluster import PROJECT


class PlanTests(SynchronousTestCase):
    def test_daemons_then_simulated_nodes(self):
        self.assertEqual(demo.plan(4), (4, 0, 2))
        self.assertEqual(demo.plan(16), (16, 0, 2))
        self.assertEqual(demo.plan(17), (2, 15, 2))
        self.assertEqual(demo.plan(4608), (2, 4606, 16))  # Summit: 16 aggregators of 288 nodes

    def test_long_output_is_shortened(self):
        text = "".join("line %d\n" % i for i in range(30))
        short = demo.shorten(text, shown=5)
        self.assertEqual(short.splitlines(), ["line 0", "line 1", "line 2", "line 3", "line 4", "... (25 more lines)"])
        self.assertEqual(demo.shorten("a\nb\n", shown=5), "a\nb\n")


class DemoTests(SynchronousTestCase):
    def test_twenty_nodes_with_csm_sim(self):
        parent = tempfile.mkdtemp(prefix="csm-demo-")
        os.chmod(parent, 0o755)  # the postgres user reaches into it
        run_dir = os.path.join(parent, "run")
        env = dict(os.environ, PYTHONPATH=PROJECT)
        proc = subprocess.run([sys.executable, "-m", "csm.demo", "--nodes", "20", "--once", "--run-dir", run_dir],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              stdin=subprocess.DEVNULL, timeout=300)
        out = proc.stdout
        self.assertEqual(proc.returncode, 0, out)
        self.assertIn("2 aggregators, 1 utility and 20 computes (18 of them simulated by csm-sim)", out)
        self.assertIn("Health check summary through c01's command line", out)
        # the summary: each aggregator serves ten computes as primary and ten as secondary
        self.assertEqual(out.count("Active_primary: 10"), 2, out)
        self.assertEqual(out.count("Active_secondary: 10"), 2, out)
        self.assertNotIn("COMPUTE: sim00000", out)  # no per-node lines in a summary
        self.assertIn("\n# sim00017 | ", out)  # the inventory of 20 nodes: CAST's table, a line a node
        self.assertIn("$ csm_ras_event_query -m admin.common.info -l c01   (exit 0)", out)
        self.assertIn("csm-sim=0", out)
        self.assertIn("master=0", out)
        # the demo's database is durable: the server ran without the test suite's fast options
        with open(os.path.join(run_dir, "postgres", "data", "postmaster.opts")) as f:
            self.assertNotIn("fsync=off", f.read())
        # every daemon in the Prometheus service discovery file (csm-sim's nodes export nothing);
        # a real Prometheus ran beside the tree where installed, and stopped with it
        with open(os.path.join(run_dir, "prometheus", "csm_targets.json")) as f:
            targets = {entry["labels"]["csm_node"]: entry["labels"]["csm_role"] for entry in json.load(f)}
        self.assertEqual(targets, {"master": "master", "agg01": "aggregator", "agg02": "aggregator",
                                   "util01": "utility", "c01": "compute", "c02": "compute"})
        if prometheus.binary() is not None:
            self.assertIn("Prometheus: http://127.0.0.1:", out)
            with open(os.path.join(run_dir, "prometheus", "prometheus.log")) as f:
                self.assertIn("See you next time!", f.read())  # its last line at a clean stop
