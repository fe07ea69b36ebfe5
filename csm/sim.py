"""``csm-sim``: many virtual compute nodes in one process, on real links.

    csm-sim --config conf/csm_compute.cfg --nodes 1000 --aggregators 127.0.0.1:9800,127.0.0.1:9801

Each virtual node is a real ``ComputeDaemon`` (its own links to a primary and a
secondary aggregator, heartbeats, failover, inventory) with a distinct name, a
synthetic inventory and no local socket, so a large cluster fits on one small
machine. Nodes alternate which aggregator is their ``aggregatorA``. With
``--record FILE`` every primary change is written there as JSON at exit
(``{node: [[time, aggregator], ...]}``), for the failover benchmark.

One process does the handshakes of thousands of machines, so it paces them: at
most ``--connecting`` attempts per aggregator are in progress at a time (the
rest wait their turn, their deadlines not running). SIGTERM stops it within
``STOP_GRACE`` seconds whatever its load: links still closing then are left to
the exit.
"""

import argparse
import json
import os
import resource
import sys
import time

import attrs
from twisted.application import service
from twisted.internet import defer
from twisted.logger import globalLogBeginner

from csm import heap, logfile
from csm.config import ConfigError, Endpoint, LocalListen, load_daemon_config
from csm.net.pacing import MAX_CONNECTING, ConnectGate
from csm.net.tls import TLSContexts
from csm.node.allocation import AllocationAgent
from csm.roles.compute import ComputeDaemon

#: Seconds csm-sim waits for its links to close when told to stop.
STOP_GRACE = 5.0


def synthetic_inventory(node, index):
    return {
        "node": {"node_name": node, "machine_model": "sim-8335-GTW", "serial_number": "SIM%06d" % index,
                 "collection_time": time.strftime("%Y-%m-%d %H:%M:%S"), "type": "compute",
                 "kernel_release": "sim", "kernel_version": "sim", "installed_memory": 512 * 1024 * 1024,
                 "installed_swap": 0, "discovered_sockets": 2, "discovered_cores": 44, "discovered_gpus": 6,
                 "discovered_hcas": 2, "discovered_dimms": 16, "discovered_ssds": 1, "os_image_name": "sim"},
        "processor": [{"serial_number": "%s-p%d" % (node, i), "discovered_cores": 22} for i in range(2)],
        "gpu": [{"gpu_id": i, "serial_number": "%s-g%d" % (node, i), "device_name": "sim GPU",
                 "pci_bus_id": "0000:%02x:00.0" % i, "uuid": "GPU-%s-%d" % (node, i), "vbios": "sim",
                 "inforom_image_version": "sim", "hbm_memory": 16 * 1024 * 1024} for i in range(6)],
        "dimm": [{"serial_number": "%s-d%d" % (node, i), "size": 32768, "physical_location": "DIMM%d" % i}
                 for i in range(16)],
        "hca": [{"serial_number": "%s-h%d" % (node, i), "pci_bus_id": "0000:%02x:00.0" % (8 + i),
                 "guid": "0x%012x%04x" % (index, i)} for i in range(2)],
        "ssd": [{"serial_number": "%s-s0" % node, "size": 1600 * 10 ** 9, "wear_lifespan_used": 1.0}],
    }


class SimulatedAgent(AllocationAgent):
    """Prolog and epilog as configured (a no-op when the script is not there), no cgroups,
    made-up counters: nothing blocks, so nothing goes to a thread."""

    started = time.time()

    def off_reactor(self, function, *args):
        return defer.maybeDeferred(function, *args)

    def read_counters(self, allocation_id):
        busy = int((time.time() - self.started) * 1e9)
        counters = {"cpu_usage": busy, "memory_usage_max": 1 << 30, "energy": busy // 10 ** 7,
                    "gpu_usage": busy // 1000, "gpu_energy": busy // 10 ** 8, "ib_rx": -1, "ib_tx": -1,
                    "gpfs_read": -1, "gpfs_write": -1, "power_cap_hit": -1}
        return {"counters": counters, "cpus": {}, "gpus": []}


class SimulatedCompute(ComputeDaemon):
    """A compute daemon with a made-up inventory and no sensors."""

    index = 0
    primaries = None

    def __init__(self, config, reactor=None, gate=None, **kw):
        self.connect_gate = gate  # before the links are built
        super().__init__(config, reactor, **kw)

    def make_agent(self):
        config = self.config
        scripts = [path if path and os.access(path, os.X_OK) else "" for path in (config.prolog, config.epilog)]
        return SimulatedAgent(self.reactor, self.node_name, scripts[0], scripts[1], "")

    def inventory(self):
        return defer.succeed(synthetic_inventory(self.node_name, self.index))

    def env_items(self):
        return {}


class _Recorder:
    """Wraps a pair's ``_make_primary`` to note each primary change."""

    def __init__(self):
        self.changes = {}

    def watch(self, daemon):
        pair = daemon.aggregators
        original = pair._make_primary

        def make_primary(name):
            original(name)
            link = pair.links.get(name)
            self.changes.setdefault(daemon.node_name, []).append([time.time(), link.peer_node if link else name])
        pair._make_primary = make_primary


def build(config, nodes, prefix, aggregators, reactor, recorder=None, connecting=MAX_CONNECTING, first=0):
    """A MultiService of ``nodes`` simulated computes numbered from ``first`` (one set of certificates
    loaded for all, at most ``connecting`` connection attempts per aggregator at a time)."""
    top = service.MultiService()
    tls = TLSContexts.from_config(config.net.ssl)
    gate = ConnectGate(connecting) if connecting > 0 else None
    for index in range(first, first + nodes):
        first, second = (aggregators[index % len(aggregators)], aggregators[(index + 1) % len(aggregators)])
        net = attrs.evolve(config.net, local_client_listen=LocalListen(socket=""), aggregatorA=first,
                           aggregatorB=second if len(aggregators) > 1 else None)
        node_config = attrs.evolve(config, node_name="%s%05d" % (prefix, index), net=net)
        daemon = SimulatedCompute(node_config, reactor, gate=gate, tls=tls)
        daemon.index = index
        daemon.removeService(daemon.xid)
        if recorder is not None:
            recorder.watch(daemon)
        daemon.setServiceParent(top)
    return top


def stop_within(top, clock, grace=STOP_GRACE):
    """Stop ``top``; the Deferred fires when it has stopped or after ``grace`` seconds."""
    done = defer.Deferred()

    def finish(_=None):
        if not done.called:
            done.callback(None)

    timer = clock.callLater(grace, finish)
    stopping = defer.maybeDeferred(top.stopService)
    stopping.addErrback(lambda failure: sys.stderr.write("csm-sim: stopping: %s\n" % failure.getErrorMessage()))
    stopping.addBoth(lambda _: timer.cancel() if timer.active() else None)
    stopping.addBoth(finish)
    return done


def parse_endpoints(text):
    result = []
    for item in text.split(","):
        host, _, port = item.strip().rpartition(":")
        result.append(Endpoint(host, int(port)))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="csm-sim", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a compute config (links, TLS, heartbeat, ACL)")
    parser.add_argument("--nodes", type=int, default=100)
    parser.add_argument("--prefix", default="sim")
    parser.add_argument("--first", type=int, default=0, help="the first node's number (several csm-sim side by side)")
    parser.add_argument("--aggregators", required=True, help="host:port,host:port")
    parser.add_argument("--prolog", help="the nodes' prolog (default: the config's; a no-op when not there)")
    parser.add_argument("--epilog", help="the nodes' epilog (default: the config's)")
    parser.add_argument("--record", help="write primary changes here (JSON) at exit")
    parser.add_argument("--connecting", type=int, default=MAX_CONNECTING,
                        help="connection attempts in progress per aggregator, at most (0: no limit)")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 4 * args.nodes + 1024))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    from twisted.internet import reactor
    try:
        config = load_daemon_config(args.config, role_override="compute")
    except ConfigError as exc:
        parser.exit(1, "csm-sim: %s\n" % exc)
    config = attrs.evolve(config, prolog=config.prolog if args.prolog is None else args.prolog,
                          epilog=config.epilog if args.epilog is None else args.epilog)
    logfile.apply_levels(config.log)
    logfile.install_file_log(config.log)
    globalLogBeginner.beginLoggingTo([], discardBuffer=True, redirectStandardIO=False)  # no buffering
    recorder = _Recorder()
    top = build(config, args.nodes, args.prefix, parse_endpoints(args.aggregators), reactor, recorder,
                connecting=args.connecting, first=args.first)
    # Thousands of nodes make a heap of millions of objects, and a full collection of it
    # takes a core for up to a second (measured: 40 ms growing to 380 ms during a cold start
    # of 4,608 nodes), stalling every node and the daemons beside it: freeze the built nodes,
    # then, as links and their objects come, freeze the survivors every minute, never
    # collecting in full (real nodes each have a heap of their own).
    heap.freeze()
    heap.HeapFreezer(reactor, settle=15, period=60, full=False).setServiceParent(top)
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", stop_within, top, reactor)
    reactor.run()
    if args.record:
        with open(args.record, "w") as f:
            json.dump(recorder.changes, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
