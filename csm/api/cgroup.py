"""Handlers of the step cgroup, login and jsrun APIs: the master's side.

On a compute (``compute_handlers.py``): ``csm_allocation_step_cgroup_create``/``_delete``
and ``csm_cgroup_login`` are answered by the node itself (CAST's agent-only APIs);
``csm_jsrun_cmd`` arrives by multicast. On the master: ``csm_jsrun_cmd`` checks
the allocation and its owner and multicasts to the allocation's nodes.
Every daemon answers CAST's legacy RAS subscription ids with CAST's error for
an id no daemon handles.
"""

from twisted.internet import defer

from csm.api import multicast
from csm.api.allocation import check_owner, multi_error
from csm.api.cgroup_commands import JSRUN_CMD, NOT_IMPLEMENTED, STEP_CGROUP_CREATE, STEP_CGROUP_DELETE
from csm.api.compute_handlers import step_body
from csm.api.wm_commands import ALLOCATION_TYPES
from csm.db.queries import query_dicts
from csm.errors import CSMError, ErrorCode
from csm.node.jobs import KV_PAIRS

@defer.inlineCallbacks
def _active_allocation(ctx, allocation_id):
    """The live allocation with its nodes (``CSMERR_ALLOC_MISSING`` when there is none)."""
    rows = yield query_dicts(ctx.db, "SELECT a.allocation_id, a.user_id, a.user_name, a.launch_node_name, "
                                            "a.type, array_agg(n.node_name ORDER BY n.node_name) AS nodes "
                                            "FROM csm_allocation a JOIN csm_allocation_node n USING (allocation_id) "
                                            "WHERE a.allocation_id = %s GROUP BY a.allocation_id", (allocation_id,))
    if not rows:
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not active" % allocation_id)
    return rows[0]


@defer.inlineCallbacks
def step_cgroup_master(ctx, body):
    """The step cgroup on each of the step's nodes, by multicast (beyond CAST, whose launcher calls
    every node itself)."""
    command = ctx.command
    body = step_body(ctx, body, command)
    nodes = sorted(set(body.get("compute_nodes") or ()))
    if not nodes:
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "%s: name the step's compute_nodes, or call it on the "
                                                       "compute" % command.api_name)
    if body.get("pid"):
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "pid names a process of one node: call %s on that compute"
                       % command.api_name)
    row = yield _active_allocation(ctx, body["allocation_id"])
    if int(row["user_id"]) != ctx.uid and not ctx.daemon.acl.is_privileged(ctx.uid, ctx.gid):
        raise CSMError(ErrorCode.CSMERR_PERM, "allocation %d belongs to user %s, not to uid %d"
                       % (row["allocation_id"], row["user_name"], ctx.uid))
    outside = [node for node in nodes if node not in row["nodes"]]
    if outside:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "not nodes of allocation %d: %s"
                       % (row["allocation_id"], ", ".join(outside[:8])))
    request = {key: value for key, value in body.items() if key != "compute_nodes"}
    results = yield multicast.multicast(ctx.daemon, command.cmd_id, nodes, request, max(1.0, ctx.remaining() - 2.0))
    if multicast.node_errors(results):
        raise multi_error(results, "%s %s of allocation %d" % (command.api_name, body["cgroup_name"],
                                                               row["allocation_id"]))
    return {"allocation_id": row["allocation_id"], "cgroup_name": body["cgroup_name"],
            "nodes": {node: (r["output"] or {}).get("path") for node, r in sorted(results.items())}}


@defer.inlineCallbacks
def jsrun_master(ctx, body):
    if not KV_PAIRS.match(body.get("kv_pairs") or ""):
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "kv_pairs: only letters, digits, '_', ',' and '='")
    row = yield _active_allocation(ctx, body["allocation_id"])
    check_owner(ctx, row)
    kind = row.get("type") or "user-managed"
    request = {"allocation_id": row["allocation_id"], "user_name": row["user_name"], "user_id": row["user_id"],
               "kv_pairs": body.get("kv_pairs") or "", "jsm_path": body.get("jsm_path") or "",
               "compute_nodes": row["nodes"], "launch_node": row["launch_node_name"],
               "type_index": ALLOCATION_TYPES.index(kind) if kind in ALLOCATION_TYPES else 0}
    results = yield multicast.multicast(ctx.daemon, JSRUN_CMD.cmd_id, row["nodes"], request,
                                        max(1.0, ctx.remaining() - 2.0))
    if multicast.node_errors(results):
        raise multi_error(results, "jsrun for allocation %d" % row["allocation_id"])
    return {"allocation_id": row["allocation_id"],
            "nodes": {node: (r["output"] or {}).get("pid") for node, r in sorted(results.items())}}


def not_implemented(ctx, body):
    raise CSMError(ErrorCode.CSMERR_CMD_UNKNOWN, "%s is not implemented (CAST has no handler for it either)"
                   % ctx.command.api_name)


NOT_IMPLEMENTED_HANDLERS = {command.cmd_id: not_implemented for command in NOT_IMPLEMENTED}
MASTER_HANDLERS = {JSRUN_CMD.cmd_id: jsrun_master, STEP_CGROUP_CREATE.cmd_id: step_cgroup_master,
                   STEP_CGROUP_DELETE.cmd_id: step_cgroup_master}
