"""CSM's verdicts about nodes reach Slurm (``csm.ras.slurm`` in the master's config).

A node that CSM puts in SOFT_FAILURE or HARD_FAILURE is drained in Slurm with the
reason ``csm: <msg_id>`` (the RAS event that did it; else the change's cause, e.g.
``csm: CSM API``); a node CSM returns to IN_SERVICE is resumed, but only while its
drain reason is ours, so a drain an administrator made stays. A node already drained
for another reason is left as it is.

The changes come from the database (``NodeStateFeed``: LISTEN on ``csm_node_state``,
which schema 19.5 notifies at the commit of every real state change), so every path
that changes a state is covered; when the feed starts listening (the master's start,
a reconnection) Slurm is brought in line with every node's state. ``scontrol`` and
``sinfo`` run as child processes; the changes of one node are applied in order.
"""

import json
import os

from twisted.application import service
from twisted.internet import defer, task, utils

from csm import logs
from csm.db.connection import Connection, Detector, close as close_connection

log = logs.logger("csmras")

CHANNEL = "csm_node_state"
APPLICATION_NAME = "csm-slurm-feed"  # the feed's session in pg_stat_activity
DRAIN_STATES = ("SOFT_FAILURE", "HARD_FAILURE")
REASON_PREFIX = "csm: "
#: seconds between attempts to reach the database again, and between liveness probes
RETRY_DELAY, PROBE_INTERVAL = 2.0, 15.0


class SlurmNodes:
    """Drains and resumes Slurm nodes with ``scontrol`` (``sinfo`` reads a node first)."""

    def __init__(self, reactor, scontrol="scontrol", slurm_conf=""):
        self.reactor = reactor
        self.scontrol = scontrol
        self.sinfo = os.path.join(os.path.dirname(scontrol), "sinfo") if os.path.dirname(scontrol) else "sinfo"
        self.env = dict(os.environ)
        if slurm_conf:
            self.env["SLURM_CONF"] = slurm_conf
        self._locks = {}  # node -> the DeferredLock its changes take in turn

    def changed(self, node, state, cause):
        """Apply a CSM state change of ``node`` after the ones before it; fires when done."""
        if state in DRAIN_STATES:
            step = lambda: self.drain(node, REASON_PREFIX + cause)  # noqa: E731
        elif state == "IN_SERVICE":
            step = lambda: self.resume(node)  # noqa: E731
        else:
            return defer.succeed(None)
        lock = self._locks.setdefault(node, defer.DeferredLock())

        def forget(result):
            if not lock.locked and not lock.waiting and self._locks.get(node) is lock:
                del self._locks[node]
            return result
        return lock.run(step).addBoth(forget)

    def _run(self, executable, *args):
        """(exit status, output) of one Slurm command."""
        d = utils.getProcessOutputAndValue(executable, args, env=self.env, reactor=self.reactor)
        return d.addCallback(lambda out: (out[2], (out[0] + out[1]).decode(errors="replace").strip()))

    @defer.inlineCallbacks
    def node(self, node):
        """(Slurm state, drain reason) of ``node``; None when Slurm does not know it."""
        code, out = yield self._run(self.sinfo, "-h", "-N", "-n", node, "-o", "%T|%E")
        if code or "|" not in out:
            return None
        state, reason = out.splitlines()[0].split("|", 1)
        return state.lower(), reason

    @defer.inlineCallbacks
    def reconcile(self, csm_states):
        """Bring Slurm in line with ``csm_states`` ({node: (state, cause)}) after a time of not
        listening (the master's start, a lost database connection): one ``sinfo`` for every node,
        then a drain or resume where they disagree. Fires with the nodes changed."""
        code, out = yield self._run(self.sinfo, "-h", "-N", "-o", "%N|%T|%E")
        if code:
            log.warn("Slurm: sinfo failed ({code}): {out}", code=code, out=out)
            return []
        work = []
        for line in sorted(set(out.splitlines())):
            node, _, rest = line.partition("|")
            state, _, reason = rest.partition("|")
            if node not in csm_states:
                continue
            csm_state, cause = csm_states[node]
            drained = "drain" in state.lower()
            if csm_state in DRAIN_STATES and not drained or \
                    csm_state == "IN_SERVICE" and drained and reason.startswith(REASON_PREFIX):
                work.append(self.changed(node, csm_state, cause).addCallback(lambda done, node=node: done and node))
        done = yield defer.gatherResults(work)
        return sorted(node for node in done if node)

    @defer.inlineCallbacks
    def drain(self, node, reason):
        """Drain ``node`` with ``reason`` unless Slurm does not know it or drains it for another reason."""
        known = yield self.node(node)
        if known is None:
            log.info("Slurm: {node} is not a Slurm node: not drained", node=node)
            return False
        state, current = known
        if "drain" in state and not current.startswith(REASON_PREFIX):
            log.info("Slurm: {node} stays drained for {reason!r}", node=node, reason=current)
            return False
        ok = yield self._update(node, "state=drain", "reason=" + reason)
        return ok

    @defer.inlineCallbacks
    def resume(self, node):
        """Resume ``node`` when Slurm drains it for a reason of ours."""
        known = yield self.node(node)
        if known is None or not known[1].startswith(REASON_PREFIX):
            return False
        ok = yield self._update(node, "state=resume")
        return ok

    @defer.inlineCallbacks
    def _update(self, node, *settings):
        code, out = yield self._run(self.scontrol, "update", "nodename=" + node, *settings)
        if code:
            log.warn("Slurm: scontrol update nodename={node} {settings} failed ({code}): {out}", node=node,
                     settings=" ".join(settings), code=code, out=out)
            return False
        log.info("Slurm: {node} {settings}", node=node, settings=" ".join(settings))
        return True


#: every node's state with the cause of its latest change (the RAS msg_id where there is one)
STATES_SQL = """SELECT n.node_name, n.state::text,
       (SELECT coalesce(h.ras_msg_id, h.alteration) FROM csm_node_state_history h
         WHERE h.node_name = n.node_name ORDER BY h.history_time DESC LIMIT 1)
  FROM csm_node n"""


class NodeStateFeed(service.Service):
    """One database connection LISTENing on ``csm_node_state``; each change goes to
    ``on_change(node, state, cause)``. Reconnects when the database goes and comes back;
    once listening (at start and after each reconnection), every node's state goes to
    ``on_listening({node: (state, cause)})``, so nothing changed meanwhile is missed."""

    def __init__(self, reactor, dsn, on_change, on_listening=None):
        self.reactor = reactor
        self.dsn = dsn
        self.on_change = on_change
        self.on_listening = on_listening
        self.connection = None
        self.listening = False
        self._retry = None
        self._probe = task.LoopingCall(self._alive)
        self._probe.clock = reactor

    def startService(self):
        super().startService()
        self._connect()
        self._probe.start(PROBE_INTERVAL, now=False)

    def stopService(self):
        super().stopService()
        if self._probe.running:
            self._probe.stop()
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._drop()

    def _drop(self):
        self.listening = False
        if self.connection is not None:
            close_connection(self.connection)
            self.connection = None

    @defer.inlineCallbacks
    def _connect(self):
        self._retry = None
        connection = Connection(self.reactor, detector=Detector(self.reactor, on_death=self._lost))
        self.connection = connection
        try:
            yield connection.connect(self.dsn, application_name=APPLICATION_NAME)
            connection.addNotifyObserver(self._notified)
            yield connection.runOperation("LISTEN " + CHANNEL)
            rows = yield connection.runQuery(STATES_SQL) if self.on_listening is not None else []
        except Exception as exc:
            if connection is self.connection:
                log.warn("Slurm node feed: cannot listen on the database ({error}); again in {delay} s",
                         error=str(exc).strip().splitlines()[0] if str(exc).strip() else exc, delay=RETRY_DELAY)
                self._lost()
            return
        self.listening = True
        log.info("Slurm node feed: listening for node state changes")
        if self.on_listening is not None:
            states = {node: (state, cause or "CSM") for node, state, cause in rows}
            defer.maybeDeferred(self.on_listening, states).addErrback(
                lambda failure: log.failure("Slurm: bringing Slurm in line with CSM", failure))

    def _lost(self):
        if not self.running or self._retry is not None:
            return
        self._drop()
        self._retry = self.reactor.callLater(RETRY_DELAY, self._connect)

    def _alive(self):
        if self.listening:
            self.connection.runOperation("SELECT 1").addErrback(lambda _: self._lost())

    def _notified(self, notify):
        try:
            change = json.loads(notify.payload)
            node, state = change["node_name"], change["state"]
        except (ValueError, KeyError, TypeError):
            log.warn("Slurm node feed: unreadable notification {payload!r}", payload=notify.payload)
            return None
        cause = change.get("ras_msg_id") or change.get("alteration") or "CSM"
        # not returned: txpostgres would hold every later notification until this one's Slurm work ends
        defer.maybeDeferred(self.on_change, node, state, cause).addErrback(
            lambda failure: log.failure("Slurm: {node} -> {state}", failure, node=node, state=state))


def slurm_feed(reactor, dsn, config):
    """The master's service for ``csm.ras.slurm`` (a ``RasSlurmConfig``) on the database at ``dsn``."""
    nodes = SlurmNodes(reactor, config.scontrol, config.slurm_conf)
    return NodeStateFeed(reactor, dsn, nodes.changed, nodes.reconcile)
