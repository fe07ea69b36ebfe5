"""Allocation create, delete and update_state on the master (spec section 7.2).

Each is a small database state machine around a multicast: reserve or move the
allocation in one transaction, multicast the prolog or epilog to its nodes
through their aggregators, then write the outcome (counters as a baseline or as
deltas, the final state, or history). Operations on one allocation run one at a
time (``AllocationLocks``): a delete that arrives while the create or a state
change is still multicasting waits for it, then acts on what it left.

A create whose prolog fails on some nodes is rolled back everywhere: the epilog
runs on the nodes whose prolog succeeded, the allocation goes to history as
``failed``, every failed node gets its RAS event (which sets SOFT_FAILURE), and
the caller gets ``CSMERR_MULTI_RESP_ERROR`` naming each node.
"""

import re
import time

from twisted.internet import defer

from csm import logs
from csm.api import multicast
from csm.api.wm_commands import ALLOCATION_CREATE, ALLOCATION_DELETE, ALLOCATION_UPDATE_STATE
from csm.db import allocations, prepared
from csm.db.queries import query_dicts
from csm.errors import CSMError, ErrorCode
from csm.users import PASSWD

log = logs.logger("csmapi")

FLAGS_PATTERN = re.compile(r"^[A-Za-z0-9 _.,:=+-]*$")
MAX_ISOLATED_CORES = 4
#: seconds of the API's time kept back for writing the outcome and answering in time
#: for the hops below (the aggregator gives up 1.5 s before the master's deadline)
ANSWER_MARGIN = 3.0
#: share of a create's time the prolog may use; the rest is for the rollback epilog
PROLOG_SHARE = 0.6

#: A failed node's error code -> the RAS event it raises (by script).
NODE_EVENTS = {
    ErrorCode.CSMERR_TIMEOUT: "csm.api.allocation_timeout",
    ErrorCode.CSMERR_SENDRCV_ERROR: "csm.api.allocation_timeout",
    ErrorCode.CSMERR_CGROUP_FAIL: "csm.api.cgroup_create_failure",
    ErrorCode.CSMERR_CGROUP_DEL_ERROR: "csm.api.cgroup_delete_failure",
    ErrorCode.CSMERR_EPILOG_EPILOG_COLLISION: "csm.api.epilog_epilog_collision",
    ErrorCode.CSMERR_EPILOG_PROLOG_COLLISION: "csm.api.epilog_prolog_collision",
    ErrorCode.CSMERR_PROLOG_EPILOG_COLLISION: "csm.api.prolog_epilog_collision",
    ErrorCode.CSMERR_PROLOG_PROLOG_COLLISION: "csm.api.prolog_prolog_collision",
}


#: answers saying the node's prolog did not (or not fully) run and it cleaned up itself;
#: every other node (success, or no answer: state unknown) gets the rollback epilog
DEFINITE_FAILURES = (ErrorCode.CSMERR_SCRIPT_FAILURE, ErrorCode.CSMERR_CGROUP_FAIL,
                     ErrorCode.CSMERR_EPILOG_PROLOG_COLLISION, ErrorCode.CSMERR_PROLOG_EPILOG_COLLISION,
                     ErrorCode.CSMERR_PROLOG_PROLOG_COLLISION, ErrorCode.CSMERR_EPILOG_EPILOG_COLLISION)


class AllocationLocks:
    """One ``DeferredLock`` per allocation with work in flight."""

    def __init__(self):
        self._locks = {}

    def run(self, allocation_id, function, *args):
        lock = self._locks.setdefault(allocation_id, defer.DeferredLock())

        def release(result):
            if not lock.locked and not lock.waiting:
                self._locks.pop(allocation_id, None)
            return result
        return lock.run(function, *args).addBoth(release)

    def busy(self, allocation_id):
        return allocation_id in self._locks


def budget(ctx):
    return max(1.0, ctx.remaining() - ANSWER_MARGIN)


def script_body(row, script, kind="allocation"):
    """What each compute needs to run the prolog or epilog of ``row``."""
    return {"script": script, "kind": kind, "allocation_id": row["allocation_id"],
            "primary_job_id": row["primary_job_id"], "secondary_job_id": row["secondary_job_id"],
            "user_name": row["user_name"], "user_flags": row.get("user_flags") or "",
            "system_flags": row.get("system_flags") or "", "isolated_cores": row.get("isolated_cores") or 0,
            "type": row.get("type")}


#: the longest an answer waits for the failed nodes' RAS events to be stored (they stay
#: queued beyond it, e.g. in a database outage)
RAS_WAIT = 5.0


def raise_node_events(ctx, results, script, allocation_id):
    """The RAS event of every failed node (the event sets SOFT_FAILURE); fires once they are
    stored, or after ``RAS_WAIT`` seconds."""
    master = ctx.daemon
    calls = []
    for node, result in sorted(results.items()):
        code = result["errcode"]
        if not code:
            continue
        msg_id = NODE_EVENTS.get(code, "csm.api.allocation_%s_failure" % script)
        calls.append(master.ras_event(msg_id, node, raw_data=result["errmsg"][:1000],
                                      kvcsv="rc=%d,allocation_id=%d,script=%s" % (code, allocation_id, script)))
    stored = defer.DeferredList([d for d in calls if d is not None])
    done = defer.Deferred()
    timer = master.clock.callLater(RAS_WAIT, lambda: done.called or done.callback(None))

    def fire(_):
        if timer.active():
            timer.cancel()
        if not done.called:
            done.callback(None)
    stored.addBoth(fire)
    return done


def multi_error(results, what):
    errors = multicast.node_errors(results)
    return CSMError(ErrorCode.CSMERR_MULTI_RESP_ERROR, "%s: failed on %d of %d nodes (%s)"
                    % (what, len(errors), len(results), ", ".join(e.source for e in errors[:8])
                       + (" and more" if len(errors) > 8 else "")), errors)


def readings(results):
    return {node: (result["output"] or {}).get("counters") or {}
            for node, result in results.items() if not result["errcode"]}


def writes(ctx):
    """The master's ``Merger`` of allocation steps (concurrent ones share a statement)."""
    ctx.db
    return ctx.daemon.allocation_writes


def check_owner(ctx, row):
    """The private check: a caller who is not privileged must own the allocation."""
    if ctx.private_check and int(row["user_id"]) != int(ctx.uid):
        raise CSMError(ErrorCode.CSMERR_PERM, "allocation %d belongs to user %s, not to uid %d"
                       % (row["allocation_id"], row["user_name"], ctx.uid))


def _user(ctx, body):
    """user_name, user_id and user_group_id, filled from the caller or the password database."""
    name, uid, gid = body.get("user_name"), body.get("user_id"), body.get("user_group_id")
    try:
        if uid is None and name:
            entry = PASSWD.getpwnam(name)
            uid = entry.pw_uid
            gid = entry.pw_gid if gid is None else gid
        if uid is None:
            uid = ctx.uid
        if not name or gid is None:
            entry = PASSWD.getpwuid(uid)
            name, gid = name or entry.pw_name, entry.pw_gid if gid is None else gid
    except KeyError:
        if not name and uid is None:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "unknown user") from None
        if uid is None:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "unknown user %r: give --user_id" % name) from None
        name = name or str(uid)
    return name, uid, ctx.gid if gid is None else gid


def new_allocation(ctx, body):
    """The csm_allocation values of a create, checked."""
    nodes = sorted(set(body["compute_nodes"]))
    if not nodes:
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "no compute nodes given")
    if not 0 <= body.get("isolated_cores", 0) <= MAX_ISOLATED_CORES:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "isolated_cores must be 0-%d" % MAX_ISOLATED_CORES)
    if body["primary_job_id"] <= 0:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "primary_job_id must be positive")
    for key in ("user_flags", "system_flags"):
        if not FLAGS_PATTERN.match(body.get(key) or ""):
            raise CSMError(ErrorCode.CSMERR_ALLOC_BAD_FLAGS, "%s may hold letters, digits, blanks and _.,:=+- only"
                           % key)
    name, uid, gid = _user(ctx, body)
    values = {key: body.get(key) for key in allocations.ALLOCATION_INPUT}
    values.update(user_name=name, user_id=uid, user_group_id=gid, secondary_job_id=body.get("secondary_job_id") or 0,
                  launch_node_name=body.get("launch_node_name") or nodes[0],
                  job_submit_time=body.get("job_submit_time") or time.strftime("%Y-%m-%d %H:%M:%S"),
                  begin_time=time.strftime("%Y-%m-%d %H:%M:%S"))
    return values, nodes


@defer.inlineCallbacks
def create(ctx, body):
    master = ctx.daemon
    values, nodes = new_allocation(ctx, body)
    diagnostics = values["type"] == "diagnostics"
    prolog = values["state"] == "running" and not diagnostics
    key = allocations.reserve_key(values, body.get("shared"), "to-running" if prolog else values["state"],
                                  check_nodes=not diagnostics, check_busy=values["state"] == "running")
    row = allocations.reserved((yield writes(ctx).run(allocations.RESERVE, key, (values, nodes))))
    result = yield master.allocation_locks.run(row["allocation_id"], _create_on_nodes, ctx, row, nodes, prolog)
    return result


@defer.inlineCallbacks
def _create_on_nodes(ctx, row, nodes, prolog):
    master = ctx.daemon
    allocation_id = row["allocation_id"]
    if prolog:
        time_left = budget(ctx)
        results = yield multicast.multicast(master, ALLOCATION_CREATE.cmd_id, nodes, script_body(row, "prolog"),
                                            time_left * PROLOG_SHARE)
        if multicast.node_errors(results):
            yield _roll_back(ctx, row, results)
            raise multi_error(results, "allocation %d rolled back: the prolog" % allocation_id)
        moved = yield writes(ctx).run(allocations.FINISH, ("running", ("to-running",), False),
                                      (allocation_id, readings(results)))
        if not moved:
            raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d was removed during its create"
                           % allocation_id)
        row = moved[0]
    master.job_logs.transaction("allocation", allocation_id, ctx.message.message_id, dict(row, compute_nodes=nodes))
    log.info("allocation {id} created on {n} nodes ({state})", id=allocation_id, n=len(nodes), state=row["state"])
    return dict(row, compute_nodes=nodes)


@defer.inlineCallbacks
def _roll_back(ctx, row, results):
    """After a failed prolog: epilog where the prolog ran, the allocation to history as failed,
    RAS events for the failed nodes."""
    allocation_id = row["allocation_id"]
    ran = sorted(node for node, result in results.items() if result["errcode"] not in DEFINITE_FAILURES)
    if ran:
        undone = yield multicast.multicast(ctx.daemon, ALLOCATION_DELETE.cmd_id, ran, script_body(row, "epilog"),
                                           budget(ctx))
        for node, result in undone.items():
            if result["errcode"] and not results[node]["errcode"]:
                results[node] = dict(result, errmsg="%s (rollback epilog)" % result["errmsg"])
    yield prepared.query_dicts(ctx.db, *allocations.history_statement(allocation_id, None, "failed"))
    yield raise_node_events(ctx, results, "prolog", allocation_id)
    log.warn("allocation {id} rolled back: {errors}", id=allocation_id,
             errors="; ".join(e.errmsg for e in multicast.node_errors(results))[:2000])


@defer.inlineCallbacks
def _one(ctx, body, lock=False):
    """The single live allocation named by id or job id (with the private check)."""
    rows = yield query_dicts(ctx.db, *allocations.find_active_statement(
        body.get("allocation_id"), body.get("primary_job_id"), body.get("secondary_job_id"), lock))
    if not rows:
        what = ("allocation %d" % body["allocation_id"] if body.get("allocation_id") is not None else
                "job %s/%s" % (body.get("primary_job_id"), body.get("secondary_job_id") or 0))
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "%s is not an active allocation" % what)
    if len(rows) > 1:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "job %s/%s has %d active allocations (%s): name one with -a"
                       % (body.get("primary_job_id"), body.get("secondary_job_id") or 0, len(rows),
                          ",".join(str(r["allocation_id"]) for r in rows)))
    check_owner(ctx, rows[0])
    return rows[0]


@defer.inlineCallbacks
def delete(ctx, body):
    allocation_id = body.get("allocation_id")
    if allocation_id is None or ctx.private_check:  # by job id, or the owner is checked: read it first
        allocation_id = (yield _one(ctx, body))["allocation_id"]
    result = yield ctx.daemon.allocation_locks.run(allocation_id, _delete_locked, ctx, allocation_id,
                                                   body.get("exit_status") or 0)
    return result


#: states whose nodes ran the prolog and have not run the epilog yet (or may not have)
NEEDS_EPILOG = ("to-running", "running", "to-staging-out", "running-failed", "staging-out-failed", "deleting-mcast")


@defer.inlineCallbacks
def _active(db, allocation_id):
    """The live allocation row (read again once the allocation's lock is held)."""
    rows = yield query_dicts(db, *allocations.find_active_statement(allocation_id))
    if not rows:
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not an active allocation" % allocation_id)
    return rows[0]


@defer.inlineCallbacks
def _delete_locked(ctx, allocation_id, exit_status):
    """One statement moves the allocation to deleting(-mcast), the epilog runs where the nodes
    need it, one round trip stores the deltas and moves everything to history."""
    master = ctx.daemon
    rows = yield writes(ctx).run(allocations.DELETE_START, NEEDS_EPILOG, (allocation_id,))
    if not rows:
        raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not an active allocation" % allocation_id)
    row = rows[0]
    nodes = row.pop("csm_nodes")
    results = {}
    if row["state"] in NEEDS_EPILOG:
        results = yield multicast.multicast(master, ALLOCATION_DELETE.cmd_id, nodes, script_body(row, "epilog"),
                                            budget(ctx))
    failed = multicast.node_errors(results)
    final = "failed" if failed else "complete"
    history = yield writes(ctx).run(allocations.HISTORY, bool(results), (
        allocation_id, exit_status, final, readings(results) if results else None))
    master.job_logs.transaction("allocation", allocation_id, ctx.message.message_id,
                                dict(history[0] if history else {}, compute_nodes=nodes))
    master.job_logs.allocation_metrics(allocation_id, results)
    if failed:
        yield raise_node_events(ctx, results, "epilog", allocation_id)
        raise multi_error(results, "allocation %d deleted (%s); the epilog" % (allocation_id, final))
    log.info("allocation {id} deleted ({n} nodes)", id=allocation_id, n=len(nodes))
    return {"allocation_id": allocation_id, "state": final}


@defer.inlineCallbacks
def update_state(ctx, body):
    row = yield _one(ctx, body)
    result = yield ctx.daemon.allocation_locks.run(row["allocation_id"], _update_locked, ctx, row["allocation_id"],
                                                   body["new_state"])
    return result


@defer.inlineCallbacks
def _update_locked(ctx, allocation_id, new_state):
    master = ctx.daemon
    db = ctx.db
    row = yield _active(db, allocation_id)
    current = row["state"]
    if current == new_state:
        raise CSMError(ErrorCode.CSM_SAME_STATE_TRANSITION, "allocation %d is already %s" % (allocation_id, current))
    legal = {"running": ("staging-in",), "staging-out": ("staging-in", "running")}[new_state]
    if current not in legal:
        raise CSMError(ErrorCode.CSMERR_STATE_CHANGE_FAILED, "illegal state transition %s -> %s for allocation %d"
                       % (current, new_state, allocation_id))
    nodes = yield db.runInteraction(allocations.nodes_of, allocation_id)
    if new_state == "staging-out" and current == "staging-in":
        yield db.runInteraction(allocations.set_state, allocation_id, "staging-out", ("staging-in",))
        return _updated(ctx, allocation_id, "staging-out", nodes, jumped=True)
    if new_state == "running":
        yield db.runInteraction(_to_running, allocation_id, nodes)
        script, deltas = "prolog", False
    else:
        yield db.runInteraction(allocations.set_state, allocation_id, "to-staging-out", ("running",))
        script, deltas = "epilog", True
    results = yield multicast.multicast(master, ALLOCATION_UPDATE_STATE.cmd_id, nodes, script_body(row, script),
                                        budget(ctx))
    failed = multicast.node_errors(results)
    final = ("%s-failed" % ("running" if new_state == "running" else "staging-out")) if failed else new_state
    yield prepared.query_dicts(db, *allocations.finish_statement(
        allocation_id, final, ("to-running", "to-staging-out"), readings(results), deltas))
    if failed:
        yield raise_node_events(ctx, results, script, allocation_id)
        master.job_logs.transaction("allocation", allocation_id, ctx.message.message_id,
                                    {"allocation_id": allocation_id, "state": final})
        raise multi_error(results, "allocation %d is %s: the %s" % (allocation_id, final, script))
    if script == "epilog":
        master.job_logs.allocation_metrics(allocation_id, results)
    return _updated(ctx, allocation_id, new_state, nodes)


@defer.inlineCallbacks
def _to_running(cursor, allocation_id, nodes):
    """staging-in -> to-running: the nodes must be IN_SERVICE and free, as for a create."""
    yield allocations.lock_nodes(cursor, nodes)
    rows = yield allocations.fetch(cursor, "SELECT bool_or(shared) AS shared FROM csm_allocation_node "
                                           "WHERE allocation_id = %s", (allocation_id,))
    yield allocations.check_free(cursor, nodes, bool(rows and rows[0]["shared"]), allocation_id)
    before = yield allocations.set_state(cursor, allocation_id, "to-running", ("staging-in",))
    if before is None:
        raise CSMError(ErrorCode.CSMERR_STATE_CHANGE_FAILED, "allocation %d left staging-in meanwhile" % allocation_id)


def _updated(ctx, allocation_id, state, nodes, jumped=False):
    ctx.daemon.job_logs.transaction("allocation", allocation_id, ctx.message.message_id,
                                    {"allocation_id": allocation_id, "state": state, "compute_nodes": nodes})
    return {"allocation_id": allocation_id, "state": state, "state_jumped": jumped}


HANDLERS = {ALLOCATION_CREATE.cmd_id: create, ALLOCATION_DELETE.cmd_id: delete,
            ALLOCATION_UPDATE_STATE.cmd_id: update_state}
