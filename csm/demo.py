"""``csm-demo``: a whole CSM tree on this machine, shown working.

Starts a private PostgreSQL with the CSM database, then master, two
aggregators, a utility and N computes as real twistd processes with TLS
(certificates made into the run directory), runs the health check through a
compute's command line, shows the nodes' inventory in the database, a state
change and a RAS event, and keeps the tree running until Ctrl-C (or exits at
once with ``--once``). Every daemon serves ``/metrics``; the demo writes a
Prometheus service discovery file naming them and, where Debian's
``prometheus`` is installed, runs one on loopback that scrapes them.
"""

import argparse
import math
import os
import shutil
import signal
import sys
import time

from csm import prometheus
from csm.cluster import LocalCluster

#: Up to this many computes the demo starts one twistd each; beyond, two daemons and csm-sim.
DAEMON_COMPUTES = 16
#: Computes per aggregator in a large demo (Summit: 4,608 nodes, 16 aggregators).
NODES_PER_AGGREGATOR = 288
#: How long the demo waits for every compute's secondary link once all have a primary.
REDUNDANCY_WAIT = 60.0
#: Lines of a command's output shown before the rest is counted.
SHOWN_LINES = 24


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="csm-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4,
                        help="computes (default 4); beyond %d, two are daemons and the rest csm-sim nodes"
                        % DAEMON_COMPUTES)
    parser.add_argument("--run-dir", default=os.path.abspath("run"),
                        help="where configs, certificates, sockets and logs go (default ./run)")
    parser.add_argument("--once", action="store_true", help="print the health check and stop")
    parser.add_argument("--no-tls", action="store_true", help="plain TCP links")
    parser.add_argument("--hosts", action="store_true",
                        help="each daemon (each group of simulated computes) on a host of its own: a network "
                        "namespace with its name and address on a private bridge (root; else loopback)")
    parser.add_argument("--ha", action="store_true",
                        help="high availability: three etcd members, two PostgreSQL nodes under Patroni and two "
                        "masters elected through the database (Debian's patroni and etcd-server)")
    parser.add_argument("--no-prometheus", action="store_true",
                        help="do not start Prometheus (it runs where the prometheus program is installed)")
    return parser.parse_args(argv)


def plan(nodes):
    """(compute daemons, simulated computes, aggregators) for ``nodes`` computes."""
    if nodes <= DAEMON_COMPUTES:
        return nodes, 0, 2
    return 2, nodes - 2, max(2, math.ceil(nodes / NODES_PER_AGGREGATOR))


def wait_healthy(cluster, entry, timeout=60.0, verbose=True):
    """Wait until the whole tree answers, then run the health check through the CLI."""
    cluster.wait_complete(entry, timeout)
    try:  # the second link of each compute follows within a retry or two
        cluster.wait_complete(entry, REDUNDANCY_WAIT, redundant=True)
    except RuntimeError:
        print("csm-demo: not every compute has its secondary link yet", flush=True)
    rc, out = cluster.cli(entry, "csm_infrastructure_health_check", *(["-v"] if verbose else []), timeout=timeout)
    if rc != 0:
        raise RuntimeError("health check failed (exit %d):\n%s" % (rc, out))
    return out


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.path.exists(args.run_dir):
        shutil.rmtree(args.run_dir)
    daemons, simulated, aggregators = plan(args.nodes)
    print("csm-demo: starting master, %d aggregators, 1 utility and %d computes%s in %s"
          % (aggregators, args.nodes, " (%d of them simulated by csm-sim)" % simulated if simulated else "",
             args.run_dir), flush=True)
    if args.ha and args.hosts:
        print("csm-demo: --ha runs on loopback only; leave out --hosts", file=sys.stderr)
        return 2
    patroni = start_patroni(args.run_dir) if args.ha else None
    if args.ha and patroni is None:
        return 1
    network = start_hosts() if args.hosts else None
    cluster = LocalCluster(args.run_dir, computes=daemons, aggregators=aggregators, utilities=1,
                           tls=not args.no_tls, simulated=simulated, metrics=True, hosts=network,
                           masters=2 if patroni else 1, patroni=patroni)
    if cluster.postgres is not None and cluster.postgres.moved_from:
        print("csm-demo: the postgres user cannot enter %s, so the database is in %s"
              % (cluster.postgres.moved_from, cluster.postgres.directory), flush=True)
    started = time.monotonic()
    server = None
    try:
        cluster.start()
        targets = prometheus.targets_beside(cluster)
        if network is not None:
            print_hosts(network)
            if not args.no_prometheus and prometheus.binary() is not None:
                print("csm-demo: Prometheus is not started with --hosts (the daemons' /metrics are on the "
                      "private bridge)", flush=True)
        if not args.no_prometheus and network is None and prometheus.binary() is not None:
            try:
                server = prometheus.server_beside(cluster, targets)
            except RuntimeError as exc:  # the tree is worth showing without it
                print("csm-demo: Prometheus did not start: %s" % exc, flush=True)
        entry = cluster.by_role("compute")[0]
        report = wait_healthy(cluster, entry.name, timeout=60.0 + args.nodes / 20.0, verbose=not simulated)
        print("csm-demo: tree up in %.1fs. Health check%s through %s's command line:\n"
              % (time.monotonic() - started, " summary" if simulated else "", entry.name), flush=True)
        print(report, flush=True)
        show_database(cluster, entry.name, args.nodes)
        print_usage(cluster, entry)
        print_prometheus(targets, server)
        if not args.once:
            wait_for_interrupt()
    except Exception as exc:  # show where the logs are, then stop everything
        print("csm-demo: %s\ncsm-demo: logs are in %s" % (exc, args.run_dir), file=sys.stderr)
        return 1
    finally:
        if server is not None:
            server.stop()
        status = cluster.stop()
        if network is not None:
            network.stop()
        if patroni is not None:
            patroni.stop()
        print("csm-demo: stopped (%s)" % ", ".join("%s=%s" % item for item in sorted(status.items())))
    return 0


def start_patroni(run_dir):
    """Three etcd members and two PostgreSQL nodes under Patroni in ``run_dir``/patroni, or None
    (and one line why)."""
    from csm.db.patroni import PatroniCluster, PatroniNotFound
    try:
        patroni = PatroniCluster(os.path.join(run_dir, "patroni"), nodes=2, etcd_members=3)
    except PatroniNotFound as exc:
        print("csm-demo: %s (make demo HA=1 installs it)" % exc, file=sys.stderr)
        return None
    started = time.monotonic()
    try:
        patroni.start()
    except RuntimeError as exc:
        patroni.stop()
        print("csm-demo: Patroni did not start: %s" % exc, file=sys.stderr)
        return None
    print("csm-demo: etcd (%d members) and Patroni up in %.1fs: primary %s, csm.db.host %s (in %s)"
          % (len(patroni.etcd), time.monotonic() - started, patroni.primary(), patroni.hosts(), patroni.directory),
          flush=True)
    return patroni


def start_hosts():
    """A private network for ``--hosts``, or None (and one line why) where it cannot be made."""
    from csm import hosts
    reason = hosts.unavailable()
    if reason:
        print("csm-demo: %s; running every daemon on loopback instead" % reason, flush=True)
        return None
    return hosts.Network().start()


def print_hosts(network):
    print("csm-demo: every daemon on its own host (network namespace %s<name>, bridge in %s):\n    %s"
          % (network.prefix, network.bridge_namespace,
             "\n    ".join("%-8s %s" % (host.name, host.address) for host in network.hosts.values())), flush=True)


def show_database(cluster, entry, computes):
    """The master's database at work: every node's inventory, a state change, a RAS event."""
    cluster.wait_for(lambda: cluster.cli(entry, "csm_cluster_query_state", "-t", "compute", "-Y")[1]
                     .count("node_name:") >= computes, timeout=60 + computes / 20.0, interval=1.0,
                     what="every compute's inventory")
    steps = [
        ("csm_cluster_query_state", "-t", "compute"),
        ("csm_node_attributes_update", "-n", entry, "-s", "IN_SERVICE"),
        ("csm_ras_event_create", "-m", "admin.common.info", "-l", entry, "-k", "comment=hello from csm-demo"),
        ("csm_ras_event_query", "-m", "admin.common.info", "-l", entry),
        ("csm_node_query_state_history", "-n", entry),
    ]
    for step in steps:
        rc, out = cluster.cli(entry, *step)
        print("$ %s   (exit %d)\n%s" % (" ".join(step), rc, shorten(out)), flush=True)


def shorten(text, shown=SHOWN_LINES):
    """The first ``shown`` lines of ``text``, and how many more there were."""
    lines = text.splitlines()
    if len(lines) <= shown:
        return text
    return "\n".join(lines[:shown] + ["... (%d more lines)" % (len(lines) - shown), ""])


def print_usage(cluster, entry):
    bindir = os.path.dirname(sys.executable)
    print("To use the csm_* commands against this tree (as root or any user):")
    print("    export PATH=%s:$PATH" % bindir)
    print("    export CSM_SOCKET=%s     # %s; each daemon has <name>.sock there"
          % (entry.socket, entry.name))
    print("    csm_infrastructure_health_check -v")
    print("    csm_ctrl_cmd --status")
    print("Admin shell of a daemon (root): socat -,raw,echo=0 UNIX-CONNECT:%s/master.manhole" % cluster.run_dir)
    print("Logs: %s/<daemon>.log" % cluster.run_dir, flush=True)


def print_prometheus(targets, server):
    print("Prometheus service discovery file (file_sd_configs): %s" % targets)
    if server is not None:
        print("Prometheus: %s (data, config and log in %s; rules from %s)"
              % (server.url, server.directory, prometheus.RULES))
    elif prometheus.binary() is None:
        print("Prometheus is not installed: make demo PROMETHEUS=1 installs and starts it")
    print("Grafana dashboard to import: %s" % prometheus.DASHBOARD, flush=True)


def wait_for_interrupt():
    print("\nRunning. Press Ctrl-C to stop.", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        print()


if __name__ == "__main__":
    sys.exit(main())
