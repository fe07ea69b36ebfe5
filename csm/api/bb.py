"""Burst buffer handlers: volume groups and logical volumes on the master, ``csm_bb_cmd`` by multicast.

CAST's rules, checked in one transaction with the rows they depend on locked:

* a volume group's total size is the sum of its SSD allocations, each within its
  SSD's size less what other groups hold of it; one scheduler group per node;
* a logical volume belongs to an allocation on one of its nodes and to a volume
  group of that node, and takes its size from the group's available size (a
  size change moves the difference; a delete gives it back);
* a volume group holding logical volumes cannot be deleted; an allocation that
  ends takes its logical volumes to history (schema 19.3).
"""

from twisted.internet import defer

from csm.api import multicast
from csm.api.allocation import multi_error
from csm.api.bb_commands import (BB_CMD, BB_LV_CREATE, BB_LV_DELETE, BB_LV_QUERY, BB_LV_UPDATE, BB_VG_CREATE,
                                 BB_VG_DELETE, BB_VG_QUERY)
from csm.db.allocations import fetch
from csm.db.queries import Select, query_dicts, query_results
from csm.errors import CSMError, ErrorCode
from csm.node.jobs import BB_ARGUMENTS

LV_COLUMNS = ("logical_volume_name", "node_name", "allocation_id", "vg_name", "state", "current_size", "max_size",
              "begin_time", "updated_time", "file_system_mount", "file_system_type")


def _invalid(text):
    return CSMError(ErrorCode.CSMERR_INVALID_PARAM, text)


def _sizes(body):
    try:
        sizes = [int(value) for value in body["ssd_allocations"]]
    except ValueError:
        raise _invalid("ssd_allocations: whole numbers of bytes, one per SSD") from None
    if len(sizes) != len(body["ssd_serial_numbers"]):
        raise _invalid("%d SSD serial numbers but %d ssd_allocations"
                       % (len(body["ssd_serial_numbers"]), len(sizes)))
    if len(set(body["ssd_serial_numbers"])) != len(sizes):
        raise _invalid("an SSD is listed twice")
    if any(size < 0 for size in sizes) or body["total_size"] < 0 or body["available_size"] < 0:
        raise _invalid("sizes cannot be negative")
    if sum(sizes) != body["total_size"]:
        raise _invalid("total_size %d is not the sum of the ssd_allocations (%d)" % (body["total_size"], sum(sizes)))
    if body["available_size"] > body["total_size"]:
        raise _invalid("available_size %d is more than total_size %d" % (body["available_size"], body["total_size"]))
    return sizes


@defer.inlineCallbacks
def _vg_create(cursor, body, sizes):
    node, name = body["node_name"], body["vg_name"]
    if not (yield fetch(cursor, "SELECT 1 FROM csm_node WHERE node_name = %s", (node,))):
        raise _invalid("node %s does not exist" % node)
    ssds = {row["serial_number"]: (row["size"], row["used"]) for row in (yield fetch(
        cursor, "SELECT s.serial_number, s.size, (SELECT coalesce(sum(v.ssd_allocation), 0) FROM csm_vg_ssd v "
                "WHERE v.serial_number = s.serial_number AND v.node_name = s.node_name) AS used FROM csm_ssd s "
                "WHERE s.node_name = %s AND s.serial_number = ANY(%s) FOR UPDATE", (node, body["ssd_serial_numbers"])))}
    for serial, size in zip(body["ssd_serial_numbers"], sizes):
        if serial not in ssds:
            raise _invalid("node %s has no SSD %s" % (node, serial))
        capacity, used = ssds[serial]
        if used + size > capacity:
            raise _invalid("SSD %s has %d bytes free (%d held by other volume groups), not %d"
                           % (serial, capacity - used, used, size))
    if (yield fetch(cursor, "SELECT 1 FROM csm_vg WHERE vg_name = %s AND node_name = %s", (name, node))):
        raise _invalid("volume group %s exists on %s already" % (name, node))
    if body.get("scheduler") and (yield fetch(cursor, "SELECT 1 FROM csm_vg WHERE node_name = %s AND scheduler",
                                              (node,))):
        raise _invalid("node %s has a scheduler volume group already (one per node)" % node)
    yield cursor.execute("INSERT INTO csm_vg (vg_name, node_name, total_size, available_size, scheduler) "
                         "VALUES (%s, %s, %s, %s, %s)", (name, node, body["total_size"], body["available_size"],
                                                         bool(body.get("scheduler"))))
    yield cursor.execute("INSERT INTO csm_vg_ssd (vg_name, node_name, serial_number, ssd_allocation) "
                         "SELECT %s, %s, unnest(%s::text[]), unnest(%s::bigint[])",
                         (name, node, body["ssd_serial_numbers"], sizes))


@defer.inlineCallbacks
def vg_create(ctx, body):
    sizes = _sizes(body)
    yield ctx.db.runInteraction(_vg_create, body, sizes)
    return {"vg_name": body["vg_name"], "node_name": body["node_name"]}


@defer.inlineCallbacks
def _vg_delete(cursor, node, name):
    if not (yield fetch(cursor, "SELECT 1 FROM csm_vg WHERE vg_name = %s AND node_name = %s FOR UPDATE", (name, node))):
        raise _invalid("volume group %s does not exist on %s" % (name, node))
    held = yield fetch(cursor, "SELECT logical_volume_name FROM csm_lv WHERE vg_name = %s AND node_name = %s "
                               "ORDER BY 1", (name, node))
    if held:
        raise _invalid("volume group %s on %s holds logical volumes: %s" % (name, node, ", ".join(r["logical_volume_name"] for r in held)))
    yield cursor.execute("DELETE FROM csm_vg WHERE vg_name = %s AND node_name = %s", (name, node))


@defer.inlineCallbacks
def vg_delete(ctx, body):
    yield ctx.db.runInteraction(_vg_delete, body["node_name"], body["vg_name"])
    return {"vg_name": body["vg_name"], "node_name": body["node_name"]}


def vg_query(ctx, body):
    query = (Select("SELECT v.vg_name, v.node_name, v.total_size, v.available_size, v.scheduler, v.update_time, "
                    "(SELECT coalesce(json_agg(json_build_object('serial_number', s.serial_number, 'ssd_allocation', "
                    "s.ssd_allocation) ORDER BY s.serial_number), '[]') FROM csm_vg_ssd s WHERE s.vg_name = v.vg_name "
                    "AND s.node_name = v.node_name) AS ssd_info FROM csm_vg v")
             .any_of("v.node_name", body.get("node_names")).any_of("v.vg_name", body.get("vg_names")))
    query.order = " ORDER BY v.node_name, v.vg_name"
    return query_results(ctx.db, query.page(body.get("limit"), body.get("offset")))


@defer.inlineCallbacks
def _vg_for_update(cursor, name, node):
    rows = yield fetch(cursor, "SELECT available_size FROM csm_vg WHERE vg_name = %s AND node_name = %s FOR UPDATE",
                       (name, node))
    if not rows:
        raise _invalid("volume group %s does not exist on %s" % (name, node))
    return rows[0]["available_size"]


@defer.inlineCallbacks
def _lv_create(cursor, body):
    node = body["node_name"]
    if not (yield fetch(cursor, "SELECT 1 FROM csm_allocation_node WHERE allocation_id = %s AND node_name = %s",
                        (body["allocation_id"], node))):
        if not (yield fetch(cursor, "SELECT 1 FROM csm_allocation WHERE allocation_id = %s", (body["allocation_id"],))):
            raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not active" % body["allocation_id"])
        raise _invalid("%s is not a node of allocation %d" % (node, body["allocation_id"]))
    available = yield _vg_for_update(cursor, body["vg_name"], node)
    if body["current_size"] > available:
        raise _invalid("volume group %s on %s has %d bytes available, not %d"
                       % (body["vg_name"], node, available, body["current_size"]))
    if (yield fetch(cursor, "SELECT 1 FROM csm_lv WHERE logical_volume_name = %s AND node_name = %s",
                    (body["logical_volume_name"], node))):
        raise _invalid("logical volume %s exists on %s already" % (body["logical_volume_name"], node))
    yield cursor.execute(
        "INSERT INTO csm_lv (logical_volume_name, node_name, allocation_id, vg_name, state, current_size, max_size, "
        "begin_time, updated_time, file_system_mount, file_system_type) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, now(), now(), %s, %s)",
        (body["logical_volume_name"], node, body["allocation_id"], body["vg_name"], body["state"],
         body["current_size"], body["current_size"], body["file_system_mount"], body["file_system_type"]))
    yield cursor.execute("UPDATE csm_vg SET available_size = available_size - %s WHERE vg_name = %s "
                         "AND node_name = %s", (body["current_size"], body["vg_name"], node))


def _check_size(body):
    if body.get("current_size") is not None and body["current_size"] < 0:
        raise _invalid("current_size cannot be negative")


@defer.inlineCallbacks
def _lv_row(cursor, body):
    rows = yield fetch(cursor, "SELECT vg_name, current_size FROM csm_lv WHERE logical_volume_name = %s "
                               "AND node_name = %s AND allocation_id = %s FOR UPDATE",
                       (body["logical_volume_name"], body["node_name"], body["allocation_id"]))
    if not rows:
        raise _invalid("allocation %d has no logical volume %s on %s"
                       % (body["allocation_id"], body["logical_volume_name"], body["node_name"]))
    return rows[0]["vg_name"], rows[0]["current_size"]


@defer.inlineCallbacks
def _lv_update(cursor, body):
    vg_name, size = yield _lv_row(cursor, body)
    new_size = size if body.get("current_size") is None else body["current_size"]
    available = yield _vg_for_update(cursor, vg_name, body["node_name"])
    if new_size - size > available:
        raise _invalid("volume group %s on %s has %d bytes available: %s cannot grow by %d"
                       % (vg_name, body["node_name"], available, body["logical_volume_name"], new_size - size))
    yield cursor.execute("UPDATE csm_vg SET available_size = available_size - %s WHERE vg_name = %s "
                         "AND node_name = %s", (new_size - size, vg_name, body["node_name"]))
    yield cursor.execute("UPDATE csm_lv SET current_size = %s, max_size = greatest(max_size, %s), "
                         "state = coalesce(%s, state), updated_time = now() WHERE logical_volume_name = %s "
                         "AND node_name = %s", (new_size, new_size, body.get("state"), body["logical_volume_name"],
                                                body["node_name"]))


@defer.inlineCallbacks
def _lv_delete(cursor, body):
    yield _lv_row(cursor, body)
    yield cursor.execute("SELECT fn_csm_lv_history_dump(%s, %s, %s, %s, %s, %s, %s)",
                         (body["logical_volume_name"], body["node_name"], body["allocation_id"],
                          body.get("num_bytes_read"), body.get("num_bytes_written"), body.get("num_reads"),
                          body.get("num_writes")))


def _lv_handler(interaction):
    """A logical volume API: ``interaction`` in one transaction; the answer names the volume."""
    @defer.inlineCallbacks
    def handle(ctx, body):
        _check_size(body)
        yield ctx.db.runInteraction(interaction, body)
        return {"logical_volume_name": body["logical_volume_name"], "node_name": body["node_name"]}
    return handle


lv_create, lv_update, lv_delete = (_lv_handler(_lv_create), _lv_handler(_lv_update), _lv_handler(_lv_delete))


def lv_query(ctx, body):
    try:
        allocation_ids = [int(v) for v in body.get("allocation_ids") or ()]
    except ValueError:
        raise _invalid("allocation_ids: whole numbers") from None
    query = (Select("SELECT %s FROM csm_lv" % ", ".join(LV_COLUMNS))
             .any_of("allocation_id", allocation_ids, "::bigint[]")
             .any_of("logical_volume_name", body.get("logical_volume_names"), "::text[]")
             .any_of("node_name", body.get("node_names"), "::text[]"))
    query.order = " ORDER BY node_name, logical_volume_name"
    return query_results(ctx.db, query.page(body.get("limit"), body.get("offset")))


# -- csm_bb_cmd ----------------------------------------------------------------------------

@defer.inlineCallbacks
def bb_cmd_master(ctx, body):
    if not BB_ARGUMENTS.match(body.get("command_arguments") or ""):
        raise _invalid("command_arguments: only letters, digits, space and _ = , . / : -")
    nodes = sorted(set(body["node_names"]))
    known = {row["node_name"] for row in (yield query_dicts(
        ctx.db, "SELECT node_name FROM csm_node WHERE node_name = ANY(%s) AND type = 'compute'", (nodes,)))}
    unknown = [node for node in nodes if node not in known]
    if unknown:
        raise _invalid("not compute nodes: %s" % ", ".join(unknown[:8]))
    if ctx.private_check:  # as CAST: a user who is not privileged, only on nodes of an allocation of theirs
        rows = yield query_dicts(ctx.db, "SELECT count(DISTINCT an.node_name) AS usable FROM csm_allocation a "
                                 "JOIN csm_allocation_node an ON an.allocation_id = a.allocation_id "
                                 "WHERE a.user_id = %s AND an.node_name = ANY(%s)", (int(ctx.uid), nodes))
        if rows[0]["usable"] != len(nodes):
            raise CSMError(ErrorCode.CSMERR_PERM, "only %d of the %d nodes given are in an allocation of user %d"
                           % (rows[0]["usable"], len(nodes), ctx.uid))
    results = yield multicast.multicast(ctx.daemon, BB_CMD.cmd_id, nodes,
                                        {"command_arguments": body.get("command_arguments") or "",
                                         "user_id": ctx.uid}, max(1.0, ctx.remaining() - 2.0))
    if multicast.node_errors(results):
        raise multi_error(results, "bb_cmd")
    outputs = {node: (r["output"] or {}).get("command_output", "") for node, r in sorted(results.items())}
    return {"command_output": "".join("%s: %s\n" % (node, line) for node, text in outputs.items()
                                      for line in (text.rstrip("\n").split("\n") if text else [""])),
            "nodes": outputs}


MASTER_HANDLERS = {BB_VG_CREATE.cmd_id: vg_create, BB_VG_DELETE.cmd_id: vg_delete, BB_VG_QUERY.cmd_id: vg_query,
                   BB_LV_CREATE.cmd_id: lv_create, BB_LV_DELETE.cmd_id: lv_delete, BB_LV_QUERY.cmd_id: lv_query,
                   BB_LV_UPDATE.cmd_id: lv_update, BB_CMD.cmd_id: bb_cmd_master}
