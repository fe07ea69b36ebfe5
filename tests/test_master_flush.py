"""The master's last writes at stop: waited for by notification, not by polling its clock."""

import json
import os

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from csm.cluster import PROJECT
from csm.config import load_daemon_config
from csm.db.pool import DatabasePool
from csm.roles.database import DatabaseService
from csm.roles.master import MasterDaemon
from tests import dbfixture


def insert(cursor, text):
    return cursor.execute("INSERT INTO flush_log (text) VALUES (%s)", (text,))


def master_config(path):
    """A master without a database or local socket (not started: nothing listens; the test gives it a pool)."""
    conf = os.path.join(PROJECT, "conf")
    with open(path, "w") as f:
        json.dump({"csm": {"role": "Master", "node_name": "master",
                           "api_permission_file": os.path.join(conf, "csm_api.acl"),
                           "api_configuration_file": os.path.join(conf, "csm_api.cfg"),
                           "db": {"host": "NONE"},
                           "net": {"local_client_listen": {"socket": ""},
                                   "aggregator_listen": {"host": "127.0.0.1", "port": 0},
                                   "utility_listen": {"host": "127.0.0.1", "port": 0}}}}, f)
    return load_daemon_config(path)


class FlushTests(TestCase):
    @defer.inlineCallbacks
    def test_queued_writes_flushed_without_the_clock_moving(self):
        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=1)
        yield pool.start()
        self.addCleanup(pool.close)
        yield pool.runOperation("CREATE TABLE flush_log (text text)")
        master = MasterDaemon(master_config(self.mktemp()))
        master.db, master.clock = pool, Clock()  # a clock that never moves: polling it would hang
        for i in range(50):
            pool.enqueue_write("ras", insert, "event %d" % i)
        yield DatabaseService(master).flush()
        self.assertEqual(list(pool.queue), [])
        rows = yield pool.runQuery("SELECT count(*) FROM flush_log")
        self.assertEqual(rows, [(50,)])

    @defer.inlineCallbacks
    def test_stop_hands_on_every_event_written_before_the_log_closes(self):
        """Outcomes a flood's write left to later turns (``EventBatches``) are handed on at the
        stop, before the event log closes: the reactor stops after it, and they were lost."""
        from csm.logfile import JsonLines
        from csm.ras.batch import FOLLOW_UPS_A_TURN
        from csm.ras.engine import RasEngine

        _, dsn = dbfixture.fresh_database(self)
        pool = DatabasePool(None, reactor, dsn=dsn, size=1)
        yield pool.start()
        self.addCleanup(pool.close)
        master = MasterDaemon(master_config(self.mktemp()))
        log_path = self.mktemp()
        master.db, master.clock = pool, Clock()
        master.ras = RasEngine(pool, None, JsonLines(log_path))
        gate = defer.Deferred()
        pool.enqueue_write("env", lambda cursor: gate)  # holds the queue: what follows shares a transaction
        total = 2 * FOLLOW_UPS_A_TURN + 1
        for n in range(total):
            master.ras.submit({"msg_id": "admin.common.info", "location_name": "master", "raw_data": str(n)})
        service = DatabaseService(master)
        for child in list(service):  # (its timers: the pool is started here; its stop is the test)
            child.disownServiceParent()
        service.running = True
        stopped = service.stopService()  # its last write queued behind the events
        gate.callback(None)
        yield stopped
        with open(log_path) as f:
            self.assertEqual([json.loads(line)["data"]["raw_data"] for line in f], [str(n) for n in range(total)])
