"""twistd plugin module for the utility daemon: ``twistd -n csm-utility --config FILE``."""

from csm.tap.common import make_daemon
from csm.tap.options import DaemonOptions


class Options(DaemonOptions):
    default_config = "/etc/ibm/csm/csm_utility.cfg"


def makeService(options):
    return make_daemon(options, "utility")
