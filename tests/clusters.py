"""Local clusters shared by the system tests of one test process.

trial has no class-level fixtures, so a cluster is started the first time a
test asks for it and stopped when the process exits.
"""

import atexit
import os
import tempfile

from csm.cluster import LocalCluster

_clusters = {}


def shared_cluster(name, **options):
    """The running cluster called ``name``, started (and waited for) on first use."""
    cluster = _clusters.get(name)
    if cluster is None:
        run_dir = tempfile.mkdtemp(prefix="csm-%s-" % name)
        os.chmod(run_dir, 0o755)
        options.setdefault("fast_db", True)  # throw-away data: speed over durability
        cluster = LocalCluster(run_dir, **options)
        try:
            cluster.start()
            cluster.wait_complete(cluster.by_role("compute")[0].name, timeout=90)
        except Exception:
            cluster.stop()
            raise
        _clusters[name] = cluster
        atexit.register(cluster.stop)
    return cluster


def sql(cluster, statement, args=()):
    """Rows of ``statement`` run on ``cluster``'s database (psycopg2, autocommitted)."""
    return cluster.sql(statement, args)
