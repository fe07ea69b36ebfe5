"""Allocation queries on the master, and ``csm_allocation_update_history``."""

from twisted.internet import defer

from csm.api.allocation import check_owner
from csm.api.wm_commands import (ALLOCATION_QUERY, ALLOCATION_QUERY_ACTIVE_ALL, ALLOCATION_QUERY_DETAILS,
                                 ALLOCATION_RESOURCES_QUERY, ALLOCATION_UPDATE_HISTORY, NODE_FIND_JOB)
from csm.db import allocations
from csm.db.queries import Select, query_dicts
from csm.errors import CSMError, ErrorCode

LIVE_NODES = ("(SELECT array_agg(node_name ORDER BY node_name) FROM csm_allocation_node n "
              "WHERE n.allocation_id = a.allocation_id) AS compute_nodes")
OLD_NODES = ("(SELECT array_agg(DISTINCT node_name ORDER BY node_name) FROM csm_allocation_node_history n "
             "WHERE n.allocation_id = a.allocation_id) AS compute_nodes")
HISTORY_FIELDS = ("history_time", "end_time", "exit_status", "archive_history_time")
COLUMNS = allocations.ALLOCATION_INPUT
LIVE = "SELECT a.allocation_id, %s, %s, %s FROM csm_allocation a" % (
    ", ".join("a." + c for c in COLUMNS), ", ".join("NULL::timestamp AS %s" % c if c != "exit_status" else
                                                    "NULL::int AS exit_status" for c in HISTORY_FIELDS), LIVE_NODES)
OLD = "SELECT a.allocation_id, %s, %s, %s FROM csm_allocation_history a" % (
    ", ".join("a." + c for c in COLUMNS), ", ".join("a." + c for c in HISTORY_FIELDS), OLD_NODES)


def _nest_history(row):
    ended = {c: row.pop(c) for c in HISTORY_FIELDS}
    row["history"] = ended if ended["history_time"] is not None else None
    return row


@defer.inlineCallbacks
def find(ctx, allocation_id=None, primary_job_id=None, secondary_job_id=None):
    """Allocations by id or job id, live ones first, then history (newest first)."""
    if allocation_id is not None:
        condition, args = " WHERE a.allocation_id = %s", [allocation_id]
    else:
        condition = " WHERE a.primary_job_id = %s" + (" AND a.secondary_job_id = %s"
                                                       if secondary_job_id is not None else "")
        args = [primary_job_id] + ([secondary_job_id] if secondary_job_id is not None else [])
    rows = yield query_dicts(ctx.db, "(%s%s) UNION ALL (%s%s) ORDER BY history_time DESC NULLS FIRST, "
                                            "allocation_id" % (LIVE, condition, OLD, condition), args + args)
    return [_nest_history(row) for row in rows]


@defer.inlineCallbacks
def query(ctx, body):
    rows = yield find(ctx, body.get("allocation_id"), body.get("primary_job_id"), body.get("secondary_job_id"))
    if not rows:
        raise CSMError(ErrorCode.CSMI_NO_RESULTS, "no allocation matches")
    return {"num_allocations": len(rows), "allocations": rows}


@defer.inlineCallbacks
def query_active_all(ctx, body):
    query = Select(LIVE).order_by(None, (), "allocation_id").page(body.get("limit"), body.get("offset"))
    rows = yield query_dicts(ctx.db, *query.sql())
    wanted = body.get("fields")
    if wanted == ["%"]:  # CAST's -f %: every field
        wanted = None
    unknown = sorted(set(wanted or ()) - set(rows[0] if rows else ()) - {"history"}) if rows else []
    if unknown:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "unknown fields in --fields: %s" % ", ".join(unknown))
    rows = [_nest_history(row) for row in rows]
    for row in rows:
        row.pop("history")
    if wanted:
        rows = [{key: row[key] for key in wanted if key in row} for row in rows]
    return {"num_allocations": len(rows), "allocations": rows}


@defer.inlineCallbacks
def query_details(ctx, body):
    allocation_id = body["allocation_id"]
    rows = yield find(ctx, allocation_id)
    if not rows:
        raise CSMError(ErrorCode.CSMI_NO_RESULTS, "allocation %d not found" % allocation_id)
    check_owner(ctx, rows[0])
    db = ctx.db
    steps = yield query_dicts(db, "SELECT step_id, NULL::timestamp AS end_time, (SELECT array_agg(node_name ORDER BY "
                                  "node_name) FROM csm_step_node n WHERE n.allocation_id = s.allocation_id AND "
                                  "n.step_id = s.step_id) AS compute_nodes FROM csm_step s WHERE allocation_id = %s "
                                  "UNION ALL SELECT step_id, end_time, (SELECT array_agg(node_name ORDER BY "
                                  "node_name) FROM csm_step_node_history n WHERE n.allocation_id = s.allocation_id "
                                  "AND n.step_id = s.step_id) FROM csm_step_history s WHERE allocation_id = %s "
                                  "ORDER BY step_id", (allocation_id, allocation_id))
    accounting = yield db.runInteraction(allocations.node_accounting, allocation_id)
    for row in accounting:
        for key in ("allocation_id", "history_time", "operation", "archive_history_time"):
            row.pop(key, None)
    transitions = yield query_dicts(db, "SELECT history_time, state FROM csm_allocation_state_history "
                                        "WHERE allocation_id = %s ORDER BY history_time", (allocation_id,))
    return {"allocation": rows[0], "num_steps": len(steps), "steps": steps, "node_accounting": accounting,
            "state_transitions": transitions}


def resources_query(ctx, body):
    query = (Select("SELECT n.node_name, (n.state = 'IN_SERVICE') AS ready FROM csm_allocation_node an "
                    "JOIN csm_node n USING (node_name) WHERE an.allocation_id = %s", body["allocation_id"])
             .order_by(None, (), "n.node_name").page(body.get("limit"), body.get("offset")))
    return query_dicts(ctx.db, *query.sql()).addCallback(lambda rows: {"results": rows})


UPDATABLE_HISTORY = ("user_name", "user_id", "user_group_id", "account", "comment", "job_name", "reservation")


@defer.inlineCallbacks
def update_history(ctx, body):
    changes = {key: body[key] for key in UPDATABLE_HISTORY if body.get(key) is not None}
    if not changes:
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "nothing to update")
    rows = yield query_dicts(ctx.db, "UPDATE csm_allocation_history SET %s WHERE allocation_id = %%s "
                                            "RETURNING allocation_id"
                             % ", ".join("%s = %%s" % key for key in changes),
                             list(changes.values()) + [body["allocation_id"]])
    if not rows:
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not in history (only ended allocations "
                                                       "can be updated)" % body["allocation_id"])
    return {"allocation_id": body["allocation_id"], "updated": sorted(changes)}


FIND_JOB = """
SELECT * FROM (
  SELECT an.node_name, a.allocation_id, a.primary_job_id, a.user_name, a.num_nodes, a.begin_time,
         NULL::timestamp AS end_time
    FROM csm_allocation_node an JOIN csm_allocation a USING (allocation_id)
  UNION ALL
  SELECT DISTINCT h.node_name, a.allocation_id, a.primary_job_id, a.user_name, a.num_nodes, a.begin_time, a.end_time
    FROM csm_allocation_node_history h JOIN csm_allocation_history a USING (allocation_id)) j"""
FIND_JOB_ORDER = {"a": "node_name, allocation_id", "b": "node_name DESC, allocation_id DESC",
                  "c": "allocation_id", "d": "allocation_id DESC", "e": "primary_job_id", "f": "primary_job_id DESC",
                  "g": "user_name", "h": "user_name DESC", "i": "num_nodes", "j": "num_nodes DESC",
                  "k": "begin_time", "l": "begin_time DESC", "m": "end_time", "n": "end_time DESC"}


def node_find_job(ctx, body):
    query = Select(FIND_JOB).where("node_name = ANY(%s)", list(body["node_names"]))
    query.equal("user_name", body.get("user_name"))
    query.between("begin_time", body.get("begin_time_search_begin"), body.get("begin_time_search_end"))
    query.between("end_time", body.get("end_time_search_begin"), body.get("end_time_search_end"))
    if body.get("search_range_begin"):
        query.where("(end_time IS NULL OR end_time >= %s)", body["search_range_begin"])
    if body.get("search_range_end"):
        query.where("begin_time <= %s", body["search_range_end"])
    if body.get("midpoint"):
        interval = body.get("midpoint_interval") or "0"
        query.where("begin_time <= %s::timestamp + %s::interval", body["midpoint"], interval)
        query.where("(end_time IS NULL OR end_time >= %s::timestamp - %s::interval)", body["midpoint"], interval)
    code = body.get("order_by") or "a"
    if code not in FIND_JOB_ORDER:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid order_by %r (a-n)" % code)
    query.order = " ORDER BY %s NULLS LAST" % FIND_JOB_ORDER[code]
    query.page(body.get("limit"), body.get("offset"))
    return query_dicts(ctx.db, *query.sql()).addCallback(lambda rows: {"results": rows})


HANDLERS = {ALLOCATION_QUERY.cmd_id: query, ALLOCATION_QUERY_ACTIVE_ALL.cmd_id: query_active_all,
            ALLOCATION_QUERY_DETAILS.cmd_id: query_details, ALLOCATION_RESOURCES_QUERY.cmd_id: resources_query,
            ALLOCATION_UPDATE_HISTORY.cmd_id: update_history, NODE_FIND_JOB.cmd_id: node_find_job}
