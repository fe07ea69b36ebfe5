"""The master's inventory writes: one stored-function call per node report."""

import json


def upsert_node_inventory(cursor, inventory):
    """Write one node's inventory (txpostgres cursor); fires with the node's state."""
    d = cursor.execute("SELECT fn_csm_node_inventory(%s::jsonb)::text", (json.dumps(inventory, default=str),))
    return d.addCallback(lambda c: c.fetchone()[0])


def set_aggregators(cursor, node, primary, secondary):
    """Record a compute's current primary and secondary aggregator."""
    return cursor.execute("UPDATE csm_node SET primary_agg = %s, secondary_agg = %s WHERE node_name = %s "
                          "AND (primary_agg, secondary_agg) IS DISTINCT FROM (%s, %s)",
                          (primary, secondary, node, primary, secondary))
