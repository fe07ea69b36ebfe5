"""Switch and InfiniBand cable API handlers on the master, and the UFM collection APIs."""

from twisted.internet import defer

from csm.api.commands import API_IDS
from csm.api.switch_commands import CABLE_ORDER, SWITCH_ORDER
from csm.db import switches
from csm.db.queries import Select, query_dicts, query_results
from csm.errors import CSMError, ErrorCode, NodeError

NULL = "#CSM_NULL"
MODULE_COLUMNS = ("name", "host_system_guid", "discovery_time", "collection_time", "comment", "description",
                  "device_name", "device_type", "fw_version", "hw_version", "max_ib_ports", "module_index",
                  "number_of_chips", "path", "serial_number", "severity", "status", "type", "missing_since")
SWITCHES = "SELECT %s, missing_since FROM csm_switch" % ", ".join(SWITCH_ORDER)
CABLES = "SELECT %s, missing_since FROM csm_ib_cable" % ", ".join(CABLE_ORDER)
#: CAST's cable order_by letters: a-m
CABLE_SORT = ("serial_number", "guid_s1", "guid_s2", "identifier", "length", "name", "part_number", "port_s1",
              "port_s2", "revision", "severity", "type", "width")


def switch_query(ctx, body):
    query = (Select(SWITCHES).any_of("role", body.get("roles")).any_of("switch_name", body.get("switch_names"))
             .equal("serial_number", body.get("serial_number")).equal("state", body.get("state")))
    order = body.get("order_by")
    if order not in (None, "a", "b"):
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid order_by %r (a: switch_name, b: descending)" % order)
    query.order = " ORDER BY switch_name %s NULLS LAST" % ("DESC" if order == "b" else "ASC")
    query.page(body.get("limit"), body.get("offset"))
    return query_results(ctx.db, query)


@defer.inlineCallbacks
def switch_query_details(ctx, body):
    db = ctx.db
    rows = yield query_dicts(db, SWITCHES + " WHERE switch_name = %s", (body["switch_name"],))
    if not rows:
        raise CSMError(ErrorCode.CSMI_NO_RESULTS, "switch %s not found" % body["switch_name"])
    modules = yield query_dicts(db, "SELECT %s FROM csm_switch_inventory WHERE host_system_guid = %%s ORDER BY name"
                                % ", ".join(MODULE_COLUMNS), (rows[0]["gu_id"],))
    return {"switch": rows[0], "inventory_count": len(modules), "inventory": modules}


def _history(ctx, table, columns, key, value, body):
    query = Select("SELECT history_time, operation, %s, missing_since FROM %s" % (", ".join(columns), table))
    query.equal(key, value).order = " ORDER BY history_time DESC"
    query.page(body.get("limit"), body.get("offset"))
    return query_results(ctx.db, query)


def switch_query_history(ctx, body):
    return _history(ctx, "csm_switch_history", SWITCH_ORDER, "switch_name", body["switch_name"], body)


def _update(ctx, table, key, names, values):
    """Set ``values`` on the rows named; CSMERR_UPDATE_MISMATCH names the ones that do not exist."""
    if not values:
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "nothing to update")
    values = {column: None if value == NULL else value for column, value in values.items()}
    sql = "UPDATE %s SET %s WHERE %s = ANY(%%s) RETURNING %s" % (
        table, ", ".join("%s = %%s" % column for column in values), key, key)
    d = ctx.db.runQuery(sql, tuple(values.values()) + (list(names),))

    def updated(rows):
        missing = sorted(set(names) - {row[0] for row in rows})
        if missing:
            raise CSMError(ErrorCode.CSMERR_UPDATE_MISMATCH, "could not update %d of the %d record(s): %s"
                           % (len(missing), len(set(names)), ",".join(missing)),
                           [NodeError(name, ErrorCode.CSMERR_UPDATE_MISMATCH, "not found") for name in missing])
        return {"updated": len(rows)}
    return d.addCallback(updated)


def switch_update(ctx, body):
    values = {k: body[k] for k in ("comment", "physical_frame_location", "physical_u_location") if k in body}
    return _update(ctx, "csm_switch", "switch_name", body["switch_names"], values)


def cable_query(ctx, body):
    query = Select(CABLES)
    for field, column in (("comments", "comment"), ("identifiers", "identifier"), ("lengths", "length"),
                          ("names", "name"), ("part_numbers", "part_number"), ("revisions", "revision"),
                          ("serial_numbers", "serial_number"), ("severities", "severity"), ("types", "type"),
                          ("widths", "width")):
        query.any_of(column, body.get(field))
    for field, first, second in (("guids", "guid_s1", "guid_s2"), ("ports", "port_s1", "port_s2")):
        if body.get(field):
            query.where("(%s = ANY(%%s) OR %s = ANY(%%s))" % (first, second), body[field], body[field])
    query.order_by(body.get("order_by"), CABLE_SORT, "serial_number")
    query.order += " NULLS LAST"
    query.page(body.get("limit"), body.get("offset"))
    return query_results(ctx.db, query)


def cable_query_history(ctx, body):
    return _history(ctx, "csm_ib_cable_history", CABLE_ORDER, "serial_number", body["serial_number"], body)


def cable_update(ctx, body):
    return _update(ctx, "csm_ib_cable", "serial_number", body["serial_numbers"], {"comment": body["comment"]})


def collection(kind):
    """The handler of one collection API: ``{"inventory": [rows]}`` -> counts."""
    _function, key, _columns = switches.KINDS[kind]

    def handle(ctx, body):
        rows = body.get("inventory")
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "inventory: expected a list of records")
        unnamed = [number for number, row in enumerate(rows, 1) if not isinstance(row.get(key), str) or not row[key]]
        if unnamed:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "inventory: record(s) %s without %s"
                           % (",".join(map(str, unnamed[:10])), key))
        for number, row in enumerate(rows, 1):
            for field, value in row.items():
                if value is not None and not isinstance(value, (str, int, float, bool)):
                    raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "inventory: record %d, %s: expected a "
                                   "text, number or boolean" % (number, field))
        d = ctx.db.runInteraction(switches.store, {kind: rows})
        return d.addCallback(lambda summary: dict(summary[kind], kind=kind))
    return handle


HANDLERS = {API_IDS[name]: handler for name, handler in (
    ("switch_attributes_query", switch_query),
    ("switch_attributes_query_details", switch_query_details),
    ("switch_attributes_query_history", switch_query_history),
    ("switch_attributes_update", switch_update),
    ("ib_cable_query", cable_query),
    ("ib_cable_query_history", cable_query_history),
    ("ib_cable_update", cable_update),
    ("switch_inventory_collection", collection("switches")),
    ("switch_children_inventory_collection", collection("modules")),
    ("ib_cable_inventory_collection", collection("cables")),
)}
