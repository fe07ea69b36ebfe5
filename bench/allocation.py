"""Allocation benchmark: create and delete one allocation over N simulated nodes.

    .venv/bin/python bench/allocation.py [--nodes 64,1024,4608] [--runs 5] [--record]

For each N: a master with its private PostgreSQL, one aggregator per 288 nodes
(at least 2; 16 at 4,608) and a utility as real twistd processes, and N
simulated computes (csm-sim: real links, a no-op prolog and epilog, made-up
counters). Every node is set IN_SERVICE; then ``--runs`` times an allocation
over all N nodes is created (state running: the prolog multicast, the baseline
counters) and deleted (the epilog multicast, deltas, history) through the
utility's socket. Prints p50 and max of each. Target: under 3 s each at 4,608.
"""

import argparse
import math
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import psycopg2  # noqa: E402

from bench.results import QUIET, percentile, record, stop_on_signals  # noqa: E402
from csm.client import Client  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402

NODES_PER_AGGREGATOR = 288


def _sql(cluster, statement, args=(), attempts=5):
    for attempt in range(attempts):
        try:
            return cluster.sql(statement, args)
        except psycopg2.errors.DeadlockDetected:
            if attempt == attempts - 1:
                raise  # the master is still writing the nodes' aggregators: try again


def _primaries(cluster):
    total = 0
    for aggregator in cluster.by_role("aggregator"):
        status = cluster.status(aggregator.name)
        total += sum(1 for link in status["links"] if link["name"].endswith("(PRIMARY)") and link["state"] == "HAPPY")
    return total


def run(nodes, runs):
    aggregators = max(2, math.ceil(nodes / NODES_PER_AGGREGATOR))
    cluster = LocalCluster(tempfile.mkdtemp(prefix="csm-bench-alloc-"), computes=0, aggregators=aggregators,
                           utilities=1, tls=False, extra={"master": QUIET, "aggregator": QUIET, "utility": QUIET})
    sim = None
    creates, deletes = [], []
    try:
        cluster.start()
        sim = cluster.start_sim(nodes, settings=QUIET)
        cluster.wait_for(lambda: _sql(cluster, "SELECT count(*) FROM csm_node WHERE type = 'compute'")[0][0] == nodes,
                         timeout=600, interval=1.0, what="every simulated node's inventory")
        cluster.wait_for(lambda: _primaries(cluster) == nodes, timeout=120, interval=1.0,
                         what="every simulated node connected")
        _sql(cluster, "UPDATE csm_node SET state = 'IN_SERVICE' WHERE node_name IN (SELECT node_name FROM csm_node "
                      "WHERE type = 'compute' ORDER BY node_name FOR UPDATE)")
        names = [row[0] for row in _sql(cluster, "SELECT node_name FROM csm_node WHERE type = 'compute'")]
        with Client(cluster.daemons["util01"].socket) as client:
            for number in range(runs):
                started = time.perf_counter()
                created = client.call("allocation_create", {"primary_job_id": 1000 + number, "compute_nodes": names,
                                                            "user_name": "root"})
                creates.append(time.perf_counter() - started)
                started = time.perf_counter()
                client.call("allocation_delete", {"allocation_id": created["allocation_id"]})
                deletes.append(time.perf_counter() - started)
        kept = _sql(cluster, "SELECT count(*), min(cpu_usage) FROM csm_allocation_node_history")[0]
        assert kept[0] == nodes * runs and kept[1] >= 0, kept  # every node's deltas reached history
    finally:
        if sim is not None:
            sim.send_signal(signal.SIGTERM)
            sim.wait(60)
        cluster.stop()
    return aggregators, creates, deletes


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="64,1024,4608", help="node counts, comma-separated")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    lines = []
    for nodes in [int(n) for n in args.nodes.split(",")]:
        aggregators, creates, deletes = run(nodes, args.runs)
        line = ("%d nodes (%d aggregators), %d runs: create p50 %.2f s, max %.2f s; delete p50 %.2f s, max %.2f s"
                % (nodes, aggregators, args.runs, percentile(creates, 50), max(creates), percentile(deletes, 50),
                   max(deletes)))
        print(line, flush=True)
        lines.append(line)
    if args.record:
        lines.append("target: 4,608 nodes created and deleted in under 3 s each")
        record("allocation", "python bench/allocation.py --nodes %s --runs %d --record" % (args.nodes, args.runs),
               lines)


if __name__ == "__main__":
    main()
