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


def multicast(master, command_id, nodes, body, timeout):
    """On the master: fires with ``{node: {"errcode", "errmsg", "output"}}`` for every node.

    Nodes that could not be reached (their aggregator went away during the call,
    or they had just moved to another) are sent the command once more when the
    node set shows them on a connected aggregator again, within the timeout.
    The compute side joins a repeated script for the same allocation.
    """
    deadline = master.clock.seconds() + timeout
    return _send(master, command_id, nodes, body, timeout).addCallback(_again, master, command_id, body, deadline)


def _again(results, master, command_id, body, deadline):
    """``results``, once the unreachable nodes among them were sent the command again
    (``_resend``: only then a generator)."""
    unreachable = sorted(node for node, r in results.items() if r["errcode"] == ErrorCode.CSMERR_SENDRCV_ERROR)
    if not unreachable:
        return results
    return _resend(master, command_id, body, deadline, results, unreachable)


@defer.inlineCallbacks
def _resend(master, command_id, body, deadline, results, unreachable):
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


def _send(master, command_id, nodes, body, timeout):
    """Fires with ``{node: result}`` once every aggregator answered for its nodes or failed;
    each answer is stored by callbacks on its request, as ``fan_out`` does."""
    results, sent, answers = {}, [], {}  # the unreached first, then the groups sent, in order

    def answered(reply, group):
        if reply.is_error:
            raise reply.error()
        mine = reply.body().get("results", {})
        for node in group:
            answers[node] = mine.get(node) or _result(ErrorCode.CSMERR_TIMEOUT, "%s: no answer" % node)

    def failed(reason, group):
        reason.trap(CSMError)
        for node in group:
            answers[node] = _result(reason.value.errcode, "%s: %s" % (node, reason.value.errmsg))

    def combined():
        results.update((node, answers[node]) for node in sent)
        return results

    gather = _Gather(combined)
    for aggregator, group in master.nodeset.by_primary(nodes).items():
        peer = master.aggregators.get(aggregator) if aggregator else None
        if peer is None or peer.link is None or not peer.link.usable:
            for node in group:
                results[node] = _result(ErrorCode.CSMERR_SENDRCV_ERROR, "no aggregator reaches %s" % node)
            continue
        message = Message.make(command_id, {"nodes": group, "body": body, "timeout": timeout - LEVEL_MARGIN},
                               flags=Flags.INT | Flags.MTC)
        sent.extend(group)
        gather.add(peer.link.request(message, timeout).addCallback(answered, group).addErrback(failed, group))
    return gather.sent()


class _Gather:
    """Fires ``done`` with ``value()`` once every request added has ended and ``sent()`` was
    called (one answered at once ends nothing early); a failure that is not handled (not a
    CSMError: a bug) fails it."""

    def __init__(self, value):
        self.value, self.left, self.done = value, 1, defer.Deferred()

    def add(self, d):
        self.left += 1
        d.addBoth(self._one_less)

    def sent(self):
        self._one_less(None)
        return self.done

    def _one_less(self, outcome):
        self.left -= 1
        if self.done.called:
            return None
        if isinstance(outcome, Failure):
            self.done.errback(outcome)
        elif not self.left:
            self.done.callback(self.value())
        return None


def fan_out(aggregator, ctx, body):
    """On an aggregator: the command to each listed compute that uses it as primary; fires
    with ``{"results": {node: result}}`` once every node has answered or failed. Each
    answer is stored by a callback on its request (no generator, no list of Deferreds:
    a one-node allocation's fan-out is one request and two callbacks)."""
    timeout = max(1.0, float(body.get("timeout") or ctx.remaining()))
    results = {}

    def answered(reply, node):
        if reply.is_error:
            error = reply.error()
            results[node] = _result(error.errcode, error.errmsg)
        else:
            results[node] = _result(0, "", reply.body())

    def failed(reason, node):
        reason.trap(CSMError)
        results[node] = _result(reason.value.errcode, "%s: %s" % (node, reason.value.errmsg))

    gather = _Gather(lambda: {"results": results})
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
        message = Message(ctx.message.command, flags=int(Flags.INT), payload=payload, payload_sum=payload_sum)
        gather.add(peer.link.request(message, timeout).addCallbacks(answered, failed, (node,), None, (node,)))
    return gather.sent()


def aggregator_handler(ctx, body):
    """On an aggregator, for every multicast API: the master's multicast fans out (a
    caller's request climbs to the master: the router's ``route``)."""
    return fan_out(ctx.daemon, ctx, body)
