"""twistd plugin module for the utility daemon: ``twistd -n csm-utility --config FILE``."""

from csm.tap.common import DaemonOptions, make_daemon


class Options(DaemonOptions):
    default_config = "/etc/ibm/csm/csm_utility.cfg"


def makeService(options):
    return make_daemon(options, "utility")
