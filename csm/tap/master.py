"""twistd plugin module for the master daemon: ``twistd -n csm-master --config FILE``."""

from csm.tap.common import make_daemon
from csm.tap.options import DaemonOptions


class Options(DaemonOptions):
    default_config = "/etc/ibm/csm/csm_master.cfg"


def makeService(options):
    return make_daemon(options, "master")
