"""The master: listens for aggregators and utilities, owns the database."""

from twisted.application import internet
from twisted.internet import defer

from csm.api import health
from csm.api.commands import ECHO
from csm.errors import CSMError, ErrorCode
from csm.net.endpoints import server_endpoint
from csm.roles.daemon import Daemon, DaemonLinkOwner
from csm.roles.peers import PeerTable


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
        for table, endpoint in ((self.aggregators, config.net.aggregator_listen),
                                (self.utilities, config.net.utility_listen)):
            if endpoint is None:
                continue
            owner = DaemonLinkOwner(self, table.role, on_ready=table.connected,
                                    on_lost=table.disconnected, accept=_expect_role(table.role))
            listener = internet.StreamServerEndpointService(
                server_endpoint(self.reactor, endpoint, self.tls), self.link_factory(owner, False))
            listener._raiseSynchronously = True
            listener.setServiceParent(self)

    def build_handlers(self):
        handlers = super().build_handlers()
        handlers[ECHO.cmd_id] = lambda ctx, body: body
        return handlers

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
            "master": self.master_info(),
            "aggregators": [health.peer_entry(p, r) for p, r in aggregators],
            "utilities": [health.peer_entry(p, r) for p, r in utilities],
        }
