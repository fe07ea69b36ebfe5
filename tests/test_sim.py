"""csm-sim: simulated computes on real links register like real ones."""

import signal
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
        sim = cluster.start_sim(6)
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
