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
