"""twistd plugin module for the compute daemon: ``twistd -n csm-compute --config FILE``."""

from csm.tap.common import DaemonOptions, make_daemon


class Options(DaemonOptions):
    default_config = "/etc/ibm/csm/csm_compute.cfg"


def makeService(options):
    return make_daemon(options, "compute")
