"""The compute daemon: a primary aggregator, and a secondary when configured."""

from twisted.application import service
from twisted.internet import defer

from csm import logs
from csm.api import compute_handlers
from csm.api.commands import SSD_WEAR_UPDATE
from csm.api.wm_commands import MULTICAST_COMMANDS
from csm.env.buckets import BucketService
from csm.env.items import build_items
from csm.env.xid import XidService
from csm.node.allocation import AllocationAgent
from csm.node.items.gpu import GpuXidWatcher
from csm.node.jobs import JobServices
from csm.roles.connection_words import FAILOVER, PROMOTE, RESET
from csm.roles.daemon import Daemon, DaemonLinkOwner
from csm.roles.upstream import UpstreamLink
from csm.wire import Flags, InternalCommand, Message

log = logs.logger("csmnet")

SSD_WEAR = "csm-ssd-wear"

#: How often the missing one of two aggregators is retried while the other serves.
SECONDARY_RETRY = 10.0


class AggregatorPair(service.MultiService):
    """The compute's links to aggregator A and (optionally) B: their ``ClientService``s are
    its children.

    A is tried first; B is started once A's first attempt is decided. The first
    link up is told it is primary (FAIL0VER); the other is secondary. When the
    primary is lost and the secondary is up, the secondary is promoted; a link
    that comes back is secondary (no switch-back while the primary lives).
    """

    name = "aggregators"

    def __init__(self, daemon, endpoint_a, endpoint_b, failback_after=0):
        super().__init__()
        self.daemon = daemon
        self.failback_after = failback_after
        self._failback_call = None
        self.links = {}
        self.primary = None
        self.upstreams = {}
        for name, endpoint in (("aggregatorA", endpoint_a), ("aggregatorB", endpoint_b)):
            if endpoint is None:
                continue
            owner = DaemonLinkOwner(daemon, name, on_ready=self._ready, on_lost=self._lost)
            self.upstreams[name] = UpstreamLink(daemon, endpoint, owner, name, policy=self._policy_for(name),
                                                urgent=self._urgent_for(name))
            self.upstreams[name].service.setServiceParent(self)
            self.links[name] = None
        paced = [up.paced for up in self.upstreams.values() if up.paced is not None]
        for endpoint in paced:
            endpoint.siblings = [other for other in paced if other is not endpoint]

    def _urgent_for(self, name):
        """Where attempts are paced (csm-sim): a link's attempt goes before others' second links
        while the node has no primary, but waits (keeping its place) while its other link's
        attempt is in progress. Both
        links lost together (every aggregator drops its computes when the master goes) would
        otherwise both shake hands first, and the primaries wait behind as many secondaries."""
        def urgent():
            if self.primary is not None:
                return False
            if any(up.paced is not None and up.paced.attempting for other, up in self.upstreams.items()
                   if other != name):
                return None  # not now: urgent again if that attempt fails
            return True
        return urgent

    def _policy_for(self, name):
        """The link's back-off, or ``SECONDARY_RETRY`` while the other link is primary."""
        def wrap(backoff):
            def policy(attempt):
                if self.primary is not None and self.primary != name:
                    return SECONDARY_RETRY
                return backoff(attempt)
            return policy
        return wrap

    def startService(self):
        service.Service.startService(self)
        a = self.upstreams["aggregatorA"].service
        a.startService()
        if "aggregatorB" in self.upstreams:
            # B waits until A's first attempt is decided (link ready, or failed), so that
            # A becomes primary whenever it can: no race between the two.
            a.whenConnected(failAfterFailures=1).addBoth(lambda _: self._start_b())

    def _start_b(self):
        b = self.upstreams["aggregatorB"].service
        if self.running and not b.running:
            b.startService()

    def stopService(self):
        self._cancel_failback()
        return super().stopService()

    def current(self):
        return self.links.get(self.primary) if self.primary else None

    def secondary(self):
        for name, link in self.links.items():
            if name != self.primary and link is not None:
                return link
        return None

    def _ready(self, link):
        self.links[link.name] = link
        self.upstreams[link.name].backoff.reset()
        self.daemon.send_inventory(link)
        if self.current() is None:
            self._make_primary(link.name)
        else:
            log.info("{name} ({node}) connected as secondary", name=link.name, node=link.peer_node)
            if link.name == "aggregatorA" and self.failback_after > 0:
                self._cancel_failback()
                self._failback_call = self.daemon.clock.callLater(self.failback_after, self._failback, link)

    def _failback(self, link):
        """Beyond CAST: the configured aggregator was up ``failback_after`` seconds: go back to it."""
        self._failback_call = None
        if self.links.get("aggregatorA") is link and self.primary != "aggregatorA":
            log.info("aggregatorA stable for {s}s: failing back to it", s=self.failback_after)
            self.reset()

    def _cancel_failback(self):
        if self._failback_call is not None and self._failback_call.active():
            self._failback_call.cancel()
        self._failback_call = None

    def _lost(self, link):
        if self.links.get(link.name) is not link:
            return
        self.links[link.name] = None
        if link.name == "aggregatorA":
            self._cancel_failback()
        if link.name == self.primary:
            self.primary = None
            other = self.secondary()
            if other is not None:
                log.warn("primary {lost} lost: failing over to {name}", lost=link.name,
                         name=other.name)
                self._make_primary(other.name)

    def _make_primary(self, name):
        self.primary = name
        link = self.links[name]
        log.info("{name} ({node}) is the primary aggregator", name=name, node=link.peer_node)
        link.send(connection_ctrl(FAILOVER))

    def promote(self, link):
        """Make ``link`` (connected, now secondary) the primary: its aggregator asked (re-home)."""
        if self.links.get(link.name) is not link or link.name == self.primary:
            return False
        old = self.current()
        if old is not None:
            old.send(connection_ctrl(RESET))
        self._make_primary(link.name)
        return True

    def reset(self):
        """Return to the configured aggregator A if it is up (csm_ctrl_cmd --agg.reset)."""
        a = self.links.get("aggregatorA")
        if self.primary == "aggregatorA" or a is None:
            return {"primary": self.primary, "changed": False}
        old = self.current()
        if old is not None:
            old.send(connection_ctrl(RESET))
        self._make_primary("aggregatorA")
        return {"primary": self.primary, "changed": True}


def connection_ctrl(word):
    return Message.make(InternalCommand.CONNECTION_CTRL, word, flags=Flags.INT | Flags.NOREPLY)


class ComputeDaemon(Daemon):
    role = "compute"

    def __init__(self, config, reactor=None, **kw):
        super().__init__(config, reactor, **kw)
        self.aggregators = AggregatorPair(self, config.net.aggregatorA, config.net.aggregatorB,
                                          failback_after=config.net.failback_after)
        self.aggregators.setServiceParent(self)
        self.env_dropped = 0
        self.buckets = BucketService(self.clock, config.data_collection.buckets, self.env_items(),
                                     self.send_environmental, source=self.node_name)
        self.buckets.setServiceParent(self)
        self.xid = XidService(self.clock, GpuXidWatcher(), self.raise_ras)
        self.xid.setServiceParent(self)
        self.agent = self.make_agent()
        self.jobs = JobServices(self.reactor, self.node_name, config.cgroup_root.replace("{node}", self.node_name),
                                config.jsrun_cmd, config.bb_cmd)

    def make_agent(self):
        """The prolog/epilog runner of this node."""
        config = self.config
        return AllocationAgent(self.reactor, self.node_name, config.prolog, config.epilog,
                               config.cgroup_root.replace("{node}", self.node_name))

    def env_items(self):
        """The environmental items this node can collect, by bucket item name."""
        return build_items()

    def send_environmental(self, records):
        """Records go to the primary aggregator (SSD wear to the master's database);
        without a primary they are counted and dropped."""
        link = self.aggregators.current()
        if link is None:
            self.env_dropped += len(records)
            return
        wear = [r["data"] for r in records if r.get("type") == SSD_WEAR]
        others = [r for r in records if r.get("type") != SSD_WEAR]
        if wear:
            link.send(Message.make(SSD_WEAR_UPDATE.cmd_id, {"node_name": self.node_name, "ssds": wear},
                                   flags=Flags.INT | Flags.NOREPLY))
        if others:
            link.send(Message.make(InternalCommand.ENVIRONMENTAL_DATA, {"records": others},
                                   flags=Flags.INT | Flags.NOREPLY))

    def stopService(self):
        self.agent.stop()
        return super().stopService()

    def upstream(self):
        return self.aggregators.current()

    def links(self):
        return [("%s (%s)" % (name, "PRIMARY" if name == self.aggregators.primary else "SECONDARY"),
                 link) for name, link in self.aggregators.links.items()]

    def agg_reset(self):
        return self.aggregators.reset()

    def build_handlers(self):
        handlers = super().build_handlers()
        handlers[InternalCommand.CONNECTION_CTRL] = self._connection_ctrl
        handlers.update(compute_handlers.HANDLERS)
        for command in MULTICAST_COMMANDS:
            handlers[command.cmd_id] = self._allocation
        return handlers

    def _allocation(self, ctx, body):
        """The master's multicast runs the prolog or epilog here."""
        return self.jobs.observe(body, self.agent.handle(body))

    def _connection_ctrl(self, ctx, body):
        """An aggregator's request about this link (re-home: PR0M0TE)."""
        if body == PROMOTE and ctx.link is not None:
            self.aggregators.promote(ctx.link)

    def probe_report(self, ctx, body):
        report = self.info()
        report["links"] = [{"name": name, "aggregator": link.peer_node if link else "",
                            "primary": name == self.aggregators.primary,
                            "state": link.state if link else "DISCONNECTED"}
                           for name, link in self.aggregators.links.items()]
        return defer.succeed(report)
