"""A master's part in high availability: it serves only while it holds the lease.

While standing by, a master keeps its lease session (``csm.election.Lease``), its
listeners and its local API, but its pool is stopped and every aggregator's or
utility's hello is refused with "not active", so they try the next master. Elected,
it starts its pool (writes it queued before it was fenced go out first) and accepts
hellos. Fenced, it stops its pool and closes every aggregator and utility link at
once: in-flight requests fail at the aggregators with ``CSMERR_SENDRCV_ERROR``.
"""

from twisted.application import service
from twisted.internet import defer

from csm import logs
from csm.db.pool import CONNECTED
from csm.election import ACTIVE, Lease, application_name
from csm.errors import CSMError, ErrorCode
from csm.roles.master_list import NOT_ACTIVE

log = logs.logger("csmd")

#: The database's primary (the server this master writes to) and the replicas it streams to.
DATABASE_NODES = (
    "SELECT 'primary', coalesce(host(inet_server_addr()), 'local') || ':' || current_setting('port') "
    "UNION ALL SELECT 'replica', coalesce(application_name, '?') || ' ' || coalesce(host(client_addr), '') "
    "|| ' ' || coalesce(state, '') || ' ' || coalesce(sync_state, '') FROM pg_stat_replication")


def session_dsn(dsn, node):
    """``dsn`` naming the session as one of master ``node``'s (the election fences by it)."""
    return "%s application_name='%s'" % (dsn, application_name(node).replace("\\", "\\\\").replace("'", "\\'"))


class ActiveOnly(service.MultiService):
    """Children that run only while this master is the active one (``gated``; else while the
    master runs): the Slurm feed, which on two masters would drain and resume every node twice.
    Elected, the master starts them (the feed then brings Slurm in line with CSM); fenced, it
    stops them."""

    name = "while-active"

    def __init__(self, gated):
        super().__init__()
        self.gated = gated
        self.active = False

    def startService(self):
        if not self.gated or self.active:
            return super().startService()
        service.Service.startService(self)  # the children wait for the election

    def set_active(self, active):
        self.active = active
        if not self.running:
            return
        for child in self:
            if active and not child.running:
                child.startService()
            elif not active and child.running:
                child.stopService()

    def stopService(self):
        service.Service.stopService(self)
        return defer.DeferredList([defer.maybeDeferred(child.stopService) for child in reversed(list(self))
                                   if child.running])


class Standby:
    def __init__(self, daemon):
        self.daemon = daemon
        config = daemon.config
        self.ttl = config.ha.lease_seconds or config.net.heartbeat_interval
        self.lease = Lease(daemon.reactor, daemon.db.dsn, daemon.node_name, self.ttl, self._changed)
        #: counts the lease's changes: a pool start that fails after a later change is stale
        self._term = 0

    @property
    def active(self):
        """Active: the lease is held and the pool is connected."""
        return self.lease.state == ACTIVE and self.daemon.db.state == CONNECTED

    def start(self):
        self.lease.start()

    def stop(self):
        self.lease.stop()

    def check_hello(self):
        """Raise the "not active" refusal unless this master serves."""
        if not self.active:
            raise CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "%s: master %s is a standby (active: %s)"
                           % (NOT_ACTIVE, self.daemon.node_name, self.lease.holder or "none yet"))

    def check_request(self):
        """Raise, naming the active master, unless this master holds the lease: a request that
        needs the database, made on a standby's own socket, is refused at once (it would be
        held until this master is elected, which may be never)."""
        if self.lease.state != ACTIVE:
            raise CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "master %s is a standby: the active master is %s; "
                           "run the command there, or on a utility or aggregator node"
                           % (self.daemon.node_name, self.lease.holder or "not elected yet"))

    def _changed(self, state):
        db = self.daemon.db
        self._term += 1
        while_active = getattr(self.daemon, "while_active", None)
        if while_active is not None:
            while_active.set_active(state == ACTIVE)
        if state == ACTIVE:
            log.info("active master: starting the database pool ({n} writes queued)", n=len(db.queue))
            db.start().addErrback(self._start_failed, self._term)
            return
        db.stop()
        for peer in list(self.daemon.aggregators) + list(self.daemon.utilities):
            if peer.link is not None:
                peer.link.close("this master is no longer active")

    def _start_failed(self, failure, term):
        if term != self._term:
            return  # fenced (and maybe elected again) since: this start was stopped, not refused
        log.error("elected, but the database pool cannot start: {error}; standing down",
                  error=failure.getErrorMessage())
        self.lease.step_down("the database pool could not start")

    def info(self):
        return {"ha_state": "active" if self.active else "standby", "ha_active_master": self.lease.holder or "",
                "ha_lease_seconds": self.ttl}

    @defer.inlineCallbacks
    def masters(self):
        """Every master connected to the database, with its role, for the health check."""
        try:
            nodes = yield self.lease.masters()
        except Exception:
            nodes = {}
        return [{"node": node, "state": "active" if node == self.lease.holder else "standby"}
                for node in sorted(nodes)]

    @defer.inlineCallbacks
    def database(self):
        """The database primary and its replicas, for the health check."""
        try:
            rows = yield self.daemon.db.runQuery(DATABASE_NODES)
        except CSMError:
            return []
        return [{"role": role, "server": " ".join(text.split())} for role, text in rows]
