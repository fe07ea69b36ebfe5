"""twistd plugins for the four CSM daemons."""

from twisted.application.service import ServiceMaker

csm_master = ServiceMaker("csm-master", "csm.tap.master", "CSM master daemon", "csm-master")
csm_aggregator = ServiceMaker("csm-aggregator", "csm.tap.aggregator", "CSM aggregator daemon",
                              "csm-aggregator")
csm_utility = ServiceMaker("csm-utility", "csm.tap.utility", "CSM utility daemon", "csm-utility")
csm_compute = ServiceMaker("csm-compute", "csm.tap.compute", "CSM compute daemon", "csm-compute")
