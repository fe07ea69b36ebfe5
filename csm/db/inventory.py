"""The master's inventory writes: one stored-function call per node report, and the computes'
aggregators many nodes to a statement."""

import json

from twisted.python.failure import Failure

from csm import logs

log = logs.logger("csmdb")


def upsert_node_inventory(cursor, inventory):
    """Write one node's inventory (txpostgres cursor); fires with the node's state."""
    d = cursor.execute("SELECT fn_csm_node_inventory(%s::jsonb)::text", (json.dumps(inventory, default=str),))
    return d.addCallback(lambda c: c.fetchone()[0])


def set_aggregators(cursor, changes):
    """Record the current primary and secondary aggregator of computes (``{node: (primary,
    secondary)}``) in one statement; rows already holding them are left alone (no history row)."""
    rows = [{"node": node, "p": primary, "s": secondary} for node, (primary, secondary) in changes.items()]
    return cursor.execute(
        "UPDATE csm_node n SET primary_agg = v.p, secondary_agg = v.s"
        " FROM jsonb_to_recordset(%s::jsonb) AS v(node text, p text, s text)"
        " WHERE n.node_name = v.node AND (n.primary_agg, n.secondary_agg) IS DISTINCT FROM (v.p, v.s)",
        (json.dumps(rows),))


class AggregatorColumns:
    """The computes' aggregators for the write queue: a change joins the write already queued
    and not yet started, where the latest change of a node replaces its earlier one.

    A reconnect storm changes each compute's aggregators three or four times (its first link,
    the primary's FAIL0VER, the secondary, the inventory written): one queued write and one
    history row each made 36,000 writes at 4,608 nodes, queued ahead of the inventories. A
    change that joins an earlier write is written sooner, never later; the master writes a
    node's aggregators again once its inventory is stored (a row that did not exist yet).
    """

    def __init__(self, pool):
        self.pool = pool
        self._open = None  # the changes of the queued write that has not started

    def set(self, node, primary, secondary):
        if self._open is not None:
            self._open[node] = (primary, secondary)
            return
        # the change is in before the write is queued: a full queue may drop it inside enqueue_write
        changes = self._open = {node: (primary, secondary)}
        written = self.pool.enqueue_write("inventory", self._write, changes, want_result=True)
        written.addBoth(self._done, changes)

    def _write(self, cursor, changes):
        if changes is self._open:  # started: later changes go to a new write behind it
            self._open = None
        return set_aggregators(cursor, changes)

    def _done(self, result, changes):
        if changes is self._open:  # dropped before it started (the queue overflowed)
            self._open = None
        if isinstance(result, Failure):
            log.error("aggregators of {n} computes not stored: {error}", n=len(changes),
                      error=result.getErrorMessage())
        return None


WEAR_COLUMNS = ("wear_lifespan_used", "wear_total_bytes_written", "wear_total_bytes_read",
                "wear_percent_spares_remaining")


def update_ssd_wear(cursor, node, ssds):
    """New wear counters for a node's SSDs (the wear trigger keeps their history)."""
    rows = [dict({c: s.get(c) for c in WEAR_COLUMNS}, serial_number=s.get("serial_number") or "") for s in ssds]
    return cursor.execute(
        "UPDATE csm_ssd d SET " + ", ".join("%s = w.%s" % (c, c) for c in WEAR_COLUMNS) +
        " FROM jsonb_populate_recordset(NULL::csm_ssd, %s::jsonb) w"
        " WHERE d.node_name = %s AND d.serial_number = w.serial_number",
        (json.dumps(rows), node))
