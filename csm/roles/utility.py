"""The utility daemon: login and launch nodes; forwards everything to the master."""

from csm.roles.daemon import Daemon, DaemonLinkOwner
from csm.roles.upstream import UpstreamLink


class UtilityDaemon(Daemon):
    role = "utility"

    def __init__(self, config, reactor=None, **kw):
        super().__init__(config, reactor, **kw)
        owner = DaemonLinkOwner(self, "master", on_ready=self._master_ready,
                                on_lost=self._master_lost)
        self.master = UpstreamLink(self, config.net.master_list, owner, "master")
        self.master.service.setServiceParent(self)

    def _master_ready(self, link):
        self.master.ready(link)
        self.send_inventory(link)

    def _master_lost(self, link):
        self.master.lost(link)

    def upstream(self):
        return self.master.current()

    def hold_upstream(self, message):
        """A fire-and-forget RAS event while no master is reachable: sent to the next one."""
        return self.master.hold(message)

    def links(self):
        return [("master", self.master.current())]
