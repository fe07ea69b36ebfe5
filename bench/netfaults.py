"""CSM on a slow or unreliable network: 200 ms latency, and 5% of connections reset.

    .venv/bin/python bench/netfaults.py [--hosts] [--nodes 64] [--latency 0.2] [--reset 0.05]
                                        [--within 20] [--seconds 60] [--record]

A tree of master, two aggregators, a utility, two compute daemons and
``--nodes`` computes in csm-sim; every listener (the master's two ports, each
aggregator's compute port) behind a proxy on its own host (csm.netproxy; this
kernel has no netem). With ``--hosts`` each daemon is on a host of its own
(network namespaces), else all on loopback.

1. latency: every chunk held ``--latency`` s each way at each proxy, so a compute's
   request crosses two proxied hops (compute -> aggregator -> master) and its
   round trip gains 4 x latency. Measured: cold start (every node with both
   links), node query, RAS event and health check round trips from a compute,
   the node query from the utility (one hop).
2. resets: a new tree, no latency, each connection through a proxy reset with
   probability ``--reset`` within ``--within`` s of opening. For ``--seconds``,
   c01 raises one RAS event and queries one node a second. Counted: the calls
   that failed, connections relayed and reset, links lost (RAS); then the time
   until every node again has both links, and whether every acknowledged event
   is in the database.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import QUIET, percentile, record, stop_on_signals  # noqa: E402
from csm import hosts, netproxy  # noqa: E402
from csm.client import Client  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.errors import CSMError  # noqa: E402

HEARTBEAT = 15
ROUND_TRIPS = 20


def tree(on_hosts, nodes, latency=0.0, reset=0.0, within=20.0):
    """A started tree behind proxies, every node with both links: (cluster, proxies, seconds to get there)."""
    network = hosts.Network().start() if on_hosts else None
    run_dir = tempfile.mkdtemp(prefix="csm-bench-netfaults-")
    os.chmod(run_dir, 0o755)
    cluster = LocalCluster(run_dir, computes=2, aggregators=2, utilities=1, heartbeat_interval=HEARTBEAT,
                           simulated=nodes, fast_db=True, hosts=network,
                           extra={role: QUIET for role in ("master", "aggregator", "utility")})
    proxies = netproxy.front(cluster, latency=latency, reset=reset, within=within)
    started = time.monotonic()
    try:
        cluster.start(timeout=120)
        cluster.wait_complete("c01", timeout=300, redundant=True)
    except Exception:
        stop(cluster, proxies)
        raise
    return cluster, proxies, time.monotonic() - started


def stop(cluster, proxies):
    cluster.stop()
    proxies.stop()
    if cluster.hosts is not None:
        cluster.hosts.stop()


def timed(call, times):
    """Milliseconds each of ``times`` calls took."""
    took = []
    for _ in range(times):
        began = time.monotonic()
        call()
        took.append(1000 * (time.monotonic() - began))
    return took


def summary(millis):
    return "p50 %.0f ms, max %.0f ms" % (percentile(millis, 50), max(millis))


def latency_run(on_hosts, nodes, latency, where):
    cluster, proxies, took = tree(on_hosts, nodes, latency=latency)
    try:
        lines = ["%.0f ms each way at each proxy, %s, %d computes (2 daemons, %d in csm-sim): every node with both "
                 "links %.1f s after the start" % (1000 * latency, where, nodes + 2, nodes, took)]
        with Client(cluster.daemons["c01"].socket) as c01, Client(cluster.daemons["util01"].socket) as util:
            query = timed(lambda: c01.call("node_attributes_query", {"node_names": ["c02"]}), ROUND_TRIPS)
            event = timed(lambda: c01.call("ras_event_create", {"msg_id": "admin.common.info",
                                                                "location_name": "c01"}), ROUND_TRIPS)
            health = timed(lambda: c01.call("infrastructure_health_check", {"verbose_health": True}), 3)
            direct = timed(lambda: util.call("node_attributes_query", {"node_names": ["c02"]}), ROUND_TRIPS)
        lines.append("from c01 (two proxied hops): node query %s; RAS event %s; health check of the whole tree %s; "
                     "from the utility (one hop): node query %s"
                     % (summary(query), summary(event), summary(health), summary(direct)))
    finally:
        stop(cluster, proxies)
    return lines


def lost_redundancy(cluster):
    """csm.status.lost_redundancy events stored: a compute lost one of its two links."""
    return cluster.sql("SELECT count(*) FROM csm_ras_event_action WHERE msg_id = 'csm.status.lost_redundancy'")[0][0]


def reset_run(on_hosts, nodes, reset, within, seconds, where):
    cluster, proxies, took = tree(on_hosts, nodes, reset=reset, within=within)
    acknowledged, failed, queries = [], 0, 0
    try:
        began = time.monotonic()
        index = 0
        while time.monotonic() - began < seconds:
            index += 1
            tag = "bench%d" % index
            try:
                with Client(cluster.daemons["c01"].socket) as c01:
                    c01.call("ras_event_create", {"msg_id": "admin.common.info", "location_name": "c01",
                                                  "kvcsv": "comment=%s" % tag})
                    acknowledged.append(tag)
                    c01.call("node_attributes_query", {"node_names": ["sim%05d" % (index % nodes)]})
                    queries += 1
            except (CSMError, OSError):
                failed += 1
            time.sleep(max(0.0, began + index - time.monotonic()))
        ended = time.monotonic()
        cluster.wait_complete("c01", timeout=300, redundant=True)
        healed = time.monotonic() - ended
        stored = {row[0] for row in cluster.sql("SELECT kvcsv FROM csm_ras_event_action WHERE msg_id = "
                                                "'admin.common.info' AND location_name = 'c01'")}
        lost = [tag for tag in acknowledged if "comment=%s" % tag not in stored]
        changes = lost_redundancy(cluster)
    finally:
        stop(cluster, proxies)
    relayed = reset_count = 0
    for name in cluster.daemons:
        path = os.path.join(cluster.run_dir, name + ".proxy.out")
        if os.path.exists(path):
            with open(path) as f:
                for line in f:
                    if "connections relayed" in line:
                        words = line.split()
                        relayed += int(words[1])
                        reset_count += int(words[4])
    return ["%.0f%% of connections reset within %.0f s of opening, %s, %d computes (tree up in %.1f s): over %d s, "
            "c01 raised %d RAS events and queried %d nodes, %d calls failed; the proxies relayed %d connections and "
            "reset %d; the master stored %d csm.status.lost_redundancy events; every node had both links again %.1f s "
            "later; acknowledged events missing from the database: %d"
            % (100 * reset, within, where, nodes + 2, took, seconds, len(acknowledged), queries, failed, relayed,
               reset_count, changes, healed, len(lost))]


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", action="store_true", help="each daemon on a host of its own (root)")
    parser.add_argument("--nodes", type=int, default=64, help="computes in csm-sim")
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--reset", type=float, default=0.05)
    parser.add_argument("--within", type=float, default=20.0)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    on_hosts, where = False, "loopback"
    if args.hosts:
        reason = hosts.unavailable()
        if reason:
            print("netfaults: %s; on loopback instead" % reason, flush=True)
        else:
            on_hosts, where = True, "each daemon and each csm-sim on a host of its own"
    lines = []
    for run in (lambda: latency_run(on_hosts, args.nodes, args.latency, where),
                lambda: reset_run(on_hosts, args.nodes, args.reset, args.within, args.seconds, where)):
        for line in run():
            lines.append(line)
            print(line, flush=True)
    if args.record:
        record("netfaults", " ".join(["python", "bench/netfaults.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
