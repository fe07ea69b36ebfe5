"""Master and database fail-over benchmark: two masters elected through PostgreSQL under Patroni.

    .venv/bin/python bench/master_failover.py [--nodes 1000] [--heartbeat 3] [--record]

etcd (three members), two PostgreSQL nodes under Patroni, two masters, two
aggregators, a utility (real processes) and ``--nodes`` simulated computes (csm-sim).

1. The active master is killed (SIGKILL). For every compute: the time from the kill
   until it is connected again through an aggregator that reaches the new master
   (p50, p99, max). Target: under 10 s.
2. csm-sim stopped and the writes queued meanwhile done, the database primary is killed
   (Patroni and PostgreSQL, SIGKILL) while RAS events are created through the utility
   one after another: the time from the kill to the first event sent after it that is
   written (not only queued) on the promoted replica. Target: under 15 s.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import QUIET, percentile, record, stop_on_signals  # noqa: E402
from csm.client import Client  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.db.patroni import TTL, PatroniCluster  # noqa: E402
from csm.errors import CSMError  # noqa: E402


def primaries(cluster, aggregator):
    status = cluster.status(aggregator)
    return sum(1 for link in status["links"] if link["name"].endswith("(PRIMARY)") and link["state"] == "HAPPY")


def connected(cluster):
    return sum(primaries(cluster, a.name) for a in cluster.by_role("aggregator"))


class Writer(threading.Thread):
    """RAS events through the utility, one after another: (time sent, written or not)."""

    def __init__(self, socket):
        super().__init__(daemon=True)
        self.socket = socket
        self.answers = []
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            try:
                with Client(self.socket, timeout=10) as client:
                    while not self.stopping.is_set():
                        sent = time.time()
                        reply = client.call("ras_event_create", {"msg_id": "admin.common.info",
                                                                 "location_name": "util01"})
                        self.answers.append((sent, "rec_id" in reply or bool(reply.get("stored"))))
                        time.sleep(0.01)
            except (CSMError, OSError):
                self.answers.append((time.time(), False))
                time.sleep(0.05)

    def stop(self):
        self.stopping.set()
        self.join(30)


def master_kill(cluster, nodes, record_file):
    active = cluster.wait_for(cluster.active_master, timeout=60, what="an active master")
    killed = time.time()
    cluster.daemons[active].kill()
    cluster.wait_for(lambda: cluster.active_master() not in (None, active), timeout=60, interval=0.1,
                     what="the standby to take over")
    took_over = time.time() - killed
    cluster.wait_for(lambda: connected(cluster) == nodes, timeout=120, interval=0.2, what="every compute back")
    back = time.time()
    total = back - killed
    LocalCluster.stop_sim(cluster.sim)
    cluster.sim = None
    with open(record_file) as f:
        changes = json.load(f)
    # each compute's last primary change before all were counted back: its link through an aggregator
    # that reaches the new master (earlier ones: a fail-over to an aggregator about to drop it; later
    # ones: csm-sim stopping)
    delays = []
    for history in changes.values():
        after = [t for t, aggregator in history if killed < t <= back and aggregator]
        if after:
            delays.append(max(after) - killed)
    return active, took_over, total, delays


def database_kill(cluster, patroni):
    writer = Writer(cluster.daemons["util01"].socket)
    writer.start()
    try:
        cluster.wait_for(lambda: any(written for _, written in writer.answers), timeout=30, what="writes")
        old = patroni.primary()
        patroni.kill(old)
        killed = time.time()  # its PostgreSQL is gone: a write sent from now on goes to the new primary
        cluster.wait_for(lambda: any(t > killed and written for t, written in writer.answers), timeout=120,
                         interval=0.05, what="the first write after the kill")
        first = min(t for t, written in writer.answers if t > killed and written) - killed
        promoted = cluster.wait_for(lambda: (lambda name: name if name not in (None, old) else None)(
            patroni.primary()), timeout=60, what="the new primary")
    finally:
        writer.stop()
    return old, promoted, first


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--heartbeat", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    run_dir = tempfile.mkdtemp(prefix="csm-bench-master-failover-")
    os.chmod(run_dir, 0o755)
    patroni = PatroniCluster(os.path.join(run_dir, "patroni"), nodes=2, etcd_members=3)
    cluster = None
    try:
        patroni.start()
        cluster = LocalCluster(run_dir, computes=0, aggregators=2, utilities=1, tls=False, masters=2,
                               patroni=patroni, heartbeat_interval=args.heartbeat,
                               extra={"master": QUIET, "aggregator": QUIET, "utility": QUIET})
        cluster.start()
        record_file = os.path.join(run_dir, "primaries.json")
        cluster.sim = cluster.start_sim(args.nodes, record=record_file, settings=QUIET)
        cluster.wait_for(lambda: connected(cluster) == args.nodes, timeout=300, interval=0.5,
                         what="every simulated compute connected")
        active, took_over, total, delays = master_kill(cluster, args.nodes, record_file)  # stops csm-sim
        # then the database, once the writes queued meanwhile are done (else the first write after
        # the kill waits behind the inventories the aggregators send again to the elected master)
        cluster.wait_for(lambda: (lambda m: m and not cluster.status(m)["db_queued_writes"])(cluster.active_master()),
                         timeout=600, interval=1.0, what="the writes queued meanwhile done")
        old, promoted, first = database_kill(cluster, patroni)
        lines = ["active master %s killed (SIGKILL), %d simulated computes, heartbeat %d s: the standby active "
                 "after %.2f s; computes back p50 %.2f s, p99 %.2f s, max %.2f s (%d of %d recorded; all back "
                 "after %.2f s by the aggregators' count); target 10 s"
                 % (active, args.nodes, args.heartbeat, took_over, percentile(delays, 50), percentile(delays, 99),
                    max(delays) if delays else float("nan"), len(delays), args.nodes, total)]
        print(lines[-1], flush=True)
        lines.append("database primary %s killed (Patroni and PostgreSQL, SIGKILL; Patroni ttl %d s; csm-sim "
                     "stopped): %s promoted, first RAS event written %.2f s after the kill; target 15 s"
                     % (old, TTL, promoted, first))
        print(lines[-1], flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
        patroni.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    if args.record:
        record("master_failover", " ".join(["python", "bench/master_failover.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
