"""Multicast: the master runs one command on many computes through their aggregators.

The master splits the nodes by their current primary aggregator and sends each
aggregator one INT|MTC request; each aggregator sends the command to those of
its computes that use it as primary, gathers their answers under the timeout
it was given, and answers with one combined reply. Every node gets a result:
its answer, or an error saying it failed, was not reachable, or did not answer.
"""

from twisted.internet import defer

from twisted.python.failure import Failure

from csm.errors import CSMError, ErrorCode, NodeError
from csm.wire import Flags, Message, checksum
from csm.wire.message import encode_body

#: each level keeps this much of its timeout back for the level above
LEVEL_MARGIN = 1.0


def _result(errcode, errmsg, output=None):
    return {"errcode": int(errcode), "errmsg": errmsg, "output": output}


def node_errors(results):
    """The failed nodes of a multicast as ``NodeError``s (sorted by node)."""
    return [NodeError(node, r["errcode"], r["errmsg"]) for node, r in sorted(results.items()) if r["errcode"]]


#: how long a multicast waits for unreachable nodes to find a new primary aggregator
RESEND_WAIT = 5.0


@defer.inlineCallbacks
def multicast(master, command_id, nodes, body, timeout):
    """On the master: fires with ``{node: {"errcode", "errmsg", "output"}}`` for every node.

    Nodes that could not be reached (their aggregator went away during the call,
    or they had just moved to another) are sent the command once more when the
    node set shows them on a connected aggregator again, within the timeout.
    The compute side joins a repeated script for the same allocation.
    """
    deadline = master.clock.seconds() + timeout
    results = yield _send(master, command_id, nodes, body, timeout)
    unreachable = sorted(node for node, r in results.items() if r["errcode"] == ErrorCode.CSMERR_SENDRCV_ERROR)
    if unreachable:
        waited = yield _wait_for_primaries(master, unreachable, min(RESEND_WAIT, deadline - master.clock.seconds()
                                                                    - LEVEL_MARGIN))
        if waited:
            again = yield _send(master, command_id, waited, body, deadline - master.clock.seconds())
            results.update(again)
    return results


def _reachable(master, node):
    aggregator = master.nodeset.primary_of(node)
    peer = master.aggregators.get(aggregator) if aggregator else None
    return peer is not None and peer.link is not None and peer.link.usable


@defer.inlineCallbacks
def _wait_for_primaries(master, nodes, most):
    """The nodes that have a connected primary aggregator within ``most`` seconds: looked at
    again each time an aggregator reports its computes (or is lost), not polled."""
    if most <= 1.0:
        return []
    deadline = master.clock.seconds() + most
    while not all(_reachable(master, node) for node in nodes):
        left = deadline - master.clock.seconds()
        if left <= 0:
            break
        try:
            yield master.nodeset.when_changed().addTimeout(left, master.clock)
        except defer.TimeoutError:
            break
    return [node for node in nodes if _reachable(master, node)]


@defer.inlineCallbacks
def _send(master, command_id, nodes, body, timeout):
    results = {}
    calls = []
    for aggregator, group in master.nodeset.by_primary(nodes).items():
        peer = master.aggregators.get(aggregator) if aggregator else None
        if peer is None or peer.link is None or not peer.link.usable:
            for node in group:
                results[node] = _result(ErrorCode.CSMERR_SENDRCV_ERROR, "no aggregator reaches %s" % node)
            continue
        message = Message.make(command_id, {"nodes": group, "body": body, "timeout": timeout - LEVEL_MARGIN},
                               flags=Flags.INT | Flags.MTC)
        calls.append((group, peer.link.request(message, timeout)))
    for group, call in calls:
        try:
            reply = yield call
            if reply.is_error:
                raise reply.error()
            answered = reply.body().get("results", {})
        except CSMError as exc:
            answered = {}
            error = exc
        else:
            error = CSMError(ErrorCode.CSMERR_TIMEOUT, "no answer")
        for node in group:
            results[node] = answered.get(node) or _result(error.errcode, "%s: %s" % (node, error.errmsg))
    return results


def fan_out(aggregator, ctx, body):
    """On an aggregator: the command to each listed compute that uses it as primary; fires
    with ``{"results": {node: result}}`` once every node has answered or failed. Each
    answer is stored by a callback on its request (no generator, no list of Deferreds:
    a one-node allocation's fan-out is one request and two callbacks)."""
    timeout = max(1.0, float(body.get("timeout") or ctx.remaining()))
    results = {}
    done = defer.Deferred()
    left = [1]  # the requests still out, and the loop sending them: one answered at once ends nothing

    def answered(reply, node):
        if reply.is_error:
            error = reply.error()
            results[node] = _result(error.errcode, error.errmsg)
        else:
            results[node] = _result(0, "", reply.body())

    def failed(reason, node):
        reason.trap(CSMError)
        results[node] = _result(reason.value.errcode, "%s: %s" % (node, reason.value.errmsg))

    def one_less(outcome):
        left[0] -= 1
        if done.called:
            return None
        if isinstance(outcome, Failure):  # not a CSMError: a bug, the whole fan-out fails with it
            done.errback(outcome)
        elif not left[0]:
            done.callback({"results": results})
        return None

    payload = None
    for node in body.get("nodes") or ():
        peer = aggregator.computes.get(node)
        if peer is None or peer.link is None or not peer.primary:
            results[node] = _result(ErrorCode.CSMERR_SENDRCV_ERROR, "%s is not a primary compute of %s"
                                    % (node, aggregator.node_name))
            continue
        if payload is None:  # one body and its checksum for every node
            payload = encode_body(dict(body.get("body") or {}, timeout=timeout - LEVEL_MARGIN))
            payload_sum = checksum.xor_words(payload)
        left[0] += 1
        message = Message(ctx.message.command, flags=int(Flags.INT), payload=payload, payload_sum=payload_sum)
        peer.link.request(message, timeout).addCallbacks(answered, failed, (node,), None, (node,)).addBoth(
            one_less)
    one_less(None)  # every request is out
    return done


def aggregator_handler(ctx, body):
    """On an aggregator, for every multicast API: the master's multicast fans out (a
    caller's request climbs to the master: the router's ``route``)."""
    return fan_out(ctx.daemon, ctx, body)
