"""The master: listens for aggregators and utilities, owns the database."""

import collections

from twisted.application import internet
from twisted.internet import defer

from csm import logs
from csm.api import health
from csm.api.commands import ECHO
from csm.errors import CSMError, ErrorCode
from csm.net.endpoints import server_endpoint
from csm.roles.daemon import Daemon, DaemonLinkOwner
from csm.roles.nodeset import NodeSet
from csm.roles.peers import PeerTable
from csm.wire import InternalCommand

rlog = logs.logger("csmras")


def _expect_role(role):
    def accept(link, hello):
        if hello.get("role") != role:
            raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "this port is for %ss, not %s"
                           % (role, hello.get("role") or "an unknown role"))
        if not hello.get("node"):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "hello without a node name")
    return accept


class MasterDaemon(Daemon):
    role = "master"

    def __init__(self, config, reactor=None, **kw):
        super().__init__(config, reactor, **kw)
        self.aggregators = PeerTable("aggregator")
        self.utilities = PeerTable("utility")
        self.raised = collections.deque(maxlen=1000)
        self.nodeset = NodeSet(self._compute_event, self._primary_changed)
        for table, endpoint in ((self.aggregators, config.net.aggregator_listen),
                                (self.utilities, config.net.utility_listen)):
            if endpoint is None:
                continue
            owner = DaemonLinkOwner(self, table.role, on_ready=table.connected,
                                    on_lost=self._peer_lost(table), accept=_expect_role(table.role))
            listener = internet.StreamServerEndpointService(
                server_endpoint(self.reactor, endpoint, self.tls), self.link_factory(owner, False))
            listener._raiseSynchronously = True
            listener.setServiceParent(self)

    def build_handlers(self):
        handlers = super().build_handlers()
        handlers[ECHO.cmd_id] = lambda ctx, body: body
        handlers[InternalCommand.NODESET_UPDATE] = self._nodeset_update
        return handlers

    def _peer_lost(self, table):
        def lost(link):
            peer = table.disconnected(link)
            if peer is not None and table is self.aggregators:
                self.nodeset.aggregator_lost(peer.node)
        return lost

    def _nodeset_update(self, ctx, body):
        if ctx.link is None or ctx.link.peer_role != "aggregator":
            raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "node set updates come from aggregators")
        self.nodeset.update(ctx.link.peer_node, body.get("computes") or [], full=bool(body.get("full")))

    def ras_event(self, msg_id, location_name, raw_data=""):
        """Raise a RAS event from the master itself."""
        rlog.info("RAS {msg_id} on {location}: {raw}", msg_id=msg_id, location=location_name, raw=raw_data)
        self.raised.append((msg_id, location_name, raw_data))

    def _compute_event(self, msg_id, node, aggregator):
        self.ras_event(msg_id, node, "aggregator %s" % aggregator)

    def _primary_changed(self, view):
        rlog.info("compute {node}: primary {primary}, secondary {secondary}", node=view.node,
                  primary=view.primary, secondary=view.secondary)

    def links(self):
        return ([("aggregator " + p.node, p.link) for p in self.aggregators]
                + [("utility " + p.node, p.link) for p in self.utilities])

    def master_info(self):
        return self.info()

    @defer.inlineCallbacks
    def cluster_report(self, ctx, body):
        timeout = health.probe_timeout(ctx, body)
        verbose = bool(body.get("verbose_health"))
        aggregators, utilities = yield defer.gatherResults([
            health.probe_all(self.aggregators, timeout, verbose),
            health.probe_all(self.utilities, timeout, verbose)])
        return {
            "master": dict(self.master_info(), computes=len(self.nodeset.computes)),
            "aggregators": [health.peer_entry(p, r) for p, r in aggregators],
            "utilities": [health.peer_entry(p, r) for p, r in utilities],
        }
