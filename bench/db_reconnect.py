"""Database reconnection benchmark: how soon the master's pool uses a server that is back.

    .venv/bin/python bench/db_reconnect.py [--outages 1,3,9] [--runs 3] [--record]

A pool of 10 connections (CAST's shipped ``connection_pool_size``) on a private
PostgreSQL. For each outage length the server is stopped (``pg_ctl -m immediate``),
left down that long plus up to a second at random (the pool's attempts have a phase)
and started again; the figure is the time from ``pg_ctl start`` returning to the
pool being connected. The outages come a second after each recovery, so the pool
treats the server as flapping and keeps the pace of one attempt a second (a first
outage starts faster: at once, then 0.1, 0.2, 0.4, 0.8 s). Also counted: connection attempts while the
server is down (what a failing server sees) and the longest the reactor went without
running a 10 ms timer.
"""

import argparse
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import percentile, record, run_reactor, stop_on_signals  # noqa: E402
from csm.db.embedded import EmbeddedPostgres  # noqa: E402
from csm.db.pool import CONNECTED, DatabasePool  # noqa: E402


def measure(pg, outages, runs):
    from twisted.internet import defer, reactor, task, threads

    @defer.inlineCallbacks
    def until(predicate):
        while not predicate():
            yield task.deferLater(reactor, 0.005, lambda: None)

    @defer.inlineCallbacks
    def run():
        pool = DatabasePool(None, reactor, dsn=pg.dsn, size=10)
        yield pool.start()
        ticks = []
        ticker = task.LoopingCall(lambda: ticks.append(time.monotonic()))
        ticker.start(0.01)
        back, down_attempts, down_time = {}, 0, 0.0
        try:
            for length in outages:
                for _ in range(runs):
                    yield threads.deferToThread(pg.stop_server, "immediate")
                    before = pool.reconnect_attempts
                    down = length + random.random()
                    yield task.deferLater(reactor, down, lambda: None)
                    down_attempts += pool.reconnect_attempts - before
                    down_time += down
                    yield threads.deferToThread(pg.start_server)
                    started = time.monotonic()
                    yield until(lambda: pool.state == CONNECTED)
                    back.setdefault(length, []).append(time.monotonic() - started)
                    yield task.deferLater(reactor, 1.0, lambda: None)
        finally:
            ticker.stop()
            pool.stop()
        gap = max(b - a for a, b in zip(ticks, ticks[1:]))
        return back, down_attempts, down_time, gap

    return run_reactor(run)


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outages", default="1,3,9", help="outage lengths in seconds")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    outages = [float(x) for x in args.outages.split(",")]
    pg = EmbeddedPostgres(fast=True)
    try:
        pg.start()
        back, attempts, down, gap = measure(pg, outages, args.runs)
    finally:
        pg.stop()
    lines = ["server back after a %g-%g s outage: pool of 10 connected in p50 %.2f s, max %.2f s (%d runs)"
             % (length, length + 1, percentile(times, 50), max(times), len(times)) for length, times in back.items()]
    lines.append("while the server was down: %d connection attempts in %.0f s (%.1f a second)"
                 % (attempts, down, attempts / down))
    lines.append("longest the reactor went without running a 10 ms timer: %.3f s" % gap)
    print("\n".join(lines))
    if args.record:
        record("db_reconnect", " ".join(["python", "bench/db_reconnect.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
