"""csm-sim: simulated computes on real links register like real ones."""

import json
import os
import signal
import subprocess
import sys
import tempfile

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm import cluster as cluster_module
from csm.cluster import PROJECT, LocalCluster


class SimTests(SynchronousTestCase):
    def test_simulated_computes_register(self):
        """Also split over two csm-sim processes, as more nodes than one process may open
        sockets for are (El Capitan's 11,136 here)."""
        self.patch(cluster_module, "SIM_NODES_PER_PROCESS", 4)
        run_dir = tempfile.mkdtemp(prefix="csm-sim-")
        cluster = LocalCluster(run_dir, computes=0, aggregators=2, utilities=0, tls=True)
        self.addCleanup(cluster.stop)
        cluster.start()
        sim = cluster.start_sim(6)
        self.addCleanup(lambda: sim.poll() is None and (sim.send_signal(signal.SIGTERM), sim.wait(30)))
        self.assertEqual(len(sim.processes), 2)

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

    def test_bad_config_is_one_line_naming_the_key(self):
        path = os.path.join(tempfile.mkdtemp(), "sim.cfg")
        with open(path, "w") as f:
            json.dump({"csm": {"role": "Compute", "net": {"heartbeat_interval": "often",
                                                          "aggregatorA": {"host": "127.0.0.1", "port": 1}}}}, f)
        proc = subprocess.run([sys.executable, "-m", "csm.sim", "--config", path, "--nodes", "2",
                               "--aggregators", "127.0.0.1:1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, timeout=60, env=dict(os.environ, PYTHONPATH=PROJECT))
        self.assertEqual(proc.returncode, 1)
        lines = proc.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("csm-sim: %s: csm.net.heartbeat_interval: expected an integer" % path),
                        lines[0])
