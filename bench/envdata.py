"""Environmental data benchmark: what an aggregator forwards to the BDS, and an idle compute's cost.

    .venv/bin/python bench/envdata.py [--computes 1000] [--records 500000] [--idle 60] [--record]

1. An aggregator (real twistd, with its master) streams to a JSON-lines TCP sink
   in this process; ``--computes`` simulated compute links each send batches of
   50 environmental records. Records per second = records at the sink over the
   time from the first send to the last line received.
2. One compute daemon with the default buckets of conf/csm_compute.cfg (gpu and
   environmental every 10 minutes, ssd daily) runs ``--idle`` seconds: its CPU
   (share of one core) and RSS.
"""

import argparse
import json
import os
import socket
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import QUIET, cpu_rss, record, run_reactor, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster, free_port  # noqa: E402


class CountingSink:
    def __init__(self, port):
        self.lines = 0
        self.last = None
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen(4)
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def _accept(self, server):
        while True:
            conn, _ = server.accept()
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        while True:
            data = conn.recv(1 << 20)
            if not data:
                return
            self.lines += data.count(b"\n")
            self.last = time.perf_counter()


def flood(endpoint, computes, records):
    """``computes`` compute links sending batches of 50 records; returns the start time."""
    from twisted.internet import defer, reactor, task
    from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

    from csm.net.link import LinkOwner, LinkProtocol
    from csm.wire import Flags, InternalCommand, Message

    class Owner(LinkOwner):
        def __init__(self, node):
            self.node = node

        def hello(self, link):
            return {"version": "1.8.5", "node": self.node, "role": "compute"}

    per_link = records // computes // 50

    @defer.inlineCallbacks
    def run():
        links = []
        for n in range(computes):
            link = LinkProtocol(Owner("sim%05d" % n), reactor, initiator=True, heartbeat_interval=60)
            yield connectProtocol(TCP4ClientEndpoint(reactor, endpoint["host"], endpoint["port"]), link)
            yield link.when_ready()
            links.append(link)
        frames = []
        for link in links:
            batch = [{"type": "csm-node-env", "source": link.owner.node, "timestamp": "2026-11-24 00:00:00.000000",
                      "data": {"memory_used": 123456, "processor_temp": 45.5, "n": i}} for i in range(50)]
            frames.append(Message.make(InternalCommand.ENVIRONMENTAL_DATA, {"records": batch},
                                       flags=Flags.INT | Flags.NOREPLY).encode())
        started = time.perf_counter()
        for _ in range(per_link):
            for link, frame in zip(links, frames):
                link.transport.write(frame)
            yield task.deferLater(reactor, 0, lambda: None)
        yield task.deferLater(reactor, 1.0, lambda: None)
        for link in links:
            link.transport.loseConnection()
        return started, per_link * computes * 50

    return run_reactor(run)


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, default=1000)
    parser.add_argument("--records", type=int, default=500000)
    parser.add_argument("--idle", type=float, default=60)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    sink_port = free_port()
    sink = CountingSink(sink_port)
    with open(os.path.join(os.path.dirname(HERE), "conf", "csm_compute.cfg")) as f:
        default_buckets = json.load(f)["csm"]["data_collection"]["buckets"]
    cluster = LocalCluster(tempfile.mkdtemp(prefix="csm-bench-env-"), computes=1, aggregators=1, utilities=0,
                           tls=False, db=False, extra={
                               "master": QUIET, "compute": dict(QUIET, **{"data_collection.buckets": default_buckets}),
                               "aggregator": dict(QUIET, bds={"host": "127.0.0.1", "port": sink_port,
                                                              "reconnect_interval_max": 1,
                                                              "data_cache_expiration": 600})})
    try:
        cluster.start()
        cluster.wait_complete("c01")
        compute = cluster.daemons["c01"].process.pid
        cpu0, _ = cpu_rss(compute)
        t0 = time.perf_counter()
        endpoint = cluster.daemons["agg01"].config["csm"]["net"]["compute_listen"]
        start, sent = flood(endpoint, args.computes, args.records)
        deadline = time.perf_counter() + 120
        while sink.lines < sent and time.perf_counter() < deadline:
            time.sleep(0.1)
        forwarded, elapsed = sink.lines, sink.last - start
        rate = forwarded / elapsed
        remaining = args.idle - (time.perf_counter() - t0)
        if remaining > 0:
            time.sleep(remaining)
        cpu1, rss = cpu_rss(compute)
        idle_cpu = (cpu1 - cpu0) / (time.perf_counter() - t0) * 100
    finally:
        cluster.stop()
    lines = [
        "aggregator to BDS: %d of %d records from %d compute links forwarded in %.1f s: %.0f records/s"
        % (forwarded, sent, args.computes, elapsed, rate),
        "compute daemon with the default buckets, idle over %.0f s: %.2f%% of a core, RSS %.1f MB"
        % (max(args.idle, time.perf_counter() - t0), idle_cpu, rss),
    ]
    print("\n".join(lines))
    if args.record:
        record("envdata", " ".join(["python", "bench/envdata.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
