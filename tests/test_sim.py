"""csm-sim: simulated computes on real links register like real ones."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import LocalCluster


class SimTests(SynchronousTestCase):
    def test_simulated_computes_register(self):
        run_dir = tempfile.mkdtemp(prefix="csm-sim-")
        cluster = LocalCluster(run_dir, computes=0, aggregators=2, utilities=0, tls=True)
        self.addCleanup(cluster.stop)
        cluster.start()
        aggs = [cluster.daemons[n].config["csm"]["net"]["compute_listen"] for n in ("agg01", "agg02")]
        config = os.path.join(run_dir, "sim.cfg")
        with open(config, "w") as f:
            json.dump({"csm": {"role": "Compute", "api_permission_file": os.path.join(run_dir, "csm_api.acl"),
                               "api_configuration_file": os.path.join(run_dir, "csm_api.cfg"),
                               "log": {"consoleLog": False, "fileLog": os.path.join(run_dir, "sim.log")},
                               "net": {"aggregatorA": aggs[0], "aggregatorB": aggs[1],
                                       "ssl": cluster.ssl}}}, f)
        sim = subprocess.Popen([sys.executable, "-m", "csm.sim", "--config", config, "--nodes", "6", "--aggregators",
                                ",".join("%s:%d" % (a["host"], a["port"]) for a in aggs)], env=cluster.env(),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: sim.poll() is None and (sim.send_signal(signal.SIGTERM), sim.wait(30)))

        def nodes():
            connection = psycopg2.connect(cluster.postgres.dsn_for("csmdb"))
            try:
                with connection.cursor() as cur:
                    cur.execute("SELECT node_name, primary_agg, discovered_gpus FROM csm_node "
                                "WHERE type = 'compute' ORDER BY 1")
                    return cur.fetchall()
            finally:
                connection.close()
        rows = cluster.wait_for(lambda: (lambda r: r if len(r) == 6 and all(x[1] for x in r) else None)(nodes()),
                                timeout=60, what="six simulated nodes with their primary")
        self.assertEqual([r[0] for r in rows], ["sim%05d" % i for i in range(6)])
        self.assertEqual({r[1] for r in rows}, {"agg01", "agg02"})
        self.assertEqual({r[2] for r in rows}, {6})
