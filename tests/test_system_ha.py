"""Two masters elected through PostgreSQL, with real processes: kill -9 and SIGSTOP the active one."""

import signal
import subprocess
import sys
import threading
import time

from twisted.trial.unittest import SynchronousTestCase

from csm.api.commands import RAS_EVENT_CREATE
from csm.client import Client
from csm.errors import CSMError, ErrorCode
from tests.clusters import shared_cluster
from csm.wire import Flags, Message
from tests.test_system_db_outage import EventSender

HEARTBEAT = 3


def cluster():
    return shared_cluster("ha", computes=2, aggregators=2, utilities=1, masters=2, heartbeat_interval=HEARTBEAT)


class MasterTakeOverTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = cluster()
        for master in self.cluster.by_role("master"):
            if not master.running:  # a master an earlier test killed comes back as a standby
                master.start()
                master.wait_socket()
        self.active = self.cluster.wait_for(self.cluster.active_master, timeout=30, what="an active master")
        self.standby = next(m.name for m in self.cluster.by_role("master") if m.name != self.active)
        self.cluster.wait_for(lambda: self.cluster.status(self.standby).get("ha_active_master") == self.active,
                              timeout=30, what="the standby to see the active master")
        self.cluster.wait_complete("c01", timeout=60)

    def stored(self, tag):
        rows = self.cluster.sql("SELECT message, count(*) FROM csm_ras_event_action WHERE message LIKE %s "
                                "GROUP BY message", ("c01: %s %%" % tag,))
        return dict(rows or [])

    def wait_written(self, master):
        self.cluster.wait_for(lambda: (lambda s: s["db_state"] == "connected" and not s["db_queued_writes"])(
            self.cluster.status(master)), timeout=30, what="%s's queued writes" % master)

    def allocation(self, job_id):
        """Create an allocation of c01 and c02 in the background (a Popen; JSON output)."""
        env = self.cluster.env()
        env["CSM_SOCKET"] = self.cluster.daemons["util01"].socket
        return subprocess.Popen([sys.executable, "-c", "import sys; from csm.cli.main import main; "
                                 "sys.argv[0] = 'csm_allocation_create'; sys.exit(main())",
                                 "-j", str(job_id), "-n", "c01,c02", "--format", "json"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def test_kill_the_active_master_under_load(self):
        sender = EventSender(self.cluster, "kill")
        sender.start()
        self.addCleanup(sender.stop)
        time.sleep(1.0)
        creating = self.allocation(9001)
        time.sleep(0.1)
        self.cluster.daemons[self.active].kill()
        killed = time.monotonic()
        # with no master reachable, the utility holds fire-and-forget RAS events for the next one
        standby = self.cluster.daemons[self.standby]
        standby.signal(signal.SIGSTOP)
        self.addCleanup(standby.signal, signal.SIGCONT)
        self.cluster.wait_for(lambda: not self.cluster._upstream_up("util01"), timeout=10, interval=0.05,
                              what="util01 without a master")
        self.send_without_reply("util01", ["held %d" % n for n in range(5)])
        standby.signal(signal.SIGCONT)
        self.cluster.wait_for(lambda: self.cluster.active_master() == self.standby, timeout=20,
                              what="%s to take over" % self.standby)
        self.cluster.wait_complete("c01", timeout=30)
        took_over = time.monotonic() - killed
        before = len(sender.calls)
        self.cluster.wait_for(lambda: len(sender.calls) > before + 20, timeout=20, what="events after the take-over")
        calls = sender.stop()
        output, _ = creating.communicate(timeout=60)
        self.wait_written(self.standby)
        # every acknowledged event is stored, once; the others failed as sent or received
        acknowledged = {"c01: " + c for c, _, reply in calls if not isinstance(reply, CSMError)}
        stored = self.stored("kill")
        self.assertEqual(acknowledged - set(stored), set())
        self.assertEqual(set(stored.values()), {1})
        self.cluster.wait_for(lambda: len(self.cluster.sql("SELECT 1 FROM csm_ras_event_action WHERE message LIKE "
                                                           "'util01: held %%'")) == 5,
                              timeout=20, what="the events util01 held")
        errors = {reply.errcode for _, _, reply in calls if isinstance(reply, CSMError)}
        self.assertLessEqual(errors, {ErrorCode.CSMERR_SENDRCV_ERROR, ErrorCode.CSMERR_TIMEOUT})
        self.assertTrue(errors, "no call failed while no master was active (%.1fs)" % took_over)
        # the standby, continued before it was elected, sent util01 on to the next master
        self.assertIn("is not active; trying the next", self.cluster.log_text("util01"))
        # the allocation exists whole or not at all
        rows = self.cluster.sql("SELECT allocation_id, num_nodes FROM csm_allocation WHERE primary_job_id = 9001")
        if rows:
            nodes = self.cluster.sql("SELECT count(*) FROM csm_allocation_node WHERE allocation_id = %s",
                                     (rows[0][0],))
            self.assertEqual(nodes, [(rows[0][1],)], output)
        else:
            self.assertNotEqual(creating.returncode, 0, output)
            self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_allocation_node n JOIN csm_allocation a "
                                              "USING (allocation_id) WHERE a.primary_job_id = 9001"), [(0,)])
        if rows:  # leave the nodes free for the next test
            self.cluster.cli("util01", "csm_allocation_delete", "-j", "9001")

    def test_a_stopped_master_is_replaced_and_does_not_write_when_continued(self):
        stopped = self.cluster.daemons[self.active]
        stopped.signal(signal.SIGSTOP)
        self.addCleanup(stopped.signal, signal.SIGCONT)
        paused = time.monotonic()
        # an event handed to the stopped master's own socket: it is read when it continues
        answers = []
        late = threading.Thread(target=self._create_through, args=(self.active, "late event", answers), daemon=True)
        late.start()
        self.cluster.wait_for(lambda: self.cluster.active_master() == self.standby, timeout=30,
                              what="%s to take over" % self.standby)
        took_over = time.monotonic() - paused
        self.assertLess(took_over, 6 * HEARTBEAT)  # the lease (one heartbeat) and two looks
        self.cluster.wait_complete("c01", timeout=30)
        stopped.signal(signal.SIGCONT)
        late.join(30)
        self.cluster.wait_for(lambda: self.cluster.status(self.active).get("ha_active_master") == self.standby,
                              timeout=20, what="the continued master to stand by")
        status = self.cluster.status(self.active)
        self.assertEqual((status["ha_state"], status["db_state"]), ("standby", "stopped"))
        log = self.cluster.log_text(self.active)
        self.assertIn("stops being the active master: no renewal of the lease", log)
        time.sleep(2)
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_ras_event_action WHERE message = 'c01: late event'"),
                         [(0,)], answers)
        # it keeps its lease session only: its pool is closed
        sessions = self.cluster.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                                    ("csm-master " + self.active,))
        self.assertEqual(sessions, [(1,)])

    def test_a_standby_refuses_database_requests_naming_the_active_master(self):
        """A request that needs the database, on a standby's own socket, is refused at once with
        the active master's name (it was answered "queued" and held until an election)."""
        for api, body in (("ras_event_create", {"msg_id": "admin.common.info", "location_name": "c01",
                                                "kvcsv": "comment=on the standby"}),
                          ("ras_event_query", {"msg_id": "admin.common.info"})):
            started = time.monotonic()
            with Client(self.cluster.daemons[self.standby].socket, timeout=60) as client:
                with self.assertRaises(CSMError) as caught:
                    client.call(api, body)
            self.assertLess(time.monotonic() - started, 30, api)
            self.assertEqual(caught.exception.errcode, ErrorCode.CSMERR_DAEMON_DB_ERR, api)
            self.assertIn("master %s is a standby: the active master is %s" % (self.standby, self.active),
                          caught.exception.errmsg)
        self.assertEqual(self.cluster.status(self.standby)["db_queued_writes"], 0)
        self.assertEqual(self.cluster.sql("SELECT count(*) FROM csm_ras_event_action "
                                          "WHERE message = 'c01: on the standby'"), [(0,)])

    def send_without_reply(self, daemon, comments):
        """RAS events with NOREPLY through ``daemon``'s socket, then a status call on the same
        connection (answered once the daemon has taken them)."""
        with Client(self.cluster.daemons[daemon].socket) as client:
            client.connect()
            for n, comment in enumerate(comments):
                message = Message.make(RAS_EVENT_CREATE.cmd_id, {"msg_id": "admin.common.info", "location_name":
                                                                 daemon, "kvcsv": "comment=" + comment},
                                       flags=Flags.NOREPLY, message_id=1000 + n)
                client._sock.sendall(message.encode())
            client.call("ctrl_cmd", {"status": True})

    def _create_through(self, daemon, comment, answers):
        try:
            with Client(self.cluster.daemons[daemon].socket, timeout=60) as client:
                answers.append(client.call("ras_event_create", {"msg_id": "admin.common.info", "location_name": "c01",
                                                                "kvcsv": "comment=" + comment}))
        except (CSMError, OSError) as exc:
            answers.append(exc)
