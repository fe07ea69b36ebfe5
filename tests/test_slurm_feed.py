"""The master's feed of node state changes (schema 19.5 NOTIFY, csm.ras.slurm.NodeStateFeed)
against a real PostgreSQL."""

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from csm.ras.slurm import APPLICATION_NAME, NodeStateFeed, SlurmNodes
from tests import dbfixture


def later(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class NodeStateFeedTests(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        _, self.dsn = dbfixture.fresh_database(self)
        self.db = dbfixture.connect(self.dsn)
        self.addCleanup(self.db.close)
        with self.db.cursor() as cur:
            cur.execute("INSERT INTO csm_node (node_name, type, state) VALUES ('c01', 'compute', 'IN_SERVICE')")
        self.changes, self.listened = [], []
        self.feed = NodeStateFeed(reactor, self.dsn, lambda *change: self.changes.append(change), self.listened.append)
        self.feed.startService()
        self.addCleanup(self.feed.stopService)
        yield self.until(lambda: self.feed.listening)

    @defer.inlineCallbacks
    def until(self, predicate, seconds=20):
        for _ in range(int(seconds / 0.05)):
            if predicate():
                return
            yield later(0.05)
        self.fail("condition not met in %s s" % seconds)

    def sql(self, statement, args=()):
        with self.db.cursor() as cur:
            cur.execute(statement, args)

    @defer.inlineCallbacks
    def test_ras_change_names_the_event(self):
        self.sql("SELECT fn_csm_node_state_update(ARRAY['c01'], 'SOFT_FAILURE', 'RAS EVENT', NULL, 7, "
                 "'csm.ras.test')")
        yield self.until(lambda: self.changes)
        self.assertEqual(self.changes, [("c01", "SOFT_FAILURE", "csm.ras.test")])

    @defer.inlineCallbacks
    def test_any_writer_and_only_committed_changes(self):
        self.db.autocommit = False
        with self.db.cursor() as cur:
            cur.execute("UPDATE csm_node SET state = 'HARD_FAILURE' WHERE node_name = 'c01'")
        self.db.rollback()
        with self.db.cursor() as cur:
            cur.execute("UPDATE csm_node SET state = 'IN_SERVICE' WHERE node_name = 'c01'")  # no change
            cur.execute("UPDATE csm_node SET state = 'MAINTENANCE' WHERE node_name = 'c01'")
        self.db.commit()
        yield self.until(lambda: self.changes)
        yield later(0.3)
        self.assertEqual(self.changes, [("c01", "MAINTENANCE", "CSM API")])

    @defer.inlineCallbacks
    def test_listens_again_after_losing_the_database_connection(self):
        first = self.feed.connection
        self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s "
                 "AND datname = current_database()", (APPLICATION_NAME,))
        yield self.until(lambda: self.feed.listening and self.feed.connection is not first)
        self.sql("UPDATE csm_node SET state = 'SOFT_FAILURE' WHERE node_name = 'c01'")
        yield self.until(lambda: self.changes)
        self.assertEqual(self.changes, [("c01", "SOFT_FAILURE", "CSM API")])

    @defer.inlineCallbacks
    def test_every_state_is_read_each_time_it_starts_listening(self):
        self.assertEqual(self.listened, [{"c01": ("IN_SERVICE", "CSM INVENTORY")}])
        self.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                 (APPLICATION_NAME,))
        self.sql("SELECT fn_csm_node_state_update(ARRAY['c01'], 'HARD_FAILURE', 'RAS EVENT', NULL, 9, 'csm.ras.x')")
        yield self.until(lambda: len(self.listened) == 2)
        self.assertEqual(self.listened[1], {"c01": ("HARD_FAILURE", "csm.ras.x")})



class Recorded(SlurmNodes):
    """SlurmNodes whose drain and resume wait for the test to finish them (no Slurm here)."""

    def __init__(self):
        super().__init__(task.Clock())
        self.started, self.pending = [], []

    def _step(self, kind, node):
        self.started.append((kind, node))
        self.pending.append(defer.Deferred())
        return self.pending[-1]

    def drain(self, node, reason):
        return self._step("drain", node)

    def resume(self, node):
        return self._step("resume", node)


class OrderTests(unittest.SynchronousTestCase):

    def test_changes_of_a_node_run_one_after_the_other_in_order(self):
        nodes, results = Recorded(), []
        for state in ("SOFT_FAILURE", "IN_SERVICE"):
            nodes.changed("c01", state, "x").addCallback(results.append)
        nodes.changed("c02", "HARD_FAILURE", "x")
        self.assertEqual(nodes.started, [("drain", "c01"), ("drain", "c02")])
        nodes.pending[0].callback(True)
        nodes.changed("c01", "HARD_FAILURE", "x").addCallback(results.append)  # while the resume runs
        self.assertEqual(nodes.started[2:], [("resume", "c01")])
        nodes.pending[2].callback(False)
        self.assertEqual(nodes.started[3:], [("drain", "c01")])
        nodes.pending[3].callback(True)
        self.assertEqual(results, [True, False, True])
        self.assertEqual(sorted(nodes._locks), ["c02"])
