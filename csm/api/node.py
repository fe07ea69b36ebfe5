"""Node and cluster API handlers on the master."""

from twisted.internet import defer

from csm.api.commands import API_IDS
from csm.db.queries import Select, keyed_results, query_dicts, query_results
from csm.errors import CSMError, ErrorCode, NodeError

NODE_COLUMNS = ("node_name", "machine_model", "serial_number", "collection_time", "update_time", "state", "type",
                "primary_agg", "secondary_agg", "hard_power_cap", "installed_memory", "installed_swap",
                "discovered_sockets", "discovered_cores", "discovered_gpus", "discovered_hcas", "discovered_dimms",
                "discovered_ssds", "os_image_name", "os_image_uuid", "kernel_release", "kernel_version",
                "physical_frame_location", "physical_u_location", "feature_1", "feature_2", "feature_3",
                "feature_4", "comment")
NODE_SELECT = "SELECT %s, state::text AS state, (state = 'IN_SERVICE') AS ready FROM csm_node" % ", ".join(
    c for c in NODE_COLUMNS if c != "state")
CHILDREN = (("dimms", "csm_dimm", "serial_number"), ("gpus", "csm_gpu", "gpu_id"),
            ("hcas", "csm_hca", "serial_number"), ("processors", "csm_processor_socket", "serial_number"),
            ("ssds", "csm_ssd", "serial_number"))
UPDATABLE = ("comment", "physical_frame_location", "physical_u_location", "feature_1", "feature_2", "feature_3",
             "feature_4")
NULL = "#CSM_NULL"
#: The states CAST's csm_node_attributes_update -s accepts.
CLI_STATES = ("IN_SERVICE", "ADMIN_RESERVED", "MAINTENANCE", "OUT_OF_SERVICE")

#: The state changes an administrator makes without --force (spec 7.1: the documented
#: transitions, and clearing a soft failure by hand).
ADMIN_TRANSITIONS = {
    "DISCOVERED": ("IN_SERVICE",),
    "IN_SERVICE": ("ADMIN_RESERVED", "MAINTENANCE", "OUT_OF_SERVICE"),
    "ADMIN_RESERVED": ("IN_SERVICE",),
    "MAINTENANCE": ("IN_SERVICE",),
    "OUT_OF_SERVICE": ("IN_SERVICE",),
    "HARD_FAILURE": ("OUT_OF_SERVICE", "IN_SERVICE"),
    "SOFT_FAILURE": ("IN_SERVICE",),
}


def attributes_query(ctx, body):
    query = (Select(NODE_SELECT)
             .equal("state::text", body.get("state"))
             .equal("type", body.get("type"))
             .like("comment", body.get("comment"))
             .order_by(None, (), "node_name").page(body.get("limit"), body.get("offset")))
    names = body.get("node_names")
    if names and not query.paging:  # many schedulers asking for a node or a few: one statement a turn
        return keyed_results(ctx.db, query, "node_name", names)
    return query_results(ctx.db, query.any_of("node_name", names))


@defer.inlineCallbacks
def attributes_query_details(ctx, body):
    db = ctx.db
    nodes = yield query_dicts(db, NODE_SELECT + " WHERE node_name = %s", (body["node_name"],))
    if not nodes:
        raise CSMError(ErrorCode.CSMI_NO_RESULTS, "node %s not found" % body["node_name"])
    result = {"node": nodes[0]}
    for key, table, order in CHILDREN:
        rows = yield query_dicts(db, "SELECT * FROM %s WHERE node_name = %%s ORDER BY %s" % (table, order),
                                 (body["node_name"],))
        result[key] = rows
    return result


def attributes_query_history(ctx, body):
    query = (Select("SELECT history_time, operation, %s, state::text AS state FROM csm_node_history"
                    % ", ".join(c for c in NODE_COLUMNS if c != "state"))
             .equal("node_name", body["node_name"]))
    query.order = " ORDER BY history_time %s" % ("ASC" if body.get("order_by") == "a" else "DESC")
    query.page(body.get("limit"), body.get("offset"))
    return query_results(ctx.db, query)


def query_state_history(ctx, body):
    query = (Select("SELECT history_time, state::text AS state, coalesce(alteration, 'CSM API') AS alteration, "
                    "ras_rec_id, ras_msg_id FROM csm_node_state_history")
             .equal("node_name", body["node_name"]))
    query.order = " ORDER BY history_time %s" % ("ASC" if body.get("order_by") == "a" else "DESC")
    query.page(body.get("limit"), body.get("offset"))
    d = query_dicts(ctx.db, *query.sql())
    return d.addCallback(lambda rows: {"node_name": body["node_name"], "results": rows})


def check_transition(node, current, wanted, force):
    """Raise unless ``current -> wanted`` is in the table (or forced)."""
    if force or wanted in ADMIN_TRANSITIONS.get(current, ()):
        return
    if current == wanted and wanted in CLI_STATES:  # CAST's tool takes only these without --force
        return
    allowed = ADMIN_TRANSITIONS.get(current, ())
    raise CSMError(ErrorCode.CSMERR_INVALID_PARAM,
                   "%s: %s -> %s is not allowed (from %s: %s); --force makes it" %
                   (node, current, wanted, current, ", ".join(allowed) or "nothing"))


def attributes_update(ctx, body):
    values = {k: (None if body[k] == NULL else body[k]) for k in UPDATABLE if k in body}
    wanted = body.get("state")
    if not values and not wanted:
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "nothing to update: give a state or an attribute")

    @defer.inlineCallbacks
    def update(cursor):
        yield cursor.execute("SELECT node_name, state::text FROM csm_node WHERE node_name = ANY(%s) FOR UPDATE",
                             (body["node_names"],))
        found = dict(cursor.fetchall())
        if wanted:
            for node, current in sorted(found.items()):
                check_transition(node, current, wanted, body.get("force"))
            yield cursor.execute("SELECT set_config('csm.alteration', %s, true)",
                                 ("SYSTEM ADMINISTRATOR" if body.get("force") else "CSM API",))
        assignments = dict(values, **({"state": wanted} if wanted else {}))
        sql = "UPDATE csm_node SET %s WHERE node_name = ANY(%%s)" % ", ".join(
            "%s = %%s%s" % (k, "::compute_node_states" if k == "state" else "") for k in assignments)
        yield cursor.execute(sql, tuple(assignments.values()) + (list(found),))
        missing = sorted(set(body["node_names"]) - set(found))
        return {"failure_count": len(missing), "failure_node_names": missing}
    return ctx.db.runInteraction(update).addCallback(_missing_nodes_error)


def _missing_nodes_error(result):
    """CAST's partial update: CSMERR_UPDATE_MISMATCH naming each node not found."""
    if result["failure_count"]:
        names = result["failure_node_names"]
        raise CSMError(ErrorCode.CSMERR_UPDATE_MISMATCH, "%d node(s) not found: %s" % (len(names), ",".join(names)),
                       [NodeError(name, ErrorCode.CSMERR_UPDATE_MISMATCH, "not found") for name in names])
    return result


def node_delete(ctx, body):
    @defer.inlineCallbacks
    def delete(cursor):
        yield cursor.execute("SELECT node_name FROM csm_allocation_node WHERE node_name = ANY(%s)",
                             (body["node_names"],))
        busy = sorted({row[0] for row in cursor.fetchall()})
        if busy:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "node(s) in an allocation: %s" % ",".join(busy))
        for _key, table, _order in CHILDREN:
            yield cursor.execute("DELETE FROM %s WHERE node_name = ANY(%%s)" % table, (body["node_names"],))
        yield cursor.execute("DELETE FROM csm_node WHERE node_name = ANY(%s) RETURNING node_name",
                             (body["node_names"],))
        deleted = {row[0] for row in cursor.fetchall()}
        missing = sorted(set(body["node_names"]) - deleted)
        return {"failure_count": len(missing), "failure_node_names": missing}
    return ctx.db.runInteraction(delete).addCallback(_missing_nodes_error)


CLUSTER_STATE = """
SELECT n.node_name, n.collection_time, n.update_time, n.state::text AS state, n.type,
       count(a.allocation_id)::int AS num_allocs,
       coalesce(array_agg(a.allocation_id ORDER BY a.allocation_id) FILTER (WHERE a.allocation_id IS NOT NULL), '{}') AS allocs,
       coalesce(array_agg(a.state ORDER BY a.allocation_id) FILTER (WHERE a.allocation_id IS NOT NULL), '{}') AS states,
       coalesce(array_agg(a.shared ORDER BY a.allocation_id) FILTER (WHERE a.allocation_id IS NOT NULL), '{}') AS shared
  FROM csm_node n LEFT JOIN csm_allocation_node a ON a.node_name = n.node_name
"""


def cluster_query_state(ctx, body):
    query = Select("SELECT * FROM (" + CLUSTER_STATE + " GROUP BY n.node_name) c")
    query.equal("state", body.get("state")).equal("type", body.get("type"))
    if body.get("num_allocs") is not None and body["num_allocs"] >= 0:
        query.where("num_allocs = %s", body["num_allocs"])
    query.order_by_pairs(body.get("order_by"), ("node_name", "state", "type", "num_allocs"), "node_name")
    query.page(body.get("limit"), body.get("offset"))
    return query_results(ctx.db, query)


RESOURCES = """
SELECT n.node_name, n.type AS node_type, n.state::text AS node_state, (n.state = 'IN_SERVICE') AS node_ready,
       n.installed_memory AS node_installed_memory, n.discovered_cores AS node_discovered_cores,
       n.discovered_gpus AS node_discovered_gpus, n.discovered_sockets AS node_discovered_sockets,
       n.update_time AS node_update_time,
       coalesce((SELECT json_agg(json_build_object('serial_number', s.serial_number,
                 'wear_lifespan_used', s.wear_lifespan_used, 'update_time', s.update_time) ORDER BY s.serial_number)
                 FROM csm_ssd s WHERE s.node_name = n.node_name), '[]') AS ssds
  FROM csm_node n
"""


def resources_query(ctx, body):
    query = (Select(RESOURCES).any_of("n.node_name", body.get("node_names"))
             .order_by(None, (), "n.node_name").page(body.get("limit"), body.get("offset")))
    return query_results(ctx.db, query)


HANDLERS = {API_IDS[name]: handler for name, handler in (
    ("node_attributes_query", attributes_query),
    ("node_attributes_query_details", attributes_query_details),
    ("node_attributes_query_history", attributes_query_history),
    ("node_query_state_history", query_state_history),
    ("node_attributes_update", attributes_update),
    ("node_delete", node_delete),
    ("cluster_query_state", cluster_query_state),
    ("node_resources_query", resources_query),
    ("node_resources_query_all", resources_query),
)}
