"""The aggregator: computes connect to it; it connects to the master."""

from twisted.internet import defer

from prometheus_client.core import GaugeMetricFamily

from csm import logs, metrics
from csm.api import health
from csm.api import multicast
from csm.api.wm_commands import MULTICAST_COMMANDS
from csm.api.commands import AGGREGATOR_REHOME, SOFT_FAILURE_RECOVERY
from csm.api.bb_commands import BB_CMD
from csm.api.cgroup_commands import MULTICAST as NODE_JOB_MULTICAST
from csm.api.diag_commands import DIAG_CHECK
from csm.env.bds import BdsSink
from csm.errors import CSMError, ErrorCode
from csm.roles.connection_words import FAILOVER, PROMOTE, RESET, RESTART
from csm.roles.daemon import INVENTORY_ID, Daemon, DaemonLinkOwner
from csm.roles.compute_port import ComputePort
from csm.roles.peers import PeerTable
from csm.roles.upstream import MasterClient, UpstreamLink
from csm.wire import Flags, InternalCommand, Message

log = logs.logger("csmnet")

#: RAS type of a compute refused because another has its node name.
DUPLICATE_NODE = "csm.status.duplicate_node"


def _accept_compute(link, hello):
    if hello.get("role") != "compute" or not hello.get("node"):
        raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "this port is for compute daemons")


def _address(link):
    address = link.transport.getPeer() if link.transport is not None else None
    return "%s:%s" % (address.host, address.port) if hasattr(address, "port") else str(address)


class ComputeLinkOwner(DaemonLinkOwner):
    """Compute links: connection control messages are handled here, not routed."""

    def message_received(self, link, message):
        if message.command == InternalCommand.CONNECTION_CTRL:
            self.daemon.connection_ctrl(link, message)
        else:
            self.daemon.dispatch(link, message)


class AggregatorDaemon(MasterClient, Daemon):
    role = "aggregator"

    def __init__(self, config, reactor=None, **kw):
        super().__init__(config, reactor, **kw)
        self.computes = PeerTable("compute")
        owner = DaemonLinkOwner(self, "master", on_ready=self._master_ready,
                                on_lost=self._master_lost)
        self.master = UpstreamLink(self, config.net.master_list, owner, "master")
        self.master.service.setServiceParent(self)
        factory = self.link_factory(
            ComputeLinkOwner(self, "compute", on_ready=self._compute_ready, on_lost=self._compute_lost,
                             accept=self._accept_compute), False)
        #: The compute port: open only while the master is reachable
        self.compute_port = ComputePort(self.reactor, self.clock, config.net.compute_listen, self.tls, factory,
                                        wanted=lambda: self.master.current() is not None)
        self.compute_port.setServiceParent(self)
        self.bds = None
        if config.bds.host:
            self.bds = BdsSink(self.reactor, config.bds)
            self.bds.service.setServiceParent(self)
        #: the latest environmental records per node, by record type
        self.latest_env = {}
        #: the latest inventory of each compute (not persisted, as CAST)
        self.inventories = {}
        #: node -> the link kept when a compute of the same name was last refused
        self._duplicates = {}

    def build_handlers(self):
        handlers = super().build_handlers()
        handlers[InternalCommand.ENVIRONMENTAL_DATA] = self._environmental_data
        handlers[INVENTORY_ID] = self._compute_inventory
        handlers[AGGREGATOR_REHOME.cmd_id] = self._rehome
        for command in MULTICAST_COMMANDS + (SOFT_FAILURE_RECOVERY, DIAG_CHECK, BB_CMD) + NODE_JOB_MULTICAST:
            handlers[command.cmd_id] = multicast.aggregator_handler
        return handlers

    def _rehome(self, ctx, body):
        """From the master: ask the computes served here as secondary to make this their primary."""
        wanted = set(body.get("computes") or ())
        asked = []
        for peer in self.computes.active():
            if not peer.primary and peer.node in wanted:
                peer.link.send(Message.make(InternalCommand.CONNECTION_CTRL, PROMOTE, flags=Flags.INT | Flags.NOREPLY))
                asked.append(peer.node)
        log.info("re-homing {n} computes to this aggregator", n=len(asked))
        return {"aggregator": self.node_name, "computes": sorted(asked)}

    def _compute_inventory(self, ctx, body):
        """Keep each compute's latest inventory; the master gets those of primary links."""
        if getattr(ctx.link, "peer_role", "") != "compute":
            raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "only a compute sends its inventory to an aggregator")
        node = ctx.link.peer_node
        self.inventories[node] = body
        peer = self.computes.get(node)
        if peer is not None and peer.primary:
            self._forward_inventory(node)

    def _forward_inventory(self, node):
        link = self.master.current()
        inventory = self.inventories.get(node)
        if link is not None and inventory is not None:
            link.send(Message.make(INVENTORY_ID, inventory, flags=Flags.INT | Flags.NOREPLY))

    def metric_families(self):
        """The latest environmental values per node, the BDS queue, the computes by link role."""
        bds = GaugeMetricFamily("csm_bds_queued_records", "Records waiting for the BDS")
        bds.add_metric([], len(self.bds.queue) if self.bds else 0)
        computes = GaugeMetricFamily("csm_aggregator_computes", "Compute links by role",
                                     labels=["link"])
        active = self.computes.active()
        computes.add_metric(["PRIMARY"], sum(1 for p in active if p.primary))
        computes.add_metric(["SECONDARY"], sum(1 for p in active if not p.primary))
        return metrics.environment_families(self.latest_env) + [bds, computes]

    def _environmental_data(self, ctx, body):
        """Records from a compute: keep the latest, stream them all to the BDS."""
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "environmental data without records")
        records = [r for r in records if isinstance(r, dict) and "type" in r]
        for record in records:
            self.latest_env.setdefault(record.get("source", ""), {})[record["type"]] = record
        if self.bds is not None:
            self.bds.add(records)

    def _master_ready(self, link):
        self.master.ready(link)
        self._report_computes([self._entry(p) for p in self.computes.active()], full=True)
        self.send_inventory(link)
        for peer in self.computes.active():
            if peer.primary:
                self._forward_inventory(peer.node)
        self.compute_port.open()

    def _master_lost(self, link):
        """As CAST: without the master, drop every compute so they fail over.

        Each compute is forgotten at once, not when its link has finished closing (thousands
        of TLS closes take seconds): a master back before then would otherwise be told of
        computes that are going, then of each one's loss (a down event and a soft failure
        for every node at every master restart)."""
        self.master.lost(link)
        self.compute_port.close()
        for compute in self.computes.links():
            self.computes.disconnected(compute)
            compute.close("master connection lost")

    def _accept_compute(self, link, hello):
        """A compute's hello; refused while another compute of that name has a live link here
        (a compute that comes back finds its old link gone, or no longer heard from, and replaces it)."""
        _accept_compute(link, hello)
        node = hello["node"]
        peer = self.computes.get(node)
        current = peer.link if peer is not None else None
        if current is None or current is link or not current.usable or current.state != "HAPPY":
            return
        where, there = _address(link), _address(current)
        if self._duplicates.get(node) is not current:  # one event per link that is kept
            self._duplicates[node] = current
            self.raise_ras(DUPLICATE_NODE, node, raw_data="refused %s; connected %s" % (where, there),
                           kvcsv="address=%s,aggregator=%s" % (where, self.node_name))
        raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "node name %s is already connected to aggregator %s "
                       "(from %s): two computes have the same name" % (node, self.node_name, there))

    def _compute_ready(self, link):
        peer = self.computes.connected(link)
        self._report_computes([self._entry(peer)])

    def _compute_lost(self, link):
        peer = self.computes.disconnected(link)
        if peer is not None:
            self._report_computes([{"node": peer.node, "up": False}])

    @staticmethod
    def _entry(peer):
        return {"node": peer.node, "up": peer.link is not None, "primary": peer.primary}

    def _report_computes(self, entries, full=False):
        """Tell the master which computes this aggregator reaches (NODESET_UPDATE)."""
        link = self.master.current()
        if link is not None and (entries or full):
            link.send(Message.make(InternalCommand.NODESET_UPDATE, {"computes": entries, "full": full},
                                   flags=Flags.INT | Flags.NOREPLY))

    def links(self):
        return [("master", self.master.current())] + [
            ("compute %s (%s)" % (p.node, "PRIMARY" if p.primary else "SECONDARY"), p.link)
            for p in self.computes if p.link is not None]

    def connection_ctrl(self, link, message):
        """A compute says this link is now its primary (FAIL0VER) or secondary (R3S3T)."""
        peer = self.computes.get(link.peer_node)
        try:
            word = message.body()
        except ValueError:
            word = None
        if peer is None or peer.link is not link:
            return
        if word == FAILOVER:
            peer.primary = True
            self._forward_inventory(peer.node)
        elif word == RESET:
            peer.primary = False
        elif word != RESTART:
            log.warn("unknown connection control {word!r} from {node}", word=word, node=peer.node)
            return
        log.info("compute {node}: {word}; link is {state}", node=peer.node, word=word,
                 state="PRIMARY" if peer.primary else "SECONDARY")
        self._report_computes([self._entry(peer)])

    @defer.inlineCallbacks
    def probe_report(self, ctx, body):
        timeout = health.probe_timeout(ctx, body)
        computes = yield health.probe_all(self.computes, timeout)
        report = self.info()
        report["computes"] = [
            health.peer_entry(p, r, link="PRIMARY" if p.primary else "SECONDARY")
            for p, r in computes]
        return report
