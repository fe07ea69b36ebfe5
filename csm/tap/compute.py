"""twistd plugin module for the compute daemon: ``twistd -n csm-compute --config FILE``."""

from csm.tap.options import DaemonOptions, leave_out_pyopenssl


class Options(DaemonOptions):
    default_config = "/etc/ibm/csm/csm_compute.cfg"

    def postOptions(self):
        super().postOptions()
        leave_out_pyopenssl(self["config"], self["role"])


def makeService(options):
    from csm.tap.common import make_daemon  # after the options: it brings the reactor's modules

    return make_daemon(options, "compute")
