"""The computes' aggregators on the master: many changes, one queued write (the latest per node)."""

import json

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from csm.db.inventory import AggregatorColumns
from tests import dbfixture


def nothing(cursor):
    return cursor.execute("SELECT 1")


class AggregatorColumnsTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.pool = yield dbfixture.started_pool(self, size=1)
        for i in range(20):
            yield self.pool.runQuery("SELECT fn_csm_node_inventory(%s::jsonb)",
                                     (json.dumps({"node": {"node_name": "c%02d" % i}}),))
        self.columns = AggregatorColumns(self.pool)

    def written(self):
        """Fires once everything queued so far is written (the queue runs in order)."""
        return self.pool.enqueue_write("ras", nothing, want_result=True)

    def rows(self):
        return self.pool.runQuery("SELECT node_name, primary_agg, secondary_agg FROM csm_node ORDER BY 1")

    @defer.inlineCallbacks
    def test_changes_in_a_storm_are_one_write_the_latest_per_node(self):
        history = yield self.pool.runQuery("SELECT count(*) FROM csm_node_history")
        for i in range(20):  # first link, its FAIL0VER, the secondary
            self.columns.set("c%02d" % i, None, "agg01")
            self.columns.set("c%02d" % i, "agg01", None)
            self.columns.set("c%02d" % i, "agg01", "agg02")
        self.assertEqual(len(self.pool.queue), 1)
        yield self.written()
        rows = yield self.rows()
        self.assertEqual(rows, [("c%02d" % i, "agg01", "agg02") for i in range(20)])
        after = yield self.pool.runQuery("SELECT count(*) FROM csm_node_history")
        self.assertEqual(after[0][0] - history[0][0], 20)  # one history row per node, not three

    @defer.inlineCallbacks
    def test_a_change_after_the_write_ran_is_written_after_it(self):
        busy = defer.Deferred()
        self.pool.enqueue_write("ras", lambda cursor: busy)  # the queue waits behind it
        self.columns.set("c00", "agg01", None)
        later = []

        def meanwhile(cursor):
            # the columns' write ran in this transaction, which has not ended: these changes
            # cannot join it any more
            self.columns.set("c00", "agg02", "agg01")
            self.columns.set("c01", "agg03", None)
            later.append(self.written())
            return cursor.execute("SELECT 1")
        self.pool.enqueue_write("ras", meanwhile, want_result=True)
        busy.callback(None)
        yield self.written()
        yield later[0]
        rows = yield self.rows()
        self.assertEqual(rows[:2], [("c00", "agg02", "agg01"), ("c01", "agg03", None)])

    @defer.inlineCallbacks
    def test_an_unknown_node_is_no_error(self):
        self.columns.set("nowhere", "agg01", None)
        self.columns.set("c00", "agg01", None)
        yield self.written()
        rows = yield self.rows()
        self.assertEqual(rows[0], ("c00", "agg01", None))

    @defer.inlineCallbacks
    def test_a_write_dropped_as_it_is_queued_loses_only_its_change(self):
        """The queue full of what is never dropped (RAS): the columns' new write is the one dropped,
        at once, inside ``enqueue``; the change is lost (logged), the master goes on."""
        busy = defer.Deferred()
        self.pool.enqueue_write("ras", lambda cursor: busy)
        self.pool.writes.max_queue = 1
        self.columns.set("c00", "agg01", None)  # raised TypeError: the write was gone before the change joined
        self.assertEqual(self.pool.writes.dropped["inventory"], 1)
        self.pool.writes.max_queue = 100000
        busy.callback(None)
        self.columns.set("c01", "agg02", None)
        yield self.written()
        rows = yield self.rows()
        self.assertEqual(rows[:2], [("c00", None, None), ("c01", "agg02", None)])
