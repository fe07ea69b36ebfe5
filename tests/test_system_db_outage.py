"""The master while its database goes and comes back: a real tree, a real PostgreSQL.

RAS events are created through a compute throughout; the master must answer them
at once while the database is away or being reconnected, answer heartbeats, log no
unhandled error, and store every accepted event exactly once.
"""

import atexit
import os
import signal
import socket
import tempfile
import threading
import time

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm import __version__
from csm.client import Client
from csm.cluster import LocalCluster
from csm.errors import CSMError
from csm.wire import Flags, FrameDecoder, InternalCommand, Message, Priority

_cluster = None


def cluster():
    """Master, one aggregator and one compute, started once for this module. PostgreSQL runs
    without fsync, so that it restarts quickly, but with synchronous commits: an acknowledged
    commit survives ``pg_ctl -m immediate`` (a crash of the server, not of the machine)."""
    global _cluster
    if _cluster is None:
        run_dir = tempfile.mkdtemp(prefix="csm-dbflap-")
        tree = LocalCluster(run_dir, computes=1, aggregators=1, utilities=0, tls=False)
        tree.postgres.fast = True
        try:
            tree.start_database()
            tree.postgres.query("ALTER DATABASE csmdb SET synchronous_commit = on")
            tree.start()
            tree.wait_for(lambda: tree.cli("c01", "csm_node_attributes_query", "-n", "c01")[0] == 0,
                          timeout=60, what="c01 in the database")
        except Exception:
            tree.stop()
            raise
        atexit.register(tree.stop)  # after the server's own: the daemons stop before it
        _cluster = tree
    return _cluster


class EventSender(threading.Thread):
    """Creates RAS events through c01 one after another; records each call's time and answer."""

    def __init__(self, cluster, tag):
        super().__init__(daemon=True)
        self.cluster, self.tag = cluster, tag
        self.calls = []  # (comment, seconds, reply or CSMError)
        self.stopping = threading.Event()

    def run(self):
        with Client(self.cluster.daemons["c01"].socket) as client:
            n = 0
            while not self.stopping.is_set():
                comment = "%s %d" % (self.tag, n)
                started = time.monotonic()
                try:
                    reply = client.call("ras_event_create", {"msg_id": "admin.common.info", "location_name": "c01",
                                                             "kvcsv": "comment=" + comment})
                except CSMError as exc:
                    reply = exc
                self.calls.append((comment, time.monotonic() - started, reply))
                n += 1
                time.sleep(0.005)

    def stop(self):
        self.stopping.set()
        self.join(30)
        return self.calls


class HeartbeatProbe:
    """A link to the master's utility port that times the master's answers to heartbeats."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.decoder = FrameDecoder()
        self.sock.sendall(Message.make(InternalCommand.STATUS, {
            "version": __version__, "node": "heartbeat-probe", "role": "utility", "heartbeat_interval": 15},
            flags=Flags.INT, reserved=15).encode())
        self.wait_for(lambda m: m.command == InternalCommand.STATUS and m.flags & Flags.RESP)

    def wait_for(self, wanted):
        while True:
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError("the master closed the probe's link")
            if any(wanted(m) for m in self.decoder.feed(data)):
                return

    def round_trip(self, mid):
        started = time.monotonic()
        self.sock.sendall(Message(command=InternalCommand.HEARTBEAT, flags=Flags.INT | Flags.CBK, message_id=mid,
                                  priority=Priority.NO_ACK, reserved=15).encode())
        self.wait_for(lambda m: m.command == InternalCommand.HEARTBEAT and m.flags & Flags.RESP
                      and m.message_id == mid)
        return time.monotonic() - started

    def close(self):
        self.sock.close()


class DatabaseOutageTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = cluster()

    def db_state(self):
        status = self.cluster.status("master")
        return status["db_state"] if not status["db_queued_writes"] else "writing"

    def stored(self, tag):
        rows = self.cluster.sql("SELECT message, count(*) FROM csm_ras_event_action WHERE message LIKE %s "
                                "GROUP BY message", ("c01: %s %%" % tag,))
        return dict(rows or [])

    def assert_logs_clean(self):
        for daemon in self.cluster.daemons.values():
            for path in (daemon.log, daemon.out, daemon.out + ".stderr"):
                if os.path.exists(path):
                    with open(path, errors="replace") as f:
                        text = f.read()
                    for word in ("Unhandled", "Traceback"):
                        self.assertNotIn(word, text, "%s in %s" % (word, path))

    def assert_each_stored_once(self, tag, calls):
        self.assertEqual([c for c in calls if isinstance(c[2], CSMError)], [])
        self.cluster.wait_for(lambda: self.db_state() == "connected", timeout=30, what="the queue written")
        stored = self.stored(tag)
        self.assertEqual({"c01: " + comment for comment, _, _ in calls}, set(stored))
        self.assertEqual({count for count in stored.values()}, {1})

    def test_reconnect_to_a_silent_server_leaves_the_master_free(self):
        """The master's backends end while the postmaster is stopped (SIGSTOP): the server takes
        TCP connections and answers none, so the pool's reconnection hangs. The master answers
        heartbeats and event creates ("queued") at once meanwhile, and stores the events once
        the postmaster goes on."""
        admin = psycopg2.connect(self.cluster.postgres.dsn_for("csmdb"))
        admin.autocommit = True
        self.addCleanup(admin.close)
        probe = HeartbeatProbe(self.cluster.ports["utility_listen"])
        self.addCleanup(probe.close)
        with open(os.path.join(self.cluster.postgres.data, "postmaster.pid")) as f:
            postmaster = int(f.readline())
        os.kill(postmaster, signal.SIGSTOP)
        self.addCleanup(os.kill, postmaster, signal.SIGCONT)
        with admin.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'csmdb' "
                        "AND backend_type = 'client backend' AND pid <> pg_backend_pid()")
        self.cluster.wait_for(lambda: self.db_state() == "outage", timeout=10, interval=0.05, what="the outage")
        sender = EventSender(self.cluster, "silent")
        sender.start()
        heartbeats = [probe.round_trip(mid) for mid in range(1, 31) if not time.sleep(0.1)]
        calls = sender.stop()
        self.assertEqual(self.cluster.status("master")["db_state"], "outage")  # still reconnecting
        self.assertLess(max(heartbeats), 1.0, heartbeats)
        self.assertGreater(len(calls), 10)
        self.assertEqual({str(reply) for _, _, reply in calls}, {str({"queued": True})})
        self.assertLess(max(seconds for _, seconds, _ in calls), 1.0)
        os.kill(postmaster, signal.SIGCONT)
        self.assert_each_stored_once("silent", calls)
        self.assert_logs_clean()

    def test_twenty_outages_in_a_row(self):
        """The server is stopped (``-m immediate``) and started 20 times while events are created:
        no call is slow while queued, the master uses the server again soon after each start,
        logs no unhandled error, and stores every accepted event exactly once."""
        postgres = self.cluster.postgres
        sender = EventSender(self.cluster, "flap")
        sender.start()
        back = []
        try:
            for cycle in range(20):
                postgres.stop_server("immediate")
                time.sleep(0.2)
                postgres.start_server()
                started = time.monotonic()
                self.cluster.wait_for(lambda: self.cluster.status("master")["db_state"] == "connected",
                                      timeout=30, interval=0.02, what="the master to reconnect")
                back.append(time.monotonic() - started)
                self.cluster.wait_for(lambda: self.db_state() == "connected", timeout=30, interval=0.02,
                                      what="the master to write its queue")
                time.sleep(0.3)
        finally:
            calls = sender.stop()
        queued = [seconds for _, seconds, reply in calls if isinstance(reply, dict) and reply.get("queued")]
        self.assertGreater(len(queued), 20)
        self.assertLess(max(queued), 1.0)
        self.assertGreater(len(calls) - len(queued), 20)  # some stored while connected, too
        self.assertLess(max(back), 3.0, back)  # within about a second, on a busy machine
        self.assert_each_stored_once("flap", calls)
        self.assert_logs_clean()
