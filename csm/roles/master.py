"""The master: listens for aggregators and utilities, owns the database."""

import collections

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.application.internet import TimerService
from twisted.internet import defer

from csm import logs
from csm.api import allocation, allocation_query, bb, cgroup, diag, health, node, ras, recovery, step, switch
from csm.api.joblogs import JobLogs
from csm.api.router import reply_body
from csm.db import inventory
from csm.db.merged import Merger
from csm.db.pool import DatabasePool, dsn_from_config
from csm.ras.actions import ActionRunner
from csm.logfile import JsonLines
from csm.ras.engine import RasEngine
from csm.api.commands import AGGREGATOR_REHOME, ECHO, SOFT_FAILURE_RECOVERY, SSD_WEAR_UPDATE
from csm.errors import CSMError, ErrorCode
from csm.metrics import ComputeLinks
from csm.net.endpoints import server_endpoint
from csm.net.listen import ListeningService
from csm.net.readsize import MASTER_READ, limit_reads
from csm.roles.daemon import INVENTORY_ID, Daemon, DaemonLinkOwner
from csm.roles.database import DatabaseService
from csm.roles.nodeset import NodeSet
from csm.roles.peers import PeerTable
from csm.roles.standby import ActiveOnly, Standby, session_dsn
from csm.wire import Flags, InternalCommand, Message

log = logs.logger("csmd")
rlog = logs.logger("csmras")

#: seconds between counts of nodes and allocations by state (the metrics' gauges)
NODE_COUNT_INTERVAL = 5


def _expect_role(role):
    def accept(link, hello):
        if hello.get("role") != role:
            raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "this port is for %ss, not %s"
                           % (role, hello.get("role") or "an unknown role"))
        if not hello.get("node"):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "hello without a node name")
    return accept


def _reading_in_turns(connected):
    """``connected`` for a daemon link that reads ``MASTER_READ`` bytes a turn (``csm.net.readsize``)."""
    def ready(link):
        limit_reads(link, MASTER_READ)
        return connected(link)
    return ready


class MasterDaemon(Daemon):
    role = "master"

    def __init__(self, config, reactor=None, **kw):
        super().__init__(config, reactor, **kw)
        self.aggregators = PeerTable("aggregator")
        self.utilities = PeerTable("utility")
        self.nodeset = NodeSet(self._compute_event, self._primary_changed)
        self.compute_links = ComputeLinks()
        self.ras_counts = collections.Counter()
        self.recovery = recovery.RecoveryCounts()
        self.allocation_locks = allocation.AllocationLocks()
        self.job_logs = JobLogs(config.log, self.clock)
        self.node_counts = {}
        self.allocation_counts = {}
        self.db = None
        self.database = None
        self.allocation_writes = None
        self.ras = None
        self.while_active = None
        if config.db.enabled:
            dsn = session_dsn(dsn_from_config(config.db), self.node_name) if config.ha.enabled else None
            self.db = DatabasePool(config.db, self.reactor, dsn=dsn, on_overflow=self._queue_overflow)
            self.allocation_writes = Merger(self.db, self.reactor)
            self.aggregator_columns = inventory.AggregatorColumns(self.db)
            event_log = JsonLines(config.ras.event_log, clock=self.clock) if config.ras.event_log else None
            self.ras = RasEngine(self.db, ActionRunner(self.reactor, config.ras.action), event_log,
                                 on_event=self._count_event)
            #: the pool's start and stop (before the listeners: it stops after them)
            self.database = DatabaseService(self)
            self.database.setServiceParent(self)
            self._every("node-count", NODE_COUNT_INTERVAL, self._count_nodes)
            if config.ras.slurm.enabled:  # beyond CAST: Slurm drains the nodes CSM failed
                from csm.ras.slurm import slurm_feed
                self.while_active = ActiveOnly(gated=config.ha.enabled)  # only the active master drains
                self.while_active.setServiceParent(self)
                slurm_feed(self.reactor, self.db.dsn, config.ras.slurm).setServiceParent(self.while_active)
        #: high availability: serve only while elected (``csm.ha``)
        self.standby = Standby(self) if self.db is not None and config.ha.enabled else None
        self.ufm_collection = None
        if self.db is not None and config.ufm.rest_address and config.ufm.collection_interval > 0:
            from csm.ufm_collection import UfmCollectionService
            self.ufm_collection = UfmCollectionService(self.reactor, self.clock, self.db, config)
            self.ufm_collection.setServiceParent(self)
        tasks = config.recurring_tasks
        if tasks.enabled and tasks.soft_fail_recovery.enabled:
            self._every("soft-failure-recovery", tasks.soft_fail_recovery.interval, self._recover,
                        tasks.soft_fail_recovery.retry)
        for table, key in ((self.aggregators, "aggregator_listen"), (self.utilities, "utility_listen")):
            endpoint = getattr(config.net, key)
            if endpoint is None:
                continue
            owner = DaemonLinkOwner(self, table.role, on_ready=_reading_in_turns(table.connected),
                                    on_lost=self._peer_lost(table), accept=self._accept(table.role))
            listener = ListeningService(server_endpoint(self.reactor, endpoint, self.tls),
                                        self.link_factory(owner, False), config_key=(config.path, "csm.net." + key))
            listener.setName(table.role + "-port")
            listener.setServiceParent(self)

    def _every(self, name, seconds, function, *args):
        """Periodic work as a child ``TimerService`` on the daemon's clock (first run at start)."""
        timer = TimerService(seconds, function, *args)
        timer.setName(name)
        timer.clock = self.clock
        timer.setServiceParent(self)

    def _accept(self, role):
        expect = _expect_role(role)

        def accept(link, hello):
            expect(link, hello)
            if self.standby is not None:
                self.standby.check_hello()
        return accept

    def build_handlers(self):
        handlers = super().build_handlers()
        handlers[ECHO.cmd_id] = lambda ctx, body: body
        handlers[InternalCommand.NODESET_UPDATE] = self._nodeset_update
        handlers[INVENTORY_ID] = self._node_inventory
        handlers[SSD_WEAR_UPDATE.cmd_id] = self._ssd_wear
        handlers[AGGREGATOR_REHOME.cmd_id] = self._rehome
        handlers[SOFT_FAILURE_RECOVERY.cmd_id] = recovery.master_handler
        handlers.update(ras.HANDLERS)
        handlers.update(node.HANDLERS)
        handlers.update(switch.HANDLERS)
        for table in (allocation.HANDLERS, allocation_query.HANDLERS, step.HANDLERS, diag.HANDLERS,
                      cgroup.MASTER_HANDLERS, cgroup.NOT_IMPLEMENTED_HANDLERS, bb.MASTER_HANDLERS):
            handlers.update(table)
        return handlers

    def _recover(self, retry):
        """The recurring soft failure recovery (csm.recurring_tasks); skipped while the database
        is not connected (the first run, at start, before it is)."""
        if self.db is None or self.db.state != "connected":
            return None
        message = Message.make(SOFT_FAILURE_RECOVERY.cmd_id, {"retry_count": retry})
        d = self.router.handle(message)
        d.addCallback(lambda reply: reply.is_error and log.warn("soft failure recovery: {error}",
                                                                error=reply.error().errmsg))
        return d

    def stopService(self):
        return super().stopService().addCallback(lambda _: self.job_logs.close())

    def _peer_lost(self, table):
        def lost(link):
            peer = table.disconnected(link)
            if peer is None:
                return
            if table is self.aggregators:
                self.nodeset.aggregator_lost(peer.node)
            self.ras_event("csm.status.down", peer.node, "%s link to the master lost" % peer.role)
        return lost

    def _nodeset_update(self, ctx, body):
        if ctx.link is None or ctx.link.peer_role != "aggregator":
            raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "node set updates come from aggregators")
        self.nodeset.update(ctx.link.peer_node, body.get("computes") or [], full=bool(body.get("full")))

    def ras_event(self, msg_id, location_name, raw_data="", kvcsv=None):
        """Raise a RAS event from the master itself (queued: nothing lost in a database outage);
        the Deferred fires (with None) once it is stored or has failed."""
        rlog.info("RAS {msg_id} on {location}: {raw}", msg_id=msg_id, location=location_name, raw=raw_data)
        if self.ras is not None:
            event = {"msg_id": msg_id, "location_name": location_name, "raw_data": raw_data, "kvcsv": kvcsv}
            return self.ras.create(event).addErrback(
                lambda f: rlog.error("RAS {msg_id} on {location} not stored: {error}", msg_id=msg_id,
                                     location=location_name, error=f.getErrorMessage()))

    def _count_event(self, outcome):
        if outcome.get("stored"):
            self.ras_counts[outcome.get("severity", "INFO")] += 1

    def _queue_overflow(self, kind, dropped):
        if dropped == 1 or dropped % 1000 == 0:
            self.ras_event("csm.db.queue_overflow", self.node_name, kvcsv="kind=%s,dropped=%d" % (kind, dropped))

    def _compute_event(self, msg_id, node, aggregator):
        self.compute_links.seen.add(node)
        self.ras_event(msg_id, node, "aggregator %s" % aggregator)

    def _primary_changed(self, view):
        rlog.info("compute {node}: primary {primary}, secondary {secondary}", node=view.node,
                  primary=view.primary, secondary=view.secondary)
        if self.db is not None:
            self.aggregator_columns.set(view.node, view.primary, view.secondary)

    def _rehome(self, ctx, body):
        """Ask an aggregator to become the primary of the computes it serves as secondary."""
        peer = self.aggregators.get(body["aggregator"])
        if peer is None or peer.link is None:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "aggregator %s is not connected" % body["aggregator"])
        computes = sorted(view.node for view in self.nodeset.computes.values()
                          if view.aggregators.get(body["aggregator"]) is False)
        message = Message.make(AGGREGATOR_REHOME.cmd_id, {"computes": computes}, flags=Flags.INT)
        return peer.link.request(message, max(1.0, ctx.remaining() - 1.0)).addCallback(reply_body)

    def _ssd_wear(self, ctx, body):
        """SSD wear from a node's ssd bucket: the only environmental data kept in the database."""
        if self.db is not None and body.get("node_name") and isinstance(body.get("ssds"), list):
            self.db.enqueue_write("env", inventory.update_ssd_wear, body["node_name"], body["ssds"])

    def _node_inventory(self, ctx, body):
        """Store a node's inventory (queued: survives an outage); utilities and aggregators are up."""
        if self.db is None:
            return
        node_data = body.get("node") if isinstance(body, dict) else None
        if not isinstance(node_data, dict) or not node_data.get("node_name"):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "inventory without node.node_name")
        d = self.db.enqueue_write("inventory", inventory.upsert_node_inventory, body, want_result=True)

        def stored(state):
            log.info("inventory of {node} stored (state {state})", node=node_data["node_name"], state=state)
            view = self.nodeset.computes.get(node_data["node_name"])
            if view is not None:
                self._primary_changed(view)
            if node_data.get("type") in ("utility", "aggregator"):
                self.ras_event("csm.status.up", node_data["node_name"])
        d.addCallbacks(stored, lambda f: log.error("inventory of {node} not stored: {error}",
                                                    node=node_data["node_name"], error=f.getErrorMessage()))

    def links(self):
        return ([("aggregator " + p.node, p.link) for p in self.aggregators]
                + [("utility " + p.node, p.link) for p in self.utilities])

    def master_info(self):
        info = self.info()
        if self.db is not None:
            info.update(self.db.status())
        else:
            info["db_state"] = "none"
        if self.standby is not None:
            info.update(self.standby.info())
        return info

    def status(self):
        status = dict(super().status(), **({} if self.db is None else self.db.status()))
        return dict(status, **self.standby.info()) if self.standby is not None else status

    def metric_families(self):
        ras_events = CounterMetricFamily("csm_ras_events", "RAS events stored, by severity", labels=["severity"])
        for severity in ("INFO", "WARNING", "FATAL"):
            ras_events.add_metric([severity], self.ras_counts[severity])
        database = GaugeMetricFamily("csm_database_up", "1 while the database is connected")
        database.add_metric([], 1 if self.db is not None and self.db.state == "connected" else 0)
        queued = GaugeMetricFamily("csm_database_queued_writes", "Writes waiting for the database")
        queued.add_metric([], len(self.db.queue) if self.db is not None else 0)
        computes = GaugeMetricFamily("csm_reachable_computes", "Computes some aggregator reaches")
        computes.add_metric([], len(self.nodeset.computes))
        nodes = GaugeMetricFamily("csm_nodes", "Nodes in the database by state (counted every 5 s)",
                                  labels=["state"])
        for state, count in sorted(self.node_counts.items()):
            nodes.add_metric([state], count)
        allocations = GaugeMetricFamily("csm_allocations", "Active allocations by state (counted every 5 s)",
                                        labels=["state"])
        for state, count in sorted(self.allocation_counts.items()):
            allocations.add_metric([state], count)
        return [ras_events, database, queued, computes, self.compute_links.family(self.nodeset.computes),
                nodes, allocations]

    def _count_nodes(self):
        if self.db is None or self.db.state != "connected":
            return
        d = self.db.runQuery("SELECT 'node', state::text, count(*) FROM csm_node GROUP BY 2 UNION ALL "
                             "SELECT 'allocation', state, count(*) FROM csm_allocation GROUP BY 2")

        def counted(rows):
            self.node_counts = {state: count for kind, state, count in rows if kind == "node"}
            self.allocation_counts = {state: count for kind, state, count in rows if kind == "allocation"}
        d.addCallbacks(counted, lambda f: None)

    @defer.inlineCallbacks
    def cluster_report(self, ctx, body):
        timeout = health.probe_timeout(ctx, body)
        verbose = bool(body.get("verbose_health"))
        aggregators, utilities = yield defer.gatherResults([
            health.probe_all(self.aggregators, timeout, verbose),
            health.probe_all(self.utilities, timeout, verbose)])
        report = {
            "master": dict(self.master_info(), computes=len(self.nodeset.computes)),
            "aggregators": [health.peer_entry(p, r) for p, r in aggregators],
            "utilities": [health.peer_entry(p, r) for p, r in utilities],
        }
        if self.standby is not None:
            report["masters"], report["database"] = yield defer.gatherResults([
                self.standby.masters(), self.standby.database()])
        return report
