"""RAS API handlers on the master: events (create, query, acknowledge) and types."""

from twisted.internet import defer

from csm.api import commands
from csm.db.queries import Select, query_dicts, query_results
from csm.errors import CSMError, ErrorCode
from csm.ras.engine import parse_time_stamp
from csm.users import user_name_of
from csm.wire import Flags

EVENT_COLUMNS = ("rec_id", "msg_id", "severity", "time_stamp", "master_time_stamp", "location_name", "count",
                 "control_action", "message", "ack_time")
EVENT_VIEW = ("SELECT rec_id, msg_id, severity, time_stamp, master_time_stamp, location_name, count, "
              "control_action, message, raw_data, kvcsv, acked_by, ack_time FROM csm_ras_event_action_view")
#: csm_ras_event_query -O: a/b, c/d, ... pick these columns ascending/descending.
CAST_ORDER = ("rec_id", "time_stamp", "master_time_stamp", "location_name", "msg_id", "severity")
TYPE_COLUMNS = ("msg_id", "severity", "message", "description", "control_action", "threshold_count",
                "threshold_period", "enabled", "set_state", "visible_to_users")


def event_create(ctx, body):
    """Queue the event; answer once it is written, or at once ("queued") while the database
    is away or the writes queued meanwhile are still being written, and as soon as an
    outage begins: a create never waits for the database to come back."""
    db = ctx.db
    event = dict(body, time_stamp=parse_time_stamp(body.get("time_stamp")))
    if ctx.message.flags & Flags.NOREPLY:
        ctx.daemon.ras.submit(event)  # fire and forget: no Deferred
        return {}
    d = ctx.daemon.ras.create(event)
    if not db.writes_promptly:
        d.addErrback(lambda f: None)
        return {"queued": True}
    d.addCallback(lambda outcome: {k: outcome[k] for k in ("stored", "rec_id", "count", "suppressed",
                                                            "below_threshold") if k in outcome})
    return db.unless_outage(d, {"queued": True})


def event_query(ctx, body):
    query = (Select(EVENT_VIEW)
             .like("msg_id", body.get("msg_id"))
             .equal("severity", body.get("severity"))
             .like("location_name", body.get("location_name"))
             .equal("control_action", body.get("control_action"))
             .like("message", body.get("message"))
             .between("time_stamp", body.get("start_time_stamp"), body.get("end_time_stamp"))
             .between("master_time_stamp", body.get("master_time_stamp_search_begin"),
                      body.get("master_time_stamp_search_end"))
             .equal("rec_id", body.get("rec_id")))
    if body.get("unacknowledged"):
        query.where("ack_time IS NULL")
    query.order_by_pairs(body.get("order_by"), CAST_ORDER, "rec_id").page(body.get("limit"), body.get("offset"))
    return query_results(ctx.db, query)


ALLOCATION_WINDOW = """
SELECT begin_time, NULL::timestamp AS end_time, ARRAY(SELECT node_name FROM csm_allocation_node n
        WHERE n.allocation_id = a.allocation_id) AS nodes
  FROM csm_allocation a WHERE allocation_id = %(id)s
UNION ALL
SELECT begin_time, end_time, ARRAY(SELECT DISTINCT node_name FROM csm_allocation_node_history n
        WHERE n.allocation_id = h.allocation_id) AS nodes
  FROM csm_allocation_history h WHERE allocation_id = %(id)s
"""


@defer.inlineCallbacks
def event_query_allocation(ctx, body):
    """Every event within the allocation's lifetime, as CAST; ``on_nodes``: only on its nodes, visible to users."""
    db = ctx.db
    windows = yield query_dicts(db, ALLOCATION_WINDOW, {"id": body["allocation_id"]})
    if not windows:
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d not found" % body["allocation_id"])
    window = windows[0]
    query = (Select("SELECT rec_id, msg_id, msg_id_seq, time_stamp, location_name, count, message, raw_data "
                    "FROM csm_ras_event_action_view")
             .between("time_stamp", window["begin_time"], window["end_time"]))
    if body.get("on_nodes"):
        query.where("visible_to_users").any_of("location_name", window["nodes"])
        if not window["nodes"]:
            query.where("false")
    query.order_by(None, (), "rec_id").page(body.get("limit"), body.get("offset"))
    events = yield query_dicts(db, *query.sql())
    return {"num_events": len(events), "events": events}


def event_ack(ctx, body):
    who = user_name_of(ctx.uid)
    query = Select("UPDATE csm_ras_event_action SET acked_by = %s, ack_time = now()", who).where("ack_time IS NULL")
    if body.get("rec_ids"):
        try:
            query.any_of("rec_id", [int(r) for r in body["rec_ids"]], "::bigint[]")
        except ValueError:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "rec_ids must be numbers") from None
    query.like("msg_id", body.get("msg_id")).like("location_name", body.get("location_name"))
    sql, args = query.sql()
    d = query_dicts(ctx.db, sql + " RETURNING rec_id", args)
    return d.addCallback(lambda rows: {"acked": len(rows), "acked_by": who,
                                       "rec_ids": sorted(r["rec_id"] for r in rows)})


def _type_values(body):
    values = {k: body[k] for k in TYPE_COLUMNS if k in body}
    if values.get("set_state") == "CSM_DATABASE_NULL":
        values["set_state"] = None
    return values


def type_create(ctx, body):
    values = {"message": "", "description": "", "control_action": "NONE", "threshold_count": 1,
              "threshold_period": 0, "enabled": True, "set_state": None, "visible_to_users": True}
    values.update(_type_values(body))
    sql = ("INSERT INTO csm_ras_type (%s) VALUES (%s) ON CONFLICT (msg_id) DO NOTHING RETURNING msg_id"
           % (", ".join(values), ", ".join(["%s"] * len(values))))
    d = query_dicts(ctx.db, sql, tuple(values.values()))

    def done(rows):
        if not rows:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "RAS type %s exists already" % body["msg_id"])
        return {"insert_successful": True, "msg_id": body["msg_id"]}
    return d.addCallback(done)


def type_update(ctx, body):
    values = _type_values(body)
    values.pop("msg_id")
    if not values:
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "nothing to update for %s" % body["msg_id"])
    sql = "UPDATE csm_ras_type SET %s WHERE msg_id = %%s RETURNING msg_id" % ", ".join("%s = %%s" % k for k in values)
    d = query_dicts(ctx.db, sql, tuple(values.values()) + (body["msg_id"],))

    def done(rows):
        if not rows:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "no RAS type %s" % body["msg_id"])
        return {"update_successful": True, "msg_id": body["msg_id"]}
    return d.addCallback(done)


def type_delete(ctx, body):
    wanted = list(body["msg_ids"])
    d = query_dicts(ctx.db, "DELETE FROM csm_ras_type WHERE msg_id = ANY(%s) RETURNING msg_id", (wanted,))

    def done(rows):
        deleted = sorted(r["msg_id"] for r in rows)
        missing = sorted(set(wanted) - set(deleted))
        return {"expected_number_of_deleted_msg_ids": len(wanted), "number_of_deleted_msg_ids": len(deleted),
                "deleted_msg_ids": deleted, "number_of_not_deleted_msg_ids": len(missing),
                "not_deleted_msg_ids": missing}
    return d.addCallback(done)


def type_query(ctx, body):
    query = (Select("SELECT %s FROM csm_ras_type" % ", ".join(TYPE_COLUMNS))
             .like("msg_id", body.get("msg_id"))
             .equal("severity", body.get("severity"))
             .equal("control_action", body.get("control_action"))
             .like("message", body.get("message"))
             .any_of("set_state::text", body.get("set_states"))
             .order_by(None, (), "msg_id").page(body.get("limit"), body.get("offset")))
    return query_results(ctx.db, query)


HANDLERS = {
    commands.RAS_EVENT_CREATE.cmd_id: event_create,
    commands.RAS_EVENT_QUERY.cmd_id: event_query,
    commands.RAS_EVENT_QUERY_ALLOCATION.cmd_id: event_query_allocation,
    commands.RAS_EVENT_ACK.cmd_id: event_ack,
    commands.RAS_MSG_TYPE_CREATE.cmd_id: type_create,
    commands.RAS_MSG_TYPE_UPDATE.cmd_id: type_update,
    commands.RAS_MSG_TYPE_DELETE.cmd_id: type_delete,
    commands.RAS_MSG_TYPE_QUERY.cmd_id: type_query,
}
