"""Wire benchmark: API round trips through compute -> aggregator -> master, and framing speed.

    .venv/bin/python bench/wire.py [--seconds 10] [--concurrency 64] [--no-tls] [--csm-client]

Starts a real master, one aggregator and one compute (twistd processes), then a
client on the compute's socket keeps ``--concurrency`` echo requests in flight
(the echo is answered by the master, so every request crosses both hops twice).
The client sends frames encoded beforehand and checks only each reply's header (as
bench/queryload.py), so the CPUs are left to the daemons; ``--csm-client`` uses the
Deferred client of csm.client instead (how the figures before 2026-12-02 05:00 were
taken). Prints round trips per second against issue 21's target (10,000/s with TLS),
latency percentiles, the CPU each process spent per round trip (from /proc), then
frames encoded and decoded per second in this process; ``--record`` appends them to
bench/RESULTS.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import cpu_rss, percentile, record, run_reactor, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm import __version__  # noqa: E402
from csm.wire import Flags, FrameDecoder, InternalCommand, Message  # noqa: E402

#: issue 21: round trips per second through compute -> aggregator -> master with TLS
TARGET = 10000


BODY = {"node_names": ["c01"], "pad": "x" * 64}


def csm_client_round_trips(socket_path, seconds, concurrency):
    """``concurrency`` callers of one ``csm.client`` connection, each calling as soon as answered."""
    from twisted.internet import defer, reactor

    from csm.client import connect

    latencies = []
    state = {"done": False}

    @defer.inlineCallbacks
    def worker(client):
        while not state["done"]:
            start = time.perf_counter()
            yield client.call("echo", BODY)
            latencies.append(time.perf_counter() - start)

    @defer.inlineCallbacks
    def run():
        client = yield connect(reactor, socket_path)
        yield client.call("echo", {})  # warm the path
        reactor.callLater(seconds, state.update, done=True)
        start = time.perf_counter()
        yield defer.gatherResults([worker(client) for _ in range(concurrency)])
        elapsed = time.perf_counter() - start
        client.close()
        return elapsed

    elapsed = run_reactor(run)
    return len(latencies) / elapsed, latencies


def round_trips(socket_path, seconds, concurrency):
    """One connection with ``concurrency`` echo frames in flight, each sent again when answered."""
    from twisted.internet import defer, reactor
    from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
    from twisted.internet.protocol import Protocol

    frames = {mid: Message.make(InternalCommand.ECHO, BODY, message_id=mid).encode()
              for mid in range(1, concurrency + 1)}
    latencies = []

    class Pipelined(Protocol):
        def __init__(self):
            self.decoder = FrameDecoder()
            self.sent = {}
            self.stop_at = None
            self.done = defer.Deferred()
            self.errors = 0

        def connectionMade(self):
            self.transport.write(Message.make(InternalCommand.STATUS, {"version": __version__, "role": "client"},
                                              flags=Flags.INT).encode())

        def dataReceived(self, data):
            for reply in self.decoder.feed(data):
                if reply.command == InternalCommand.HEARTBEAT:
                    if not reply.flags & Flags.RESP:
                        self.transport.write(reply.evolve(flags=reply.flags | Flags.RESP).encode())
                elif self.stop_at is None:  # the hello's answer: start
                    self.start = time.perf_counter()
                    self.stop_at = self.start + seconds
                    for mid in frames:
                        self.send(mid)
                else:
                    now = time.perf_counter()
                    if reply.flags & Flags.ERR:
                        self.errors += 1
                    latencies.append(now - self.sent.pop(reply.message_id))
                    if now < self.stop_at:
                        self.send(reply.message_id)
                    elif not self.sent:
                        self.elapsed = now - self.start
                        self.transport.loseConnection()

        def send(self, mid):
            self.sent[mid] = time.perf_counter()
            self.transport.write(frames[mid])

        def connectionLost(self, reason):
            self.done.callback(None)

    @defer.inlineCallbacks
    def run():
        client = Pipelined()
        yield connectProtocol(UNIXClientEndpoint(reactor, socket_path), client)
        yield client.done
        if client.errors:
            raise RuntimeError("%d of %d round trips were error replies" % (client.errors, len(latencies)))
        return client.elapsed

    elapsed = run_reactor(run)
    return len(latencies) / elapsed, latencies


def framing(count=100000):
    body = {"node_names": ["c%04d" % i for i in range(8)], "state": "IN_SERVICE", "limit": 10}
    start = time.perf_counter()
    frames = [Message.make(42, body, message_id=i).encode() for i in range(count)]
    encode = count / (time.perf_counter() - start)
    decoder = FrameDecoder()
    stream = b"".join(frames)
    start = time.perf_counter()
    for offset in range(0, len(stream), 65536):
        decoder.feed(stream[offset:offset + 65536])
    decode = count / (time.perf_counter() - start)
    return encode, decode


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--no-tls", action="store_true")
    parser.add_argument("--csm-client", action="store_true", help="call through csm.client's Deferred client")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    args = parser.parse_args()
    run_dir = tempfile.mkdtemp(prefix="csm-bench-wire-")
    cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=0, tls=not args.no_tls,
                           extra={role: {"log.default_sev": "warning", "log.csmnet": "warning",
                                         "log.csmapi": "warning", "log.csmd": "warning"}
                                  for role in ("master", "aggregator", "compute")})
    try:
        cluster.start()
        cluster.wait_complete("c01")
        pids = {name: cluster.daemons[name].process.pid for name in ("c01", "agg01", "master")}
        before = {name: cpu_rss(pid)[0] for name, pid in pids.items()}
        mine = time.process_time()
        run = csm_client_round_trips if args.csm_client else round_trips
        rate, latencies = run(cluster.daemons["c01"].socket, args.seconds, args.concurrency)
        spent = {name: cpu_rss(pid)[0] - before[name] for name, pid in pids.items()}
        spent["client"] = time.process_time() - mine
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    encode, decode = framing()
    lines = [
        "round trips through compute -> aggregator -> master (%s, %d in flight, %gs): %.0f/s"
        % ("TLS" if not args.no_tls else "plain TCP", args.concurrency, args.seconds, rate)
        + (" (csm.client)" if args.csm_client else " (frames encoded beforehand)"),
        "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
            percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3, max(latencies) * 1e3),
        "CPU per round trip: %s; %.0f us in all" % (
            ", ".join("%s %.0f us" % (name, spent[name] / len(latencies) * 1e6)
                      for name in ("c01", "agg01", "master", "client")),
            sum(spent.values()) / len(latencies) * 1e6),
        "frames encoded %.0f/s, decoded %.0f/s (one process)" % (encode, decode),
        "target: at least %d round trips/s with TLS: %.0f/s%s, %s; load average (1 min) %.1f on %d cores"
        % (TARGET, rate, "" if not args.no_tls else " (plain TCP: not the target's setting)",
           "met" if rate >= TARGET else "not met (%.2f of the target)" % (rate / TARGET),
           os.getloadavg()[0], os.cpu_count()),
    ]
    print("\n".join(lines))
    if args.record:
        record("wire", " ".join(["python", "bench/wire.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
