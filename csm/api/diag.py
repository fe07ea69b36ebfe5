"""Diagnostics API handlers: runs and results on the master (a compute's check: ``compute_handlers.py``)."""

from twisted.internet import defer

from csm.api import multicast
from csm.api.commands import API_IDS
from csm.api.diag_commands import DIAG_CHECK
from csm.db.queries import Select, query_dicts, query_results
from csm.errors import CSMError, ErrorCode

RUNS = """
SELECT * FROM (
  SELECT run_id, allocation_id, begin_time, NULL::timestamp AS end_time, NULL::timestamp AS history_time,
         rtrim(status) AS diag_status, inserted_ras, log_dir, cmd_line FROM csm_diag_run
  UNION ALL
  SELECT run_id, allocation_id, begin_time, end_time, history_time, rtrim(status), inserted_ras, log_dir, cmd_line
    FROM csm_diag_run_history) r"""
RESULT_COLUMNS = "run_id, test_name, node_name, serial_number, begin_time, end_time, rtrim(status) AS status, log_file"


def _ids(body, key):
    try:
        return [int(value) for value in body.get(key) or ()]
    except ValueError:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "%s: expected integers, got %s"
                       % (key, ",".join(body[key]))) from None


def run_begin(ctx, body):
    @defer.inlineCallbacks
    def begin(cursor):
        run_id = body.get("run_id")
        if run_id is None:
            yield cursor.execute("LOCK TABLE csm_diag_run IN SHARE ROW EXCLUSIVE MODE")
            yield cursor.execute("SELECT greatest((SELECT max(run_id) FROM csm_diag_run),"
                                 " (SELECT max(run_id) FROM csm_diag_run_history), 0) + 1")
            run_id = cursor.fetchone()[0]
        else:
            yield cursor.execute("SELECT 1 FROM csm_diag_run_history WHERE run_id = %s", (run_id,))
            if cursor.fetchone():
                raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "diagnostic run %d has ended already" % run_id)
        yield cursor.execute("INSERT INTO csm_diag_run (run_id, allocation_id, log_dir, cmd_line)"
                             " VALUES (%s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING RETURNING run_id",
                             (run_id, body["allocation_id"], body["log_dir"], body.get("cmd_line")))
        if not cursor.fetchone():
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "diagnostic run %d is running already" % run_id)
        return {"run_id": run_id}
    return ctx.db.runInteraction(begin)


def run_end(ctx, body):
    d = ctx.db.runQuery("SELECT fn_csm_diag_run_history_dump(%s, NULL, %s, %s)",
                               (body["run_id"], body["status"], bool(body.get("inserted_ras"))))

    def ended(rows):
        if not rows or not rows[0][0]:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "diagnostic run %d is not running" % body["run_id"])
        return {"run_id": body["run_id"], "status": body["status"]}
    return d.addCallback(ended)


def result_create(ctx, body):
    if len(body["status"]) > 16:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "status: at most 16 characters")

    @defer.inlineCallbacks
    def create(cursor):
        yield cursor.execute("SELECT 1 FROM csm_diag_run WHERE run_id = %s FOR SHARE", (body["run_id"],))
        if not cursor.fetchone():
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "diagnostic run %d is not running" % body["run_id"])
        yield cursor.execute("INSERT INTO csm_diag_result (run_id, test_name, node_name, serial_number, begin_time,"
                             " status, log_file) VALUES (%s, %s, %s, %s, coalesce(%s::timestamp, now()), %s, %s)",
                             (body["run_id"], body["test_name"], body["node_name"], body.get("serial_number"),
                              body.get("begin_time"), body["status"], body.get("log_file")))
        return {}
    return ctx.db.runInteraction(create)


def run_query(ctx, body):
    query = (Select(RUNS)
             .any_of("allocation_id", [i for i in _ids(body, "allocation_ids") if i >= 0])
             .any_of("run_id", [i for i in _ids(body, "run_ids") if i > 0])
             .any_of("diag_status", body.get("status"))
             .equal("inserted_ras", body.get("inserted_ras"))
             .between("begin_time", body.get("begin_time_search_begin"), body.get("begin_time_search_end"))
             .between("end_time", body.get("end_time_search_begin"), body.get("end_time_search_end"))
             .order_by(None, (), "run_id").page(body.get("limit"), body.get("offset")))
    return query_results(ctx.db, query, "runs")


@defer.inlineCallbacks
def run_query_details(ctx, body):
    db = ctx.db
    runs = yield query_dicts(db, RUNS + " WHERE run_id = %s ORDER BY history_time DESC NULLS FIRST LIMIT 1",
                             (body["run_id"],))
    if not runs:
        raise CSMError(ErrorCode.CSMI_NO_RESULTS, "diagnostic run %d not found" % body["run_id"])
    if runs[0]["history_time"] is None:
        sql = "SELECT NULL::timestamp AS history_time, %s FROM csm_diag_result" % RESULT_COLUMNS
    else:
        sql = "SELECT history_time, %s FROM csm_diag_result_history" % RESULT_COLUMNS
    details = yield query_dicts(db, sql + " WHERE run_id = %s ORDER BY node_name, test_name, begin_time",
                                (body["run_id"],))
    return {"run_data": runs[0], "num_details": len(details), "details": details}


@defer.inlineCallbacks
def check_master(ctx, body):
    """Send the check to every node (multicast); each node's exit status and output, or why it has none."""
    db = ctx.db
    rows = yield query_dicts(db, "SELECT node_name FROM csm_node WHERE node_name = ANY(%s) AND type = 'compute'",
                             (body["node_names"],))
    known = sorted(row["node_name"] for row in rows)
    unknown = sorted(set(body["node_names"]) - set(known))
    if unknown:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "not compute nodes: %s" % ",".join(unknown))
    timeout = min(float(body["check_timeout"]) + 2 * multicast.LEVEL_MARGIN + 1, ctx.remaining() - 1.0)
    check = {k: body[k] for k in ("test_name", "script", "run_id", "check_timeout") if body.get(k) is not None}
    results = yield multicast.multicast(ctx.daemon, ctx.message.command, known, check, timeout)
    nodes = {}
    for node, result in sorted(results.items()):
        if result["errcode"]:
            nodes[node] = {"errcode": result["errcode"], "errmsg": result["errmsg"]}
        else:
            nodes[node] = result["output"]
    return {"test_name": body["test_name"], "nodes": nodes}


HANDLERS = {API_IDS[name]: handler for name, handler in (
    ("diag_run_begin", run_begin),
    ("diag_run_end", run_end),
    ("diag_result_create", result_create),
    ("diag_run_query", run_query),
    ("diag_run_query_details", run_query_details),
)}
HANDLERS[DIAG_CHECK.cmd_id] = check_master
