"""twistd plugin module for the aggregator daemon: ``twistd -n csm-aggregator --config FILE``."""

from csm.tap.common import make_daemon
from csm.tap.options import DaemonOptions


class Options(DaemonOptions):
    default_config = "/etc/ibm/csm/csm_aggregator.cfg"


def makeService(options):
    return make_daemon(options, "aggregator")
