"""Allocation and step writes: each function is one ``runInteraction`` (one transaction).

The steps of an allocation's create and delete are also ``*_statement`` functions:
(sql, args) that do one step in one round trip, one transaction (several
statements in one query string run as one implicit transaction), so that the
master runs them on the pool with no BEGIN and COMMIT round trips; the cursor
functions of the same name run the same SQL.

Nodes are reserved under row locks on their ``csm_node`` rows (taken in name
order), so two creates over the same nodes run one after the other and the
second sees the first's reservation. Errors are ``CSMError``s with CAST's codes
and one ``NodeError`` per offending node.
"""

import json

from twisted.internet import defer

from csm.db import merged
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
        raise _invalid(missing)
    if check_state:
        bad = [row for row in rows if row["state"] != "IN_SERVICE" or row["type"] != "compute"]
        if bad:
            raise _unavailable(bad)


def _invalid(missing):
    return CSMError(ErrorCode.CSMERR_ALLOC_INVALID_NODES, "%d node(s) not in the database: %s"
                    % (len(missing), _some(missing)),
                    [NodeError(n, ErrorCode.CSMERR_ALLOC_INVALID_NODES, "%s is not a known node" % n)
                     for n in missing])


def _unavailable(bad):
    return CSMError(ErrorCode.CSMERR_ALLOC_UNAVAIL_NODES, "%d node(s) not available: %s"
                    % (len(bad), _some([row["node_name"] for row in bad])),
                    [NodeError(row["node_name"], ErrorCode.CSMERR_ALLOC_UNAVAIL_NODES,
                               "%s is %s (%s), not an IN_SERVICE compute node"
                               % (row["node_name"], row["state"], row["type"])) for row in bad])


def _occupied(rows):
    """Rows (node_name, allocation_id) of the allocations holding the nodes -> 47."""
    busy = {}
    for row in rows:
        busy.setdefault(row["node_name"], []).append(row["allocation_id"])
    return CSMError(ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES, "%d node(s) in use: %s" % (len(busy), _some(busy)),
                    [NodeError(n, ErrorCode.CSMERR_ALLOC_OCCUPIED_NODES, "%s is in use by allocation %s"
                               % (n, ",".join(map(str, ids)))) for n, ids in sorted(busy.items())])


@defer.inlineCallbacks
def check_free(cursor, nodes, shared, allocation_id=0):
    """Nodes another allocation holds in a busy state (any, for an exclusive request; an
    exclusive one, for a shared request) -> 47."""
    rows = yield fetch(cursor, "SELECT node_name, allocation_id, shared FROM csm_allocation_node "
                               "WHERE node_name = ANY(%s) AND allocation_id <> %s AND NOT state = ANY(%s) "
                               "ORDER BY node_name, allocation_id",
                       (list(nodes), allocation_id, list(IDLE_STATES)))
    busy = [row for row in rows if not shared or not row["shared"]]
    if busy:
        raise _occupied(busy)


#: A create's reservation: one round trip, one transaction. The first statement locks the
#: nodes' rows (in name order); the second, with a snapshot taken once the locks are held (so
#: it sees a reservation committed by whoever held them before), checks the nodes and inserts
#: the allocation and its nodes only when every check passes, and names what failed.
RESERVE_SQL = """
SELECT 1 FROM csm_node WHERE node_name = ANY(%%(nodes)s) ORDER BY node_name FOR UPDATE;
WITH want AS (SELECT unnest(%%(nodes)s::text[]) AS node_name),
found AS (SELECT n.node_name, n.state::text AS state, n.type FROM csm_node n JOIN want USING (node_name)),
missing AS (SELECT node_name FROM want EXCEPT SELECT node_name FROM found),
bad AS (SELECT * FROM found WHERE %%(check_state)s AND (state <> 'IN_SERVICE' OR type <> 'compute')),
busy AS (SELECT node_name, allocation_id FROM csm_allocation_node
          WHERE %%(check_busy)s AND node_name = ANY(%%(nodes)s) AND NOT state = ANY(%%(idle)s)
            AND (NOT %%(shared)s OR NOT shared)),
errors AS (SELECT (SELECT array_agg(node_name ORDER BY node_name) FROM missing) AS csm_missing,
                  (SELECT jsonb_agg(bad ORDER BY node_name) FROM bad) AS csm_bad,
                  (SELECT jsonb_agg(busy ORDER BY node_name, allocation_id) FROM busy) AS csm_busy),
made AS (INSERT INTO csm_allocation (%(columns)s) SELECT %(values)s FROM errors
          WHERE csm_missing IS NULL AND csm_bad IS NULL AND csm_busy IS NULL RETURNING *),
placed AS (INSERT INTO csm_allocation_node (allocation_id, node_name, state, shared)
            SELECT made.allocation_id, want.node_name, %%(state)s, %%(shared)s FROM made, want)
SELECT made.*, errors.* FROM errors LEFT JOIN made ON true
"""


def reserve_statement(allocation, nodes, shared, row_state, check_nodes=True, check_busy=True):
    """(sql, args) of a reservation (``RESERVE_SQL``); ``reserved`` reads its answer."""
    values = dict(allocation, state=row_state, num_nodes=len(nodes))
    columns = [c for c in ALLOCATION_INPUT if values.get(c) is not None]
    sql = RESERVE_SQL % {"columns": ", ".join(columns), "values": ", ".join("%%(v_%s)s" % c for c in columns)}
    args = {"v_" + c: values[c] for c in columns}
    args.update(nodes=list(nodes), check_state=bool(check_nodes), check_busy=bool(check_busy), shared=bool(shared),
                idle=list(IDLE_STATES), state=row_state)
    return sql, args


def reserved(rows):
    """The new allocation row of a reservation's answer; raises what its checks found (unknown
    nodes -> 46, nodes not IN_SERVICE compute nodes -> 48, nodes in use -> 47)."""
    row = dict(rows[0])
    missing, bad, busy = row.pop("csm_missing"), row.pop("csm_bad"), row.pop("csm_busy")
    if missing:
        raise _invalid(missing)
    if bad:
        raise _unavailable(bad)
    if busy:
        raise _occupied(busy)
    return row


@defer.inlineCallbacks
def reserve(cursor, allocation, nodes, shared, row_state, check_nodes=True, check_busy=True):
    """Insert the allocation (in ``row_state``) and its nodes; fires with the new row."""
    yield cursor.execute(*reserve_statement(allocation, nodes, shared, row_state, check_nodes, check_busy))
    return reserved(rows_as_dicts(cursor.description, cursor.fetchall()))


def find_active_statement(allocation_id=None, primary_job_id=None, secondary_job_id=None, lock=False):
    """(sql, args) of the live allocation rows matching an id or a job id."""
    suffix = " FOR UPDATE" if lock else ""
    if allocation_id is not None:
        return "SELECT * FROM csm_allocation WHERE allocation_id = %s" + suffix, (allocation_id,)
    return ("SELECT * FROM csm_allocation WHERE primary_job_id = %s AND secondary_job_id = %s "
            "ORDER BY allocation_id" + suffix, (primary_job_id, secondary_job_id or 0))


def find_active(cursor, allocation_id=None, primary_job_id=None, secondary_job_id=None, lock=False):
    """The live allocation rows matching an id or a job id."""
    return fetch(cursor, *find_active_statement(allocation_id, primary_job_id, secondary_job_id, lock))


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


#: The nodes' readings as the baseline or as deltas (``%s``), -1 for a node without readings.
COUNTERS_SQL = """
WITH answered AS (UPDATE csm_allocation_node an SET %s FROM jsonb_each(%%(readings)s::jsonb) AS j(node, c)
                   WHERE an.allocation_id = %%(id)s AND an.node_name = j.node),
silent AS (UPDATE csm_allocation_node SET %s WHERE allocation_id = %%(id)s AND NOT node_name = ANY(%%(answered)s))
SELECT 1;
"""


def _counter_args(allocation_id, readings):
    return {"id": allocation_id, "readings": json.dumps(readings), "answered": list(readings)}


#: Move an allocation (only from the expected states) and its nodes to a state and store the
#: nodes' readings (``%(set)s``: as the baseline or as deltas): one statement; the moved row.
FINISH_SQL = """
WITH moved AS (UPDATE csm_allocation SET state = %%(state)s
                WHERE allocation_id = %%(id)s AND state = ANY(%%(expected)s) RETURNING *),
answered AS (UPDATE csm_allocation_node an SET state = %%(state)s, %(set)s
               FROM jsonb_each(%%(readings)s::jsonb) AS j(node, c)
              WHERE an.allocation_id IN (SELECT allocation_id FROM moved) AND an.node_name = j.node),
silent AS (UPDATE csm_allocation_node SET state = %%(state)s, %(unanswered)s
            WHERE allocation_id IN (SELECT allocation_id FROM moved) AND NOT node_name = ANY(%%(answered)s))
SELECT * FROM moved
"""


def finish_statement(allocation_id, state, expected, readings, deltas):
    """(sql, args): the allocation from one of ``expected`` to ``state`` with the nodes'
    ``readings`` {node: counters} stored as the baseline or (``deltas``) as deltas, -1 for a node
    without readings; its answer is the moved row, none when the allocation was not in
    ``expected`` (or is gone)."""
    sql = FINISH_SQL % {"set": DELTA_SET if deltas else BASELINE_SET, "unanswered": UNANSWERED_SET}
    return sql, dict(_counter_args(allocation_id, readings), state=state, expected=list(expected))


#: The start of a delete: the live row as it was, the allocation and its nodes moved to
#: deleting-mcast (when the nodes need the epilog) or deleting, and its nodes; one statement.
DELETE_START_SQL = """
WITH old AS (SELECT * FROM csm_allocation WHERE allocation_id = %(id)s),
moved AS (UPDATE csm_allocation a
             SET state = CASE WHEN a.state = ANY(%(needs_epilog)s) THEN 'deleting-mcast' ELSE 'deleting' END
           WHERE a.allocation_id = %(id)s RETURNING a.allocation_id, a.state),
held AS (UPDATE csm_allocation_node an SET state = moved.state FROM moved
          WHERE an.allocation_id = moved.allocation_id RETURNING an.node_name)
SELECT old.*, (SELECT coalesce(array_agg(node_name ORDER BY node_name), '{}') FROM held) AS csm_nodes FROM old
"""


def delete_start_statement(allocation_id, needs_epilog):
    """(sql, args) of ``DELETE_START_SQL``; its answer is the row (before the move) with
    ``csm_nodes``, or none when the allocation is not active."""
    return DELETE_START_SQL, {"id": allocation_id, "needs_epilog": list(needs_epilog)}


#: An allocation ends (one round trip, one transaction): the final readings as deltas (when
#: there are readings), the allocation, its nodes and open steps to history, its final state
#: closing its state history; the answer is the history row.
HISTORY_SQL = """
SELECT fn_csm_allocation_history_dump(%(id)s, now()::timestamp, %(exit_status)s, %(final)s);
WITH closed AS (INSERT INTO csm_allocation_state_history (history_time, allocation_id, exit_status, state)
                VALUES (now(), %(id)s, %(exit_status)s, %(final)s))
SELECT * FROM csm_allocation_history WHERE allocation_id = %(id)s ORDER BY history_time DESC LIMIT 1
"""
DELTAS_SQL = COUNTERS_SQL % (DELTA_SET, UNANSWERED_SET)


def history_statement(allocation_id, exit_status, final_state, readings=None):
    """(sql, args) of ``HISTORY_SQL``, with ``readings`` {node: counters} stored as deltas first."""
    args = {"id": allocation_id, "exit_status": exit_status, "final": final_state}
    if readings is None:
        return HISTORY_SQL, args
    args.update(_counter_args(allocation_id, readings))
    return DELTAS_SQL + HISTORY_SQL, args


@defer.inlineCallbacks
def node_accounting(cursor, allocation_id):
    """The per-node counters of an allocation (live, else from history)."""
    rows = yield fetch(cursor, "SELECT * FROM csm_allocation_node WHERE allocation_id = %s ORDER BY node_name",
                       (allocation_id,))
    if not rows:
        rows = yield fetch(cursor, "SELECT * FROM csm_allocation_node_history WHERE allocation_id = %s "
                                   "ORDER BY node_name", (allocation_id,))
    return rows


# -- the same steps for several allocations at once (csm.db.merged) ---------------------

#: ``FINISH_SQL`` for the allocations ``ids``; ``readings`` is {allocation id: {node: counters}}.
FINISH_MANY_SQL = """
WITH moved AS (UPDATE csm_allocation SET state = %%(state)s
                WHERE allocation_id = ANY(%%(ids)s) AND state = ANY(%%(expected)s) RETURNING *),
answered AS (UPDATE csm_allocation_node an SET state = %%(state)s, %(set)s
               FROM moved, jsonb_each(%%(readings)s::jsonb -> moved.allocation_id::text) AS j(node, c)
              WHERE an.allocation_id = moved.allocation_id AND an.node_name = j.node),
silent AS (UPDATE csm_allocation_node an SET state = %%(state)s, %(unanswered)s FROM moved
            WHERE an.allocation_id = moved.allocation_id
              AND NOT coalesce((%%(readings)s::jsonb -> moved.allocation_id::text) ? an.node_name, false))
SELECT * FROM moved
"""


def _by_id(readings_of):
    return json.dumps({str(allocation_id): readings for allocation_id, readings in readings_of})


def finish_many_statement(items, state, expected, deltas):
    """(sql, args) of ``finish_statement`` for each (allocation_id, readings) of ``items``."""
    sql = FINISH_MANY_SQL % {"set": DELTA_SET if deltas else BASELINE_SET, "unanswered": UNANSWERED_SET}
    return sql, {"ids": [i for i, _ in items], "readings": _by_id(items), "state": state, "expected": list(expected)}


#: ``DELETE_START_SQL`` for the allocations ``ids``.
DELETE_START_MANY_SQL = """
WITH old AS (SELECT * FROM csm_allocation WHERE allocation_id = ANY(%(ids)s)),
moved AS (UPDATE csm_allocation a
             SET state = CASE WHEN a.state = ANY(%(needs_epilog)s) THEN 'deleting-mcast' ELSE 'deleting' END
           WHERE a.allocation_id = ANY(%(ids)s) RETURNING a.allocation_id, a.state),
held AS (UPDATE csm_allocation_node an SET state = moved.state FROM moved
          WHERE an.allocation_id = moved.allocation_id RETURNING an.allocation_id, an.node_name)
SELECT old.*, (SELECT coalesce(array_agg(node_name ORDER BY node_name), '{}') FROM held
                WHERE held.allocation_id = old.allocation_id) AS csm_nodes FROM old
"""


def delete_start_many_statement(ids, needs_epilog):
    return DELETE_START_MANY_SQL, {"ids": list(ids), "needs_epilog": list(needs_epilog)}


#: ``HISTORY_SQL`` (with the deltas first, when ``%(readings)s`` is not null) for the
#: allocations ``ids``, each with its exit status and final state.
HISTORY_MANY_SQL = """
WITH answered AS (UPDATE csm_allocation_node an SET %s
                    FROM jsonb_each(%%(readings)s::jsonb) AS r(id, nodes), jsonb_each(r.nodes) AS j(node, c)
                   WHERE an.allocation_id = r.id::bigint AND an.node_name = j.node),
silent AS (UPDATE csm_allocation_node an SET %s
            WHERE %%(readings)s::jsonb IS NOT NULL AND an.allocation_id = ANY(%%(ids)s)
              AND NOT coalesce((%%(readings)s::jsonb -> an.allocation_id::text) ? an.node_name, false))
SELECT 1;
SELECT fn_csm_allocation_history_dump(u.id, now()::timestamp, u.exit_status, u.final)
  FROM unnest(%%(ids)s::bigint[], %%(exit_statuses)s::int[], %%(finals)s::text[]) AS u(id, exit_status, final);
WITH closed AS (INSERT INTO csm_allocation_state_history (history_time, allocation_id, exit_status, state)
                SELECT now(), u.id, u.exit_status, u.final
                  FROM unnest(%%(ids)s::bigint[], %%(exit_statuses)s::int[], %%(finals)s::text[])
                       AS u(id, exit_status, final))
SELECT DISTINCT ON (allocation_id) * FROM csm_allocation_history WHERE allocation_id = ANY(%%(ids)s)
 ORDER BY allocation_id, history_time DESC
""" % (DELTA_SET, UNANSWERED_SET)


def history_many_statement(items, with_readings):
    """(sql, args) of ``history_statement`` for each (allocation_id, exit_status, final_state,
    readings) of ``items`` (their readings all None unless ``with_readings``)."""
    return HISTORY_MANY_SQL, {"ids": [item[0] for item in items], "exit_statuses": [item[1] for item in items],
                              "finals": [item[2] for item in items],
                              "readings": _by_id((item[0], item[3]) for item in items) if with_readings else None}


#: ``RESERVE_SQL`` for several creates whose nodes do not overlap (each allocation's checks
#: see what others committed, not each other's inserts), with the same flags and the same
#: given columns; ``%(items)s`` is [{"i": index, "nodes": [...], "v": {column: value}}].
#: Each item gets its row (``csm_i``): the new allocation, or what its checks found.
RESERVE_MANY_SQL = """
SELECT 1 FROM csm_node WHERE node_name = ANY(%%(nodes)s) ORDER BY node_name FOR UPDATE;
WITH items AS (SELECT (e->>'i')::int AS i, e->'v' AS v, e->'nodes' AS nodes
                 FROM jsonb_array_elements(%%(items)s::jsonb) AS e),
want AS (SELECT items.i, n.node_name FROM items, jsonb_array_elements_text(items.nodes) AS n(node_name)),
found AS (SELECT w.i, n.node_name, n.state::text AS state, n.type FROM want w JOIN csm_node n USING (node_name)),
missing AS (SELECT i, node_name FROM want EXCEPT SELECT i, node_name FROM found),
bad AS (SELECT * FROM found WHERE %%(check_state)s AND (state <> 'IN_SERVICE' OR type <> 'compute')),
busy AS (SELECT w.i, an.node_name, an.allocation_id FROM want w JOIN csm_allocation_node an USING (node_name)
          WHERE %%(check_busy)s AND NOT an.state = ANY(%%(idle)s) AND (NOT %%(shared)s OR NOT an.shared)),
errors AS (SELECT items.i,
                  (SELECT array_agg(node_name ORDER BY node_name) FROM missing m WHERE m.i = items.i) AS csm_missing,
                  (SELECT jsonb_agg(jsonb_build_object('node_name', b.node_name, 'state', b.state, 'type', b.type)
                                    ORDER BY b.node_name) FROM bad b WHERE b.i = items.i) AS csm_bad,
                  (SELECT jsonb_agg(jsonb_build_object('node_name', u.node_name, 'allocation_id', u.allocation_id)
                                    ORDER BY u.node_name, u.allocation_id) FROM busy u WHERE u.i = items.i) AS csm_busy
             FROM items),
ok AS (SELECT items.i, items.v, nextval(pg_get_serial_sequence('csm_allocation', 'allocation_id')) AS id
         FROM items JOIN errors USING (i)
        WHERE csm_missing IS NULL AND csm_bad IS NULL AND csm_busy IS NULL),
made AS (INSERT INTO csm_allocation (allocation_id, %(columns)s)
         SELECT ok.id, %(values)s FROM ok, jsonb_populate_record(NULL::csm_allocation, ok.v) AS r RETURNING *),
placed AS (INSERT INTO csm_allocation_node (allocation_id, node_name, state, shared)
            SELECT ok.id, w.node_name, %%(state)s, %%(shared)s FROM ok JOIN want w USING (i))
SELECT errors.i AS csm_i, made.*, errors.csm_missing, errors.csm_bad, errors.csm_busy
  FROM errors LEFT JOIN ok USING (i) LEFT JOIN made ON made.allocation_id = ok.id
"""


def reserve_key(allocation, shared, row_state, check_nodes=True, check_busy=True):
    """What a create's reservation merges by: its flags and the columns it gives."""
    return (tuple(c for c in ALLOCATION_INPUT if c != "num_nodes" and (c == "state" or allocation.get(c) is not None)),
            bool(shared), row_state, bool(check_nodes), bool(check_busy))


def reserve_many_statement(key, items):
    """(sql, args) of ``RESERVE_MANY_SQL`` for the (allocation, nodes) ``items`` of one key."""
    columns, shared, row_state, check_nodes, check_busy = key
    columns = ("num_nodes",) + columns
    sql = RESERVE_MANY_SQL % {"columns": ", ".join(columns), "values": ", ".join("r." + c for c in columns)}
    entries = [{"i": i, "nodes": list(nodes), "v": dict({c: allocation.get(c) for c in columns},
                                                         state=row_state, num_nodes=len(nodes))}
               for i, (allocation, nodes) in enumerate(items)]
    return sql, {"items": json.dumps(entries, default=str), "nodes": sorted({n for _, ns in items for n in ns}),
                 "check_state": check_nodes, "check_busy": check_busy, "shared": shared,
                 "idle": list(IDLE_STATES), "state": row_state}


def _split_by_index(rows, items):
    mine = {row.pop("csm_i"): [row] for row in rows}
    return [mine.get(i, []) for i in range(len(items))]


def _split_by_id(rows, items):
    """Each item's rows (by its allocation id, the item's first value)."""
    mine = {}
    for row in rows:
        mine.setdefault(row["allocation_id"], []).append(row)
    return [mine.get(item[0], []) for item in items]


#: The create's and delete's steps as ``merged.Kind``s. FINISH: key (state, expected, deltas),
#: item (allocation_id, readings); DELETE_START: key needs_epilog, item (allocation_id,);
#: HISTORY: key "with readings", item (allocation_id, exit_status, final_state, readings).
FINISH = merged.Kind(lambda key, item: finish_statement(item[0], key[0], key[1], item[1], key[2]),
                     lambda key, items: finish_many_statement(items, *key), _split_by_id)
DELETE_START = merged.Kind(lambda key, item: delete_start_statement(item[0], key),
                           lambda key, items: delete_start_many_statement([item[0] for item in items], key),
                           _split_by_id)
RESERVE = merged.Kind(lambda key, item: reserve_statement(item[0], item[1], *key[1:]), reserve_many_statement,
                      _split_by_index, resources=lambda item: item[1])
HISTORY = merged.Kind(lambda key, item: history_statement(*item), lambda key, items: history_many_statement(items, key),
                      _split_by_id)


def _some(names, most=8):
    names = sorted(names)
    return ", ".join(names[:most]) + (" and %d more" % (len(names) - most) if len(names) > most else "")
