"""Allocation and step writes: each function is one ``runInteraction`` (one transaction).

Nodes are reserved under row locks on their ``csm_node`` rows (taken in name
order), so two creates over the same nodes run one after the other and the
second sees the first's reservation. Errors are ``CSMError``s with CAST's codes
and one ``NodeError`` per offending node.
"""

import json

from twisted.internet import defer

from csm.db.queries import rows_as_dicts
from csm.errors import CSMError, ErrorCode, NodeError

#: csm_allocation columns a create may set (the rest are the database's).
ALLOCATION_INPUT = ("primary_job_id", "secondary_job_id", "ssd_file_system_name", "launch_node_name",
                    "isolated_cores", "user_flags", "system_flags", "ssd_min", "ssd_max", "num_nodes",
                    "num_processors", "num_gpus", "projected_memory", "state", "type", "job_type", "user_name",
                    "user_id", "user_group_id", "user_group_name", "user_script", "begin_time", "account",
                    "comment", "job_name", "job_submit_time", "queue", "requeue", "time_limit", "wc_key",
                    "smt_mode", "core_blink", "reservation")
#: csm_allocation_node counters that become deltas; memory_usage_max stays a high-water mark.
DELTA_COUNTERS = ("energy", "gpfs_read", "gpfs_write", "ib_tx", "ib_rx", "power_cap_hit", "gpu_usage",
                  "gpu_energy", "cpu_usage")
COUNTERS = DELTA_COUNTERS + ("memory_usage_max",)
#: allocation states in which a node counts as busy for an exclusive request
IDLE_STATES = ("staging-in", "staging-out")
UNAVAILABLE = -1
WENT_BACKWARDS = -2


@defer.inlineCallbacks
def fetch(cursor, sql, args=()):
    yield cursor.execute(sql, args)
    return rows_as_dicts(cursor.description, cursor.fetchall())


@defer.inlineCallbacks
def lock_nodes(cursor, nodes, check_state=True):
    """Lock the nodes' rows; unknown nodes -> 46, (with ``check_state``) nodes not IN_SERVICE
    compute nodes -> 48."""
    rows = yield fetch(cursor, "SELECT node_name, state::text AS state, type FROM csm_node "
                               "WHERE node_name = ANY(%s) ORDER BY node_name FOR UPDATE", (list(nodes),))
    found = {row["node_name"]: row for row in rows}
    missing = [node for node in nodes if node not in found]
    if missing:
        raise CSMError(ErrorCode.CSMERR_ALLOC_INVALID_NODES, "%d node(s) not in the database: %s"
                       % (len(missing), _some(missing)),
                       [NodeError(n, ErrorCode.CSMERR_ALLOC_INVALID_NODES, "%s is not a known node" % n)
                        for n in missing])
    if check_state:
        bad = [row for row in rows if row["state"] != "IN_SERVICE" or row["type"] != "compute"]
        if bad:
            raise CSMError(ErrorCode.CSMERR_ALLOC_UNAVAIL_NODES, "%d node(s) not available: %s"
                           % (len(bad), _some([row["node_name"] for row in bad])),
                           [NodeError(row["node_name"], ErrorCode.CSMERR_ALLOC_UNAVAIL_NODES,
                                      "%s is %s (%s), not an IN_SERVICE compute node"
                                      % (row["node_name"], row["state"], row["type"])) for row in bad])


@defer.inlineCallbacks
def check_free(cursor, nodes, shared, allocation_id=0):
    """Nodes another allocation holds in a busy state (any, for an exclusive request; an
    exclusive one, for a shared request) -> 47."""
    rows = yield fetch(cursor, "SELECT node_name, allocation_id, shared FROM csm_allocation_node "
                               "WHERE node_name = ANY(%s) AND allocation_id <> %s AND NOT state = ANY(%s) "
                               "ORDER BY node_name, allocation_id",
                       (list(nodes), allocation_id, list(IDLE_STATES)))
    busy = {}
    for row in rows:
        if not shared or not row["shared"]:
            busy.setdefault(row["node_name"], []).append(row["allocation_id"])
    if busy:
        raise CSMError(ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES, "%d node(s) in use: %s" % (len(busy), _some(busy)),
                       [NodeError(n, ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES, "%s is in use by allocation %s"
                                  % (n, ",".join(map(str, ids)))) for n, ids in sorted(busy.items())])


@defer.inlineCallbacks
def reserve(cursor, allocation, nodes, shared, row_state, check_nodes=True, check_busy=True):
    """Insert the allocation (in ``row_state``) and its nodes; fires with the new row."""
    yield lock_nodes(cursor, nodes, check_state=check_nodes)
    if check_busy:
        yield check_free(cursor, nodes, shared)
    values = dict(allocation, state=row_state, num_nodes=len(nodes))
    columns = [c for c in ALLOCATION_INPUT if values.get(c) is not None]
    rows = yield fetch(cursor, "INSERT INTO csm_allocation (%s) VALUES (%s) RETURNING *"
                       % (", ".join(columns), ", ".join(["%s"] * len(columns))), [values[c] for c in columns])
    allocation_id = rows[0]["allocation_id"]
    yield cursor.execute("INSERT INTO csm_allocation_node (allocation_id, node_name, state, shared) "
                         "SELECT %s, unnest(%s::text[]), %s, %s", (allocation_id, list(nodes), row_state, shared))
    return rows[0]


def find_active(cursor, allocation_id=None, primary_job_id=None, secondary_job_id=None, lock=False):
    """The live allocation rows matching an id or a job id."""
    suffix = " FOR UPDATE" if lock else ""
    if allocation_id is not None:
        return fetch(cursor, "SELECT * FROM csm_allocation WHERE allocation_id = %s" + suffix, (allocation_id,))
    return fetch(cursor, "SELECT * FROM csm_allocation WHERE primary_job_id = %s AND secondary_job_id = %s "
                         "ORDER BY allocation_id" + suffix, (primary_job_id, secondary_job_id or 0))


@defer.inlineCallbacks
def nodes_of(cursor, allocation_id):
    rows = yield fetch(cursor, "SELECT node_name FROM csm_allocation_node WHERE allocation_id = %s "
                               "ORDER BY node_name", (allocation_id,))
    return [row["node_name"] for row in rows]


@defer.inlineCallbacks
def set_state(cursor, allocation_id, state, expected=None):
    """Move the allocation and its nodes to ``state`` (only from ``expected`` when given);
    fires with the state it had, or None when it is gone or not in ``expected``."""
    rows = yield fetch(cursor, "SELECT state FROM csm_allocation WHERE allocation_id = %s FOR UPDATE",
                       (allocation_id,))
    if not rows or (expected is not None and rows[0]["state"] not in expected):
        return None
    yield cursor.execute("UPDATE csm_allocation SET state = %s WHERE allocation_id = %s", (state, allocation_id))
    yield cursor.execute("UPDATE csm_allocation_node SET state = %s WHERE allocation_id = %s",
                         (state, allocation_id))
    return rows[0]["state"]


def _delta(column):
    new = "(j.c->>'%s')::bigint" % column
    return ("%s = CASE WHEN an.%s IS NULL OR an.%s < 0 OR %s IS NULL OR %s < 0 THEN %d "
            "WHEN %s < an.%s THEN %d ELSE %s - an.%s END"
            % (column, column, column, new, new, UNAVAILABLE, new, column, WENT_BACKWARDS, new, column))


BASELINE_SET = ", ".join("%s = coalesce((j.c->>'%s')::bigint, %d)" % (c, c, UNAVAILABLE) for c in COUNTERS)
DELTA_SET = ", ".join([_delta(c) for c in DELTA_COUNTERS]
                      + ["memory_usage_max = coalesce((j.c->>'memory_usage_max')::bigint, %d)" % UNAVAILABLE])
UNANSWERED_SET = ", ".join("%s = %d" % (c, UNAVAILABLE) for c in COUNTERS)


@defer.inlineCallbacks
def store_counters(cursor, allocation_id, readings, deltas):
    """``readings`` {node: counters} as the baseline, or (``deltas``) as the final readings
    turned into deltas; a node without readings gets -1 (unavailable)."""
    yield cursor.execute("UPDATE csm_allocation_node an SET %s FROM jsonb_each(%%s::jsonb) AS j(node, c) "
                         "WHERE an.allocation_id = %%s AND an.node_name = j.node"
                         % (DELTA_SET if deltas else BASELINE_SET), (json.dumps(readings), allocation_id))
    yield cursor.execute("UPDATE csm_allocation_node SET %s WHERE allocation_id = %%s AND NOT node_name = ANY(%%s)"
                         % UNANSWERED_SET, (allocation_id, list(readings)))


@defer.inlineCallbacks
def to_history(cursor, allocation_id, exit_status, final_state):
    """The allocation, its nodes and open steps go to history; fires with the history row.
    The final state (complete or failed) ends the allocation's state history."""
    yield cursor.execute("SELECT fn_csm_allocation_history_dump(%s, now()::timestamp, %s, %s)",
                         (allocation_id, exit_status, final_state))
    yield cursor.execute("INSERT INTO csm_allocation_state_history (history_time, allocation_id, exit_status, "
                         "state) VALUES (now(), %s, %s, %s)", (allocation_id, exit_status, final_state))
    rows = yield fetch(cursor, "SELECT * FROM csm_allocation_history WHERE allocation_id = %s "
                               "ORDER BY history_time DESC LIMIT 1", (allocation_id,))
    return rows[0] if rows else None


@defer.inlineCallbacks
def node_accounting(cursor, allocation_id):
    """The per-node counters of an allocation (live, else from history)."""
    rows = yield fetch(cursor, "SELECT * FROM csm_allocation_node WHERE allocation_id = %s ORDER BY node_name",
                       (allocation_id,))
    if not rows:
        rows = yield fetch(cursor, "SELECT * FROM csm_allocation_node_history WHERE allocation_id = %s "
                                   "ORDER BY node_name", (allocation_id,))
    return rows


def _some(names, most=8):
    names = sorted(names)
    return ", ".join(names[:most]) + (" and %d more" % (len(names) - most) if len(names) > most else "")
