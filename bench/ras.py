"""RAS benchmark: sustained events per second through a utility daemon's socket.

    .venv/bin/python bench/ras.py [--events 100000] [--record]

A master with its private PostgreSQL (fsync on) and one utility, real twistd
processes. The client writes ``--events`` csm_ras_event_create requests to the
utility's socket as daemons do (fire and forget), then watches the table until
every event is there: the rate is events over the time from the first write to
the poll that first saw the last row (one connection, ``max(rec_id)`` every
10 ms, an index look-up: the polling neither rounds the time to 0.1 s nor costs
PostgreSQL a backend a poll), against issue 21's target of 20,000 events/s with
none lost; also the rate of the rows after the first tenth (the master
reads a burst ahead of writing it: its first rows come late).
The CPU each process spent per event says where the time went. Then 2,000
events with a reply each, 64 in flight (what a command-line caller sees).
"""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
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


class Watch:
    """The newest committed row id, read through one connection (an index look-up)."""

    def __init__(self, dsn):
        self.connection = psycopg2.connect(dsn)
        self.connection.autocommit = True
        self.cursor = self.connection.cursor()

    def last(self):
        self.cursor.execute("SELECT coalesce(max(rec_id), 0) FROM csm_ras_event_action")
        return self.cursor.fetchone()[0]

    def close(self):
        self.connection.close()


def flood(cluster, dsn, events):
    """(seconds to write, seconds until all stored, seconds until a tenth stored)."""
    watch = Watch(dsn)
    base = watch.last()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(cluster.daemons["util01"].socket)
    sock.sendall(Message.make(InternalCommand.STATUS, {"version": "1.8.5"}, flags=Flags.INT).encode())
    frames = [Message.make(29, {"msg_id": "admin.common.info", "location_name": "util01",
                                "raw_data": "flood %d" % n, "kvcsv": "comment=event %d" % n},
                           flags=Flags.NOREPLY, message_id=n + 1).encode() for n in range(events)]
    sent = []

    def send():  # in a thread, so the table is watched from the first write on
        for first in range(0, events, 500):
            sock.sendall(b"".join(frames[first:first + 500]))
        sent.append(time.perf_counter() - start)

    start = time.perf_counter()  # the first write
    sender = threading.Thread(target=send)
    sender.start()
    tenth = done = checked = None
    last, progress = base, time.perf_counter()
    while done is None:
        time.sleep(0.01)
        now = watch.last()
        seen = time.perf_counter()
        if now > last:
            last, progress = now, seen
        elif seen - progress > 30:
            break  # no new row for 30 s: the rest is lost
        if tenth is None and now - base >= events // 10:
            tenth = seen - start
        if now - base >= events and now != checked:  # (the master's own events take ids too)
            checked = now
            if count(dsn, "flood ")[0] >= events:
                done = seen - start
    sender.join()
    watch.close()
    sock.close()
    return sent[0], done if done is not None else progress - start, tenth


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
    parser.add_argument("--events", type=int, default=100000)
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
        sent, stored, tenth = flood(cluster, dsn, args.events)
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
        "the first tenth in the table after %.2f s; the rows after it: %.0f events/s"
        % (tenth, args.events * 0.9 / (stored - tenth))
        if tenth is not None and stored > tenth else "the first tenth never stored",
        "CPU per event during that flood: %s (postgres: the benchmark's polls too)"
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
