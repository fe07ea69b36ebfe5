"""Steps on the master: begin, end and the step queries.

A step lives inside a running allocation, on some of its nodes. When the step
has user flags, the privileged prolog (``--type step``) runs on its nodes at
begin and the epilog at end, by multicast; a failed step prolog removes the
step again and raises the nodes' RAS events, as an allocation's does.
"""

import json

from twisted.internet import defer

from csm.api import multicast
from csm.api.allocation import check_owner, multi_error, raise_node_events
from csm.api.wm_commands import STEP_BEGIN, STEP_END, STEP_QUERY, STEP_QUERY_ACTIVE_ALL, STEP_QUERY_DETAILS
from csm.db import allocations
from csm.db.queries import Select, query_dicts
from csm.errors import CSMError, ErrorCode

STEP_COLUMNS = ("step_id", "allocation_id", "begin_time", "status", "executable", "working_directory", "argument",
                "environment_variable", "num_nodes", "num_processors", "num_gpus", "projected_memory", "num_tasks",
                "user_flags")
END_FIELDS = ("status", "exit_status", "error_message", "cpu_stats", "gpu_stats", "io_stats", "memory_stats",
              "max_memory", "omp_thread_limit", "total_u_time", "total_s_time")
HISTORY_COLUMNS = ("history_time", "end_time", "exit_status", "error_message", "cpu_stats", "total_u_time",
                   "total_s_time", "omp_thread_limit", "gpu_stats", "memory_stats", "max_memory", "io_stats")


def _step_body(step, script):
    return {"script": script, "kind": "step", "allocation_id": step["allocation_id"], "step_id": step["step_id"],
            "user_flags": step.get("user_flags") or ""}


@defer.inlineCallbacks
def _allocation(ctx, allocation_id):
    rows = yield ctx.db.runInteraction(allocations.find_active, allocation_id)
    if not rows:
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not active" % allocation_id)
    check_owner(ctx, rows[0])
    return rows[0]


@defer.inlineCallbacks
def _insert_step(cursor, body, nodes):
    held = yield allocations.nodes_of(cursor, body["allocation_id"])
    outside = sorted(set(nodes) - set(held))
    if outside:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "not nodes of allocation %d: %s"
                       % (body["allocation_id"], ", ".join(outside)))
    existing = yield allocations.fetch(cursor, "SELECT 1 FROM csm_step WHERE step_id = %s AND allocation_id = %s",
                                       (body["step_id"], body["allocation_id"]))
    if existing:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "step %d of allocation %d exists already"
                       % (body["step_id"], body["allocation_id"]))
    values = {c: body.get(c) for c in STEP_COLUMNS if c not in ("begin_time", "num_nodes")}
    values["num_nodes"] = len(nodes)
    columns = [c for c in values if values[c] is not None]
    rows = yield allocations.fetch(cursor, "INSERT INTO csm_step (begin_time, %s) VALUES (now(), %s) RETURNING *"
                                   % (", ".join(columns), ", ".join(["%s"] * len(columns))),
                                   [values[c] for c in columns])
    yield cursor.execute("INSERT INTO csm_step_node (step_id, allocation_id, node_name) "
                         "SELECT %s, %s, unnest(%s::text[])", (body["step_id"], body["allocation_id"], nodes))
    return rows[0]


def _end_step(cursor, allocation_id, step_id, end):
    return cursor.execute("SELECT fn_csm_step_history_dump(%s, %s, %s::jsonb)",
                          (step_id, allocation_id, json.dumps(end)))


@defer.inlineCallbacks
def begin(ctx, body):
    db = ctx.db
    allocation = yield _allocation(ctx, body["allocation_id"])
    if allocation["state"] != "running":
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "allocation %d is %s: steps begin in running allocations"
                       % (allocation["allocation_id"], allocation["state"]))
    nodes = sorted(set(body["compute_nodes"]))
    step = yield db.runInteraction(_insert_step, body, nodes)
    if step.get("user_flags"):
        results = yield multicast.multicast(ctx.daemon, STEP_BEGIN.cmd_id, nodes, _step_body(step, "prolog"),
                                            max(1.0, ctx.remaining() - 2.0))
        if multicast.node_errors(results):
            yield db.runInteraction(_end_step, step["allocation_id"], step["step_id"],
                                    {"status": "killed", "exit_status": -1, "error_message": "step prolog failed"})
            yield raise_node_events(ctx, results, "prolog", step["allocation_id"])
            raise multi_error(results, "step %d of allocation %d removed: the step prolog"
                              % (step["step_id"], step["allocation_id"]))
    ctx.daemon.job_logs.transaction("allocation-step", "%d.%d" % (step["allocation_id"], step["step_id"]),
                                    ctx.message.message_id, dict(step, compute_nodes=nodes))
    return dict(step, compute_nodes=nodes)


@defer.inlineCallbacks
def end(ctx, body):
    db = ctx.db
    yield _allocation(ctx, body["allocation_id"])
    steps = yield query_dicts(db, "SELECT * FROM csm_step WHERE allocation_id = %s AND step_id = %s",
                              (body["allocation_id"], body["step_id"]))
    if not steps:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "step %d of allocation %d is not active"
                       % (body["step_id"], body["allocation_id"]))
    step = steps[0]
    nodes = [row["node_name"] for row in (yield query_dicts(
        db, "SELECT node_name FROM csm_step_node WHERE allocation_id = %s AND step_id = %s ORDER BY node_name",
        (body["allocation_id"], body["step_id"])))]
    results = {}
    if step.get("user_flags"):
        results = yield multicast.multicast(ctx.daemon, STEP_END.cmd_id, nodes, _step_body(step, "epilog"),
                                            max(1.0, ctx.remaining() - 2.0))
    end_record = {key: body.get(key) for key in END_FIELDS if body.get(key) is not None}
    yield db.runInteraction(_end_step, body["allocation_id"], body["step_id"], end_record)
    ctx.daemon.job_logs.transaction("allocation-step", "%d.%d" % (body["allocation_id"], body["step_id"]),
                                    ctx.message.message_id, dict(step, compute_nodes=nodes, **end_record))
    if multicast.node_errors(results):
        yield raise_node_events(ctx, results, "epilog", body["allocation_id"])
        raise multi_error(results, "step %d of allocation %d ended; the step epilog"
                          % (body["step_id"], body["allocation_id"]))
    return {"allocation_id": body["allocation_id"], "step_id": body["step_id"]}


# -- queries ---------------------------------------------------------------------------

NODES = ("(SELECT array_agg(node_name ORDER BY node_name) FROM {nodes} n "
         "WHERE n.step_id = s.step_id AND n.allocation_id = s.allocation_id) AS compute_nodes")
STEP_LIST = ", ".join("s." + c for c in STEP_COLUMNS)
ACTIVE = "SELECT %s, %s, %s FROM csm_step s WHERE s.allocation_id = %%s" % (
    STEP_LIST, ", ".join("NULL AS " + c for c in HISTORY_COLUMNS), NODES.format(nodes="csm_step_node"))
HISTORY = "SELECT %s, %s, %s FROM csm_step_history s WHERE s.allocation_id = %%s" % (
    STEP_LIST, ", ".join("s." + c for c in HISTORY_COLUMNS), NODES.format(nodes="csm_step_node_history"))


@defer.inlineCallbacks
def _query(ctx, body, history=True, details=False):
    """Active steps (and those in history) of an allocation; history fields nest under ``history``."""
    yield _allocation_or_history(ctx, body["allocation_id"])
    selects, args = [], []
    for base in (ACTIVE, HISTORY) if history else (ACTIVE,):
        args.append(body["allocation_id"])
        if body.get("step_id") is not None:
            base += " AND s.step_id = %s"
            args.append(body["step_id"])
        selects.append(base)
    sql = " UNION ALL ".join("(%s)" % s for s in selects) + " ORDER BY step_id, begin_time"
    sql += Select("").page(body.get("limit"), body.get("offset")).paging
    rows = yield query_dicts(ctx.db, sql, args)
    for row in rows:
        ended = {c: row.pop(c) for c in HISTORY_COLUMNS}
        row["history"] = ended if ended["history_time"] is not None else None
        if not details:
            row.pop("compute_nodes", None)
    return {"steps": rows}


@defer.inlineCallbacks
def _allocation_or_history(ctx, allocation_id):
    """The private check against the allocation, live or in history."""
    rows = yield query_dicts(ctx.db, "SELECT allocation_id, user_id, user_name FROM csm_allocation "
                                            "WHERE allocation_id = %s UNION ALL SELECT allocation_id, user_id, "
                                            "user_name FROM csm_allocation_history WHERE allocation_id = %s",
                             (allocation_id, allocation_id))
    if rows:
        check_owner(ctx, rows[0])


def query(ctx, body):
    return _query(ctx, body)


def query_active_all(ctx, body):
    return _query(ctx, body, history=False)


def query_details(ctx, body):
    return _query(ctx, body, details=True)


HANDLERS = {STEP_BEGIN.cmd_id: begin, STEP_END.cmd_id: end, STEP_QUERY.cmd_id: query,
            STEP_QUERY_ACTIVE_ALL.cmd_id: query_active_all, STEP_QUERY_DETAILS.cmd_id: query_details}
