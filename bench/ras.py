"""RAS benchmark: sustained events per second through a utility daemon's socket.

    .venv/bin/python bench/ras.py [--events 20000] [--record]

A master with its private PostgreSQL (fsync on) and one utility, real twistd
processes. The client writes ``--events`` csm_ras_event_create requests to the
utility's socket as daemons do (fire and forget), then counts the rows in
csm_ras_event_action until every event is there: the rate is events over the
time from the first write to the last row. Then 2,000 events with a reply each,
64 in flight (what a command-line caller sees).
"""

import argparse
import os
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import psycopg2  # noqa: E402

from bench.results import record, run_reactor, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.wire import Flags, InternalCommand, Message  # noqa: E402

QUIET = {role: {"log.default_sev": "warning", "log.csmras": "warning", "log.csmd": "warning",
                "log.csmnet": "warning", "log.csmapi": "warning"} for role in ("master", "utility")}


def count(dsn, prefix):
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM csm_ras_event_action WHERE raw_data LIKE %s", (prefix + "%",))
            return cur.fetchone()[0]
    finally:
        connection.close()


def flood(cluster, dsn, events):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(cluster.daemons["util01"].socket)
    sock.sendall(Message.make(InternalCommand.STATUS, {"version": "1.8.5"}, flags=Flags.INT).encode())
    start = time.perf_counter()
    chunk = []
    for n in range(events):
        chunk.append(Message.make(29, {"msg_id": "admin.common.info", "location_name": "util01",
                                       "raw_data": "flood %d" % n, "kvcsv": "comment=event %d" % n},
                                  flags=Flags.NOREPLY, message_id=n + 1).encode())
        if len(chunk) == 500:
            sock.sendall(b"".join(chunk))
            chunk = []
    sock.sendall(b"".join(chunk))
    sent = time.perf_counter() - start
    while count(dsn, "flood ") < events:
        time.sleep(0.1)
        if time.perf_counter() - start > 600:
            raise RuntimeError("events missing after 600 s")
    sock.close()
    return sent, time.perf_counter() - start


def with_replies(cluster, events, concurrency):
    from twisted.internet import defer, reactor

    from csm.client import connect

    @defer.inlineCallbacks
    def run():
        client = yield connect(reactor, cluster.daemons["util01"].socket)
        sem = defer.DeferredSemaphore(concurrency)
        start = time.perf_counter()
        yield defer.gatherResults([sem.run(client.call, "ras_event_create", {
            "msg_id": "admin.common.info", "location_name": "util01", "raw_data": "reply %d" % n})
            for n in range(events)])
        client.close()
        return time.perf_counter() - start

    return run_reactor(run)


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    cluster = LocalCluster(tempfile.mkdtemp(prefix="csm-bench-ras-"), computes=0, aggregators=0, utilities=1,
                           tls=False, extra=QUIET)
    cluster.postgres.fast = False
    try:
        cluster.start()
        dsn = cluster.postgres.dsn_for("csmdb")
        sent, stored = flood(cluster, dsn, args.events)
        replies = with_replies(cluster, 2000, 64)
        missing = args.events - count(dsn, "flood ")
    finally:
        cluster.stop()
    lines = [
        "fire-and-forget through a utility: %d events written in %.1f s, all %d in the table after %.1f s: %.0f events/s"
        % (args.events, sent, args.events - missing, stored, args.events / stored),
        "with a reply each (64 in flight): 2000 events in %.1f s: %.0f events/s" % (replies, 2000 / replies),
    ]
    print("\n".join(lines))
    if args.record:
        record("ras", " ".join(["python", "bench/ras.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
