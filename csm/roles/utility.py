"""The utility daemon: login and launch nodes; forwards everything to the master."""

from csm.roles.daemon import Daemon, DaemonLinkOwner
from csm.roles.upstream import MasterClient, UpstreamLink


class UtilityDaemon(MasterClient, Daemon):
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

    def links(self):
        return [("master", self.master.current())]
