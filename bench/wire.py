"""Wire benchmark: API round trips through compute -> aggregator -> master, and framing speed.

    .venv/bin/python bench/wire.py [--seconds 10] [--concurrency 64] [--no-tls]

Starts a real master, one aggregator and one compute (twistd processes), then a
client on the compute's socket keeps ``--concurrency`` echo requests in flight
(the echo is answered by the master, so every request crosses both hops twice).
Prints round trips per second against issue 21's target (10,000/s with TLS) and
latency percentiles, then frames encoded and decoded per second in this process;
``--record`` appends them to bench/RESULTS.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import percentile, record, run_reactor, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.wire import FrameDecoder, Message  # noqa: E402

#: issue 21: round trips per second through compute -> aggregator -> master with TLS
TARGET = 10000


def round_trips(socket_path, seconds, concurrency):
    from twisted.internet import defer, reactor

    from csm.client import connect

    latencies = []
    state = {"done": False}

    @defer.inlineCallbacks
    def worker(client):
        body = {"node_names": ["c01"], "pad": "x" * 64}
        while not state["done"]:
            start = time.perf_counter()
            yield client.call("echo", body)
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
        rate, latencies = round_trips(cluster.daemons["c01"].socket, args.seconds, args.concurrency)
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    encode, decode = framing()
    lines = [
        "round trips through compute -> aggregator -> master (%s, %d in flight, %gs): %.0f/s"
        % ("TLS" if not args.no_tls else "plain TCP", args.concurrency, args.seconds, rate),
        "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms" % (
            percentile(latencies, 50) * 1e3, percentile(latencies, 99) * 1e3, max(latencies) * 1e3),
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
