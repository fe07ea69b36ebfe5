"""RAS benchmark: sustained events per second through a utility daemon's socket.

    .venv/bin/python bench/ras.py [--events 20000] [--record]

A master with its private PostgreSQL (fsync on) and one utility, real twistd
processes. The client writes ``--events`` csm_ras_event_create requests to the
utility's socket as daemons do (fire and forget), then counts the rows in
csm_ras_event_action until every event is there: the rate is events over the
time from the first write to the last row, against issue 21's target of 20,000
events/s with none lost; the CPU each process spent per event says where the
time went. Then 2,000 events with a reply each, 64 in flight (what a
command-line caller sees).
"""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import psycopg2  # noqa: E402

from bench.results import cpu_rss, record, run_reactor, server_pids, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.wire import Flags, InternalCommand, Message  # noqa: E402

#: issue 21: events stored per second, fire-and-forget through a utility
TARGET = 20000

QUIET = {role: {"log.default_sev": "warning", "log.csmras": "warning", "log.csmd": "warning",
                "log.csmnet": "warning", "log.csmapi": "warning"} for role in ("master", "utility")}


def cpu_seconds(cluster):
    """CPU seconds used so far by each daemon and by the cluster's PostgreSQL."""
    used = {name: cpu_rss(daemon.process.pid)[0] for name, daemon in cluster.daemons.items()}
    used["postgres"] = 0.0
    for pid in server_pids(cluster.postgres):
        try:
            used["postgres"] += cpu_rss(pid)[0]
        except (OSError, StopIteration):
            pass  # a backend that ended meanwhile
    return used


def count(dsn, prefix):
    """(events stored, rows): how many of the events are in the table, and in how many rows."""
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT count(DISTINCT raw_data), count(*) FROM csm_ras_event_action WHERE raw_data LIKE %s",
                        (prefix + "%",))
            return cur.fetchone()
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
    rows, progress = 0, time.perf_counter()
    while rows < events:  # (rows: a duplicate would end this early, and show in the final count)
        time.sleep(0.1)
        now = count(dsn, "flood ")[1]
        if now > rows:
            rows, progress = now, time.perf_counter()
        elif time.perf_counter() - progress > 30:
            break  # no new row for 30 s: the rest is lost
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
    run_dir = tempfile.mkdtemp(prefix="csm-bench-ras-")
    cluster = LocalCluster(run_dir, computes=0, aggregators=0, utilities=1,
                           tls=False, extra=QUIET)
    cluster.postgres.fast = False
    try:
        cluster.start()
        dsn = cluster.postgres.dsn_for("csmdb")
        before = cpu_seconds(cluster)
        sent, stored = flood(cluster, dsn, args.events)
        after = cpu_seconds(cluster)
        replies = with_replies(cluster, 2000, 64)
        stored_events, stored_rows = count(dsn, "flood ")
        missing, duplicates = args.events - stored_events, stored_rows - stored_events
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    lines = [
        "fire-and-forget through a utility: %d events written in %.1f s, all %d in the table after %.1f s: %.0f events/s"
        % (args.events, sent, args.events - missing, stored, args.events / stored),
        "CPU per event during that flood: %s (postgres: its counting queries too)"
        % ", ".join("%s %.1f us" % (name, (after[name] - before[name]) / args.events * 1e6) for name in after),
        "with a reply each (64 in flight): 2000 events in %.1f s: %.0f events/s" % (replies, 2000 / replies),
        "target: at least %d events/s with none lost: %.0f events/s, %d lost, %d written twice: %s; load average "
        "(1 min) %.1f on %d cores" % (TARGET, args.events / stored, missing, duplicates,
                   "met" if args.events / stored >= TARGET and not missing and not duplicates
                   else "not met (%.2f of the rate)" % (args.events / stored / TARGET),
                   os.getloadavg()[0], os.cpu_count()),
    ]
    print("\n".join(lines))
    if args.record:
        record("ras", " ".join(["python", "bench/ras.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
