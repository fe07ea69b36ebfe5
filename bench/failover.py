"""Failover benchmark: simulated computes lose their primary aggregator.

    .venv/bin/python bench/failover.py [--nodes 1000] [--heartbeat 3] [--record]

A master, two aggregators (real twistd processes) and ``--nodes`` simulated
computes (csm-sim, one process), each aggregator the primary of half of them.
Then aggregator agg01 is killed (SIGKILL: the connections close) and, in a
second run, stopped (SIGSTOP: silent, found by the heartbeat). For every compute
that had agg01 as primary: the time from the kill until it made agg02 its
primary (p50, p99, max).
"""

import argparse
import json
import os
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import QUIET, percentile, record, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402


def primaries(cluster, aggregator):
    status = cluster.status(aggregator)
    return sum(1 for link in status["links"] if link["name"].endswith("(PRIMARY)") and link["state"] == "HAPPY")


def run(nodes, heartbeat, how):
    run_dir = tempfile.mkdtemp(prefix="csm-bench-failover-")
    cluster = LocalCluster(run_dir, computes=0, aggregators=2, utilities=0, tls=False, db=False,
                           heartbeat_interval=heartbeat,
                           extra={"master": QUIET, "aggregator": QUIET})
    record_file = os.path.join(run_dir, "primaries.json")
    sim = None
    try:
        cluster.start()
        sim = cluster.start_sim(nodes, record=record_file, settings=QUIET)
        cluster.wait_for(lambda: primaries(cluster, "agg01") + primaries(cluster, "agg02") == nodes,
                         timeout=300, interval=0.5, what="every simulated compute connected")
        affected = primaries(cluster, "agg01")
        killed = time.time()
        if how == "closed":
            cluster.daemons["agg01"].kill()
        else:
            cluster.daemons["agg01"].signal(signal.SIGSTOP)
        cluster.wait_for(lambda: primaries(cluster, "agg02") == nodes, timeout=60 + 5 * heartbeat, interval=0.05,
                         what="every compute on agg02")
        total = time.time() - killed
    finally:
        if sim is not None:
            sim.send_signal(signal.SIGTERM)
            sim.wait(60)
        if cluster.daemons["agg01"].running:
            cluster.daemons["agg01"].signal(signal.SIGCONT)
        cluster.stop()
    with open(record_file) as f:
        changes = json.load(f)
    delays = [t - killed for history in changes.values() for t, agg in history if t > killed and agg == "agg02"]
    return affected, delays, total


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--heartbeat", type=int, default=3, help="heartbeat interval (s) for the silent case")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    lines = []
    for how in ("closed", "silent"):
        affected, delays, total = run(args.nodes, args.heartbeat, how)
        lines.append("%s primary (%s): %d of %d computes failed over; p50 %.3f s, p99 %.3f s, max %.3f s "
                     "(all served through agg02 after %.2f s)"
                     % ("killed" if how == "closed" else "silent (SIGSTOP)",
                        "connections closed" if how == "closed" else "heartbeat %d s" % args.heartbeat,
                        len(delays), args.nodes, percentile(delays, 50), percentile(delays, 99),
                        max(delays) if delays else float("nan"), total))
        print(lines[-1], flush=True)
    if args.record:
        record("failover", " ".join(["python", "bench/failover.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
