"""``csm_soft_failure_recovery``: the master's side (the compute's: ``compute_handlers.py``)."""

import collections

from twisted.internet import defer

from csm import logs
from csm.api import multicast
from csm.db.queries import query_dicts

CANDIDATES = """
SELECT node_name FROM csm_node
 WHERE state = 'SOFT_FAILURE' AND type = 'compute'
   AND node_name NOT IN (SELECT node_name FROM csm_allocation_node)
 ORDER BY node_name
"""
RETRIES_EXCEEDED = "csm.soft_failure_recovery.retries_exceeded"
log = logs.logger("csmapi")


def _back_in_service(cursor, nodes):
    return cursor.execute("SELECT fn_csm_node_state_update(%s, 'IN_SERVICE', 'SOFT FAILURE RECOVERY', "
                          "ARRAY['SOFT_FAILURE']::compute_node_states[])", (nodes,))


class RecoveryCounts:
    """Failed attempts per node, kept across runs (CAST rebuilt them each run, so a retry
    count over 1 never fired); a success forgets the node."""

    def __init__(self):
        self.failures = collections.Counter()


@defer.inlineCallbacks
def master_handler(ctx, body):
    master = ctx.daemon
    db = ctx.db
    rows = yield query_dicts(db, CANDIDATES)
    nodes = [row["node_name"] for row in rows]
    if not nodes:
        return {"recovered": [], "error_count": 0, "none_in_soft_failure": True}
    results = yield multicast.multicast(master, ctx.message.command, nodes, {}, max(2.0, ctx.remaining() - 2.0))
    good = sorted(node for node, result in results.items() if not result["errcode"])
    if good:
        yield db.runInteraction(_back_in_service, good)
    counts = master.recovery.failures
    for node in good:
        counts.pop(node, None)
    retry = max(1, body.get("retry_count") or 1)
    for node in results:
        if results[node]["errcode"]:
            counts[node] += 1
            if counts[node] >= retry:
                master.ras_event(RETRIES_EXCEEDED, node, kvcsv="retries=%d" % counts[node])
                del counts[node]
    errors = multicast.node_errors(results)
    if errors:  # CAST answers success and lists the nodes that failed
        log.warn("soft failure recovery: {failed} of {count} nodes not recovered ({good} recovered)",
                 failed=len(errors), count=len(nodes), good=",".join(good) or "none")
    return {"recovered": good, "error_count": len(errors), "node_errors": [e.to_json() for e in errors]}
