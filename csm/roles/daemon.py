"""``Daemon``: what every role shares (local API, router, links, status)."""

import os
import resource
import time

from twisted.application import service
from twisted.internet import defer

from csm import __version__, logs
from csm.api import ctrl, health
from csm.api_counts import ApiCounts
from csm.api.commands import NODE_INVENTORY, RAS_EVENT_CREATE, REGISTRY
from csm.api.router import Router
from csm.config import ConfigError, load_acl, load_api_timeouts
from csm.net.factory import LinkFactory
from csm.net.link import LinkOwner
from csm.net.local import LocalSocketService
from csm.servicetree import service_tree
from csm.wire import Flags, Message
from csm.wire.message import encode_body

INVENTORY_ID = NODE_INVENTORY.cmd_id

log = logs.logger("csmd")


def _load_file(loader, config, name):
    """The file named by key ``csm.<name>``; an unusable one stops the daemon (even the ACL:
    one skipped in part would leave local callers more privileged than the site meant)."""
    try:
        return loader(getattr(config, name))
    except ConfigError as exc:
        raise ConfigError(config.path, "csm." + name, str(exc)) from None


def _tls_contexts(config):
    """The daemon's certificates, or ``None`` without TLS (then pyOpenSSL is not imported)."""
    if not config.net.ssl.enabled:
        return None
    from csm.net.tls import TLSContexts

    return TLSContexts.from_config(config.net.ssl, config.path)


def _ignore(reply):
    """The answer to a fire-and-forget message: nobody waits for it."""


class DaemonLinkOwner(LinkOwner):
    """Owner of one daemon-to-daemon link kind: forwards events to the daemon."""

    def __init__(self, daemon, kind, on_ready=None, on_lost=None, accept=None):
        self.daemon = daemon
        self.kind = kind
        self._on_ready = on_ready
        self._on_lost = on_lost
        self._accept = accept

    def hello(self, link):
        return self.daemon.hello()

    def accept_hello(self, link, hello):
        if self._accept is not None:
            self._accept(link, hello)

    def link_ready(self, link):
        log.info("{kind} link to {peer} is up", kind=self.kind, peer=link.describe())
        if self._on_ready is not None:
            self._on_ready(link)

    def link_lost(self, link, reason):
        log.warn("{kind} link to {peer} is down: {reason}", kind=self.kind, peer=link.describe(),
                 reason=reason.getErrorMessage())
        if self._on_lost is not None:
            self._on_lost(link)

    def message_received(self, link, message):
        self.daemon.dispatch(link, message)


class Daemon(service.MultiService):
    """The services of one role; subclasses add their links and handlers."""

    role = None

    def __init__(self, config, reactor=None, registry=REGISTRY, tls=None):
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        self.config = config
        self.reactor = reactor
        self.clock = reactor
        self.node_name = config.node_name
        self.registry = registry
        self.acl = _load_file(load_acl, config, "api_permission_file")
        self.api_timeouts = _load_file(load_api_timeouts, config, "api_configuration_file")
        self.max_payload = config.net.max_message_size
        self.heartbeat_interval = config.net.heartbeat_interval
        self.tls = tls if tls is not None else _tls_contexts(config)
        self.started_at = None
        self._inventory = None
        if config.net.metrics_listen is not None:  # the exporter's registry; else plain counters
            from csm import metrics
            self.metrics = metrics.make_registry(self)
            stats = metrics.ApiStats(self.metrics)
        else:
            self.metrics = None
            stats = ApiCounts()
        self.router = Router(self, registry, self.build_handlers(), self.upstream, stats=stats)
        self.local = None
        if config.net.local_client_listen.socket:  # "" runs without a local API (csm-sim's nodes)
            self.local = LocalSocketService(reactor, self, config.net.local_client_listen)
            self.local.setServiceParent(self)
        if config.net.metrics_listen is not None:
            metrics.metrics_service(reactor, config.net.metrics_listen, self.metrics,
                                    (config.path, "csm.net.metrics_listen")).setServiceParent(self)
        #: what the admin shell sees: filled at start, once the role has built everything
        self.shell_namespace = {}
        if config.manhole.enabled:
            from csm.manhole import makeManholeService
            makeManholeService(config.manhole, self.shell_namespace, reactor,
                               config_path=config.path).setServiceParent(self)
        if config.ras.rest is not None:
            from csm.ras.rest import rest_service
            rest_service(self, config.ras.rest, (config.path, "csm.ras.rest")).setServiceParent(self)

    # -- what roles provide ---------------------------------------------------------------

    def build_handlers(self):
        return {health.COMMAND.cmd_id: health.handle, ctrl.COMMAND.cmd_id: ctrl.handle}

    def upstream(self):
        """The link requests climb to (None on the master)."""
        return None

    def links(self):
        """``[(name, link or None)]`` of this daemon's daemon links, for status."""
        return []

    def inventory(self):
        """This node's inventory, collected once per process off the reactor thread."""
        if self._inventory is None:
            from csm.node.inventory import collect_inventory_in_thread
            self._inventory = collect_inventory_in_thread(self.node_name, self.role, reactor=self.reactor,
                                                          timeout=120)
            self._inventory.addErrback(self._inventory_failed)
        result = defer.Deferred()
        self._inventory.addCallback(lambda inventory: result.callback(inventory) or inventory)
        return result

    def _inventory_failed(self, failure):
        log.error("inventory collection failed: {error}", error=failure.getErrorMessage())
        self._inventory = None

    def manhole_namespace(self):
        """What the admin shell sees."""
        return {"daemon": self, "status": self.status, "links": self.links, "registry": self.registry,
                "router": self.router, "config": self.config, "logs": logs, "db": getattr(self, "db", None),
                "tree": lambda: print(service_tree(self))}

    def raise_ras(self, msg_id, location_name=None, raw_data=None, kvcsv=None):
        """Raise a RAS event from this daemon (fire and forget, through the tree to the master)."""
        body = {"msg_id": msg_id, "location_name": location_name or self.node_name}
        body.update({k: v for k, v in (("raw_data", raw_data), ("kvcsv", kvcsv)) if v})
        self.router.handle(Message.make(RAS_EVENT_CREATE.cmd_id, body, flags=Flags.NOREPLY))

    def send_inventory(self, link):
        """Send this node's inventory on ``link`` (fire and forget)."""
        def send(inventory):
            if inventory is not None and link.connected:
                link.send(Message.make(INVENTORY_ID, inventory, flags=Flags.INT | Flags.NOREPLY))
        self.inventory().addCallback(send)

    def metric_families(self):
        """Role-specific Prometheus metric families (see csm.metrics)."""
        return []

    def probe_report(self, ctx, body):
        """This daemon's answer to an infrastructure probe from upstream."""
        return defer.succeed(self.info())

    # -- shared ---------------------------------------------------------------------------

    def link_factory(self, owner, initiator, name=None):
        return LinkFactory(owner, self.clock, initiator, self.max_payload, self.heartbeat_interval,
                           name=name)

    def hello(self):
        return {"version": __version__, "node": self.node_name, "role": self.role,
                "heartbeat_interval": self.heartbeat_interval}

    @staticmethod
    def encode_body(body):
        return encode_body(body)

    def dispatch(self, link, message):
        """A request from a daemon link: route it and answer on the same link."""
        self.router.respond(message, link, _ignore if message.flags & Flags.NOREPLY else link.send)

    def startService(self):
        self.started_at = self.clock.seconds()
        self.shell_namespace.update(self.manhole_namespace())
        log.info("{role} daemon {node} starting (csm {version}, pid {pid})", role=self.role,
                 node=self.node_name, version=__version__, pid=os.getpid())
        super().startService()

    @defer.inlineCallbacks
    def stopService(self):
        """Stop the children one at a time, the last added first (``MultiService`` stops them all
        at once): what serves stops before what it uses (the master's listeners before its
        database, whose last writes then include the RAS events of the links they closed)."""
        service.Service.stopService(self)
        for child in reversed(list(self)):
            try:
                yield child.stopService()
            except Exception:
                log.failure("stopping {child}", child=child)

    def listening(self):
        """Fires once this daemon listens: its local API socket and, on the master, the ports
        for aggregators and utilities (systemd's READY=1, csm.systemd). They open in
        startService, which fails if one cannot. An aggregator's port for computes opens only
        once the master is reached and is not waited for: a unit started before the master
        would time out."""
        if not self.running:
            return defer.fail(RuntimeError("%s daemon not started" % self.role))
        return defer.succeed(None)

    def uptime(self):
        return 0.0 if self.started_at is None else self.clock.seconds() - self.started_at

    def info(self):
        """Who this daemon is, as the health check shows it."""
        return {"node": self.node_name, "role": self.role, "version": __version__,
                "pid": os.getpid(), "uptime": round(self.uptime(), 1)}

    def status(self):
        """The daemon's state for csm_ctrl_cmd --status and the manhole."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return dict(self.info(), links=[
            {"name": name, "peer": link.peer_node if link else "", "state":
             link.state if link else "DISCONNECTED",
             "pending": len(link.pending) if link else 0}
            for name, link in self.links()
        ], clients=len(self.local.api.clients) if self.local else 0, max_rss_kib=usage.ru_maxrss,
            cpu_seconds=round(usage.ru_utime + usage.ru_stime, 2),
            log_levels=logs.levels(), time=time.strftime("%Y-%m-%d %H:%M:%S"))
