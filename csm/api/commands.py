"""The API catalogue: CAST's command ids and the commands this daemon implements."""

from csm.api.registry import EVERYWHERE, Command, Field, Registry
from csm.wire import InternalCommand

#: CAST's regular API ids (enum order of csmi_cmds_def.h); the wire value of each API.
API_IDS = {
    "bb_cmd": 1, "bb_lv_create": 2, "bb_lv_delete": 3, "bb_lv_query": 4, "bb_lv_update": 5,
    "bb_vg_create": 6, "bb_vg_delete": 7, "bb_vg_query": 8, "diag_result_create": 9,
    "diag_run_begin": 10, "diag_run_end": 11, "diag_run_query": 12, "diag_run_query_details": 13,
    "allocation_step_cgroup_delete": 14, "allocation_step_cgroup_create": 15,
    "allocation_update_state": 16, "allocation_query_active_all": 17, "allocation_create": 18,
    "allocation_delete": 19, "allocation_query": 20, "allocation_query_details": 21,
    "allocation_step_begin": 22, "allocation_step_end": 23, "allocation_step_query": 24,
    "allocation_step_query_active_all": 25, "allocation_step_query_details": 26,
    "node_resources_query": 27, "node_resources_query_all": 28, "ras_event_create": 29,
    "ras_event_query": 30, "ras_msg_type_create": 31, "ras_msg_type_delete": 32,
    "ras_msg_type_update": 33, "ras_subscribe": 34, "ras_unsubscribe": 35, "ras_sub_event": 36,
    "ras_msg_type_get": 37, "ras_msg_type_query": 38, "ib_cable_query": 39,
    "ib_cable_query_history": 40, "ib_cable_update": 41, "node_attributes_query": 42,
    "node_attributes_query_details": 43, "node_attributes_query_history": 44,
    "node_query_state_history": 45, "node_attributes_update": 46, "node_delete": 47,
    "switch_attributes_query": 48, "switch_attributes_query_details": 49,
    "switch_attributes_query_history": 50, "switch_attributes_update": 51,
    "INV_get_node_inventory": 52, "ib_cable_inventory_collection": 53,
    "switch_inventory_collection": 54, "switch_children_inventory_collection": 55,
    "allocation_resources_query": 56, "allocation_update_history": 57,
    "ras_event_query_allocation": 58, "cgroup_login": 59, "jsrun_cmd": 60,
    "cluster_query_state": 61, "node_find_job": 62, "soft_failure_recovery": 63,
    "ssd_wear_update": 64,
}

VERBOSE_CHOICES = ("off", "trace", "debug", "info", "warning", "error", "critical", "always", "disable")

INFRASTRUCTURE_HEALTH_CHECK = Command(
    name="infrastructure_health_check",
    cmd_id=InternalCommand.INFRASTRUCTURE_TEST,
    handled_on=EVERYWHERE,
    description="Check the CSM infrastructure: master, aggregators and their computes, utilities.",
    fields=(Field("verbose_health", "bool", flags=("-v", "--verbose"), default=False,
                  help="show the computes of every aggregator"),),
    open_input=True,
)

CTRL_CMD = Command(
    name="ctrl_cmd",
    cmd_id=InternalCommand.CTRL_CMD,
    handled_on=EVERYWHERE,
    description="Control the local daemon: log levels, status, memory statistics, aggregator reset.",
    fields=tuple(
        Field("log." + sub, "str", choices=VERBOSE_CHOICES, flags=("--log." + sub,),
              help="set the %s log level" % sub)
        for sub in ("csmdb", "csmnet", "csmd", "csmras", "csmapi", "csmenv")
    ) + (
        Field("status", "bool", flags=("--status",), default=False, help="show the daemon's status"),
        Field("dump_mem", "bool", flags=("--dump.mem",), default=False,
              help="dump memory statistics"),
        Field("agg_reset", "bool", flags=("--agg.reset",), default=False,
              help="(compute) return to the configured primary aggregator"),
    ),
)

ECHO = Command(name="echo", cmd_id=InternalCommand.ECHO, cli="",
               description="Echo the input back (link tests and benchmarks).", open_input=True)


def build_registry():
    """The registry of every command this implementation knows."""
    return Registry([INFRASTRUCTURE_HEALTH_CHECK, CTRL_CMD, ECHO])


REGISTRY = build_registry()
