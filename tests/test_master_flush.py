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
