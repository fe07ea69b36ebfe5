"""The API catalogue: the commands this daemon implements (CAST's command ids: ``registry.API_IDS``)."""

from csm.api.registry import (  # noqa: F401 (API_IDS, LIMIT, OFFSET, VERBOSE_CHOICES: kept importable from here)
    API_IDS, EVERYWHERE, LIMIT, OFFSET, VERBOSE_CHOICES, Command, Field, Registry)
from csm.wire import InternalCommand

INFRASTRUCTURE_HEALTH_CHECK = Command(
    name="infrastructure_health_check",
    cmd_id=InternalCommand.INFRASTRUCTURE_TEST,
    adds_local_daemon=True,
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
        Field("dump_mem", "bool", flags=("--dump_mem_usage", "--dump.mem"), default=False,
              help="dump memory statistics"),
        Field("dump_perf", "bool", flags=("--dump_perf_data",), default=False,
              help="dump the API performance counters"),
        Field("agg_reset", "bool", flags=("--agg.reset",), default=False,
              help="(compute) return to the configured primary aggregator"),
    ),
)

ECHO = Command(name="echo", cmd_id=InternalCommand.ECHO, cli="",
               description="Echo the input back (link tests and benchmarks).", open_input=True)


SEVERITIES = ("INFO", "WARNING", "FATAL")
RAS_SET_STATES = ("SOFT_FAILURE", "HARD_FAILURE", "CSM_DATABASE_NULL")
def _ras_type_fields(create):
    return (
        Field("msg_id", "str", required=True, flags=("-m", "--msg_id"), help="the type, e.g. csm.status.down"),
        Field("severity", "str", default="INFO" if create else None, choices=SEVERITIES,
              flags=("-s", "--severity"), help="INFO%s, WARNING or FATAL" % (" (default)" if create else "")),
        Field("message", "str", flags=("-M", "--message"), help="message template with $(var)s"),
        Field("description", "str", flags=("-d", "--description")),
        Field("control_action", "str", flags=("-c", "--control_action"), help="script to run, or NONE"),
        Field("threshold_count", "int", flags=("-t", "--threshold_count")),
        Field("threshold_period", "int", flags=("-T", "--threshold_period"), help="seconds"),
        Field("enabled", "bool", flags=("-e", "--enabled"), help="true or false"),
        Field("set_state", "str", choices=RAS_SET_STATES, flags=("-S", "--set_state"),
              help="node state the event sets (CSM_DATABASE_NULL clears)"),
        Field("visible_to_users", "bool", flags=("-V", "--visible_to_users"), help="true or false"),
    )


RAS_EVENT_CREATE = Command(
    name="ras_event_create", cmd_id=API_IDS["ras_event_create"],
    description="Raise a RAS event.",
    fields=(
        Field("msg_id", "str", required=True, flags=("-m", "--msg_id"), help="the RAS type"),
        Field("location_name", "str", flags=("-l", "--location_name"), help="node or other location"),
        Field("time_stamp", "str", flags=("-t", "--time_stamp"), help="when it happened (default: now)"),
        Field("raw_data", "str", flags=("-r", "--raw_data")),
        Field("kvcsv", "str", flags=("-k", "--kvcsv"), help="extra fields: k1=v1,k2=v2"),
    ))

RAS_EVENT_QUERY = Command(
    name="ras_event_query", cmd_id=API_IDS["ras_event_query"], results_key="results",
    description="Query RAS events.",
    one_of=("msg_id", "severity", "location_name", "control_action", "message", "start_time_stamp",
            "end_time_stamp", "master_time_stamp_search_begin", "master_time_stamp_search_end", "rec_id",
            "unacknowledged"),
    fields=(
        Field("msg_id", "str", flags=("-m", "--msg_id"), help="type (LIKE pattern)"),
        Field("severity", "str", choices=SEVERITIES, flags=("-s", "--severity")),
        Field("location_name", "str", flags=("-l", "--location_name"), help="location (LIKE pattern)"),
        Field("control_action", "str", flags=("-c", "--control_action")),
        Field("message", "str", flags=("-M", "--message"), help="message (LIKE pattern)"),
        Field("start_time_stamp", "str", flags=("-b", "--begin_timestamp", "--begin_time_stamp")),
        Field("end_time_stamp", "str", flags=("-e", "--end_timestamp", "--end_time_stamp")),
        Field("master_time_stamp_search_begin", "str", flags=("-B", "--master_time_stamp_search_begin")),
        Field("master_time_stamp_search_end", "str", flags=("-E", "--master_time_stamp_search_end")),
        Field("rec_id", "int", flags=("-r", "--rec_id")),
        Field("unacknowledged", "bool", default=False, flags=("-u", "--unacknowledged"),
              help="only events nobody acknowledged"),
        Field("limit", "int", flags=("-n", "--limit"), help="the most records to return"),
        OFFSET,
        Field("order_by", "str", choices=tuple("abcdefghijkl"), flags=("-O", "--order_by"),
              help="a/b rec_id, c/d time_stamp, e/f master_time_stamp, g/h location_name, i/j msg_id, "
                   "k/l severity (second letter: descending)"),
    ),
    record_label="RECORD",
    layout=("rec_id:n", "msg_id", "severity", "time_stamp", "master_time_stamp", "location_name", "count:n",
            "control_action", "message", "raw_data", "kvcsv"))

RAS_EVENT_QUERY_ALLOCATION = Command(
    name="ras_event_query_allocation", cmd_id=API_IDS["ras_event_query_allocation"], results_key="events",
    description="RAS events raised during an allocation's lifetime.",
    cli_missing=9,
    fields=(Field("allocation_id", "int", required=True, flags=("-a", "--allocation_id")),
            Field("on_nodes", "bool", default=False, flags=("--on_nodes",),
                  help="(beyond CAST) only events on the allocation's nodes that its users may see"),
            LIMIT, OFFSET),
    layout=("rec_id:n", "msg_id", "msg_id_seq:n", "time_stamp", "count:n", "message", "raw_data",
            "archive_history_time"))

RAS_EVENT_ACK = Command(
    name="ras_event_ack", cmd_id=100,
    description="Acknowledge RAS events (beyond CAST): by record id, or every unacknowledged "
                "event of a type and location.",
    one_of=("rec_ids", "msg_id"),
    fields=(
        Field("rec_ids", "list", flags=("-r", "--rec_ids"), help="record ids: 1,2,3"),
        Field("msg_id", "str", flags=("-m", "--msg_id"), help="type (LIKE pattern)"),
        Field("location_name", "str", flags=("-l", "--location_name"), help="location (LIKE pattern)"),
    ))

RAS_MSG_TYPE_CREATE = Command(name="ras_msg_type_create", cmd_id=API_IDS["ras_msg_type_create"],
                              description="Create a RAS type.", fields=_ras_type_fields(True))
RAS_MSG_TYPE_UPDATE = Command(name="ras_msg_type_update", cmd_id=API_IDS["ras_msg_type_update"],
                              description="Update a RAS type.", fields=_ras_type_fields(False))
RAS_MSG_TYPE_DELETE = Command(
    name="ras_msg_type_delete", cmd_id=API_IDS["ras_msg_type_delete"], description="Delete RAS types.", cli_missing=9,
    fields=(Field("msg_ids", "list", required=True, flags=("-m", "--msg_ids", "--msg_id"),
                  help="types: a.b.c,d.e.f"),))
RAS_MSG_TYPE_QUERY = Command(
    name="ras_msg_type_query", cmd_id=API_IDS["ras_msg_type_query"], results_key="results",
    description="Query RAS types.",
    fields=(
        Field("msg_id", "str", flags=("-m", "--msg_id"), help="type (LIKE pattern)"),
        Field("severity", "str", choices=SEVERITIES, flags=("-s", "--severity")),
        Field("control_action", "str", flags=("-c", "--control_action")),
        Field("message", "str", flags=("-M", "--message"), help="message (LIKE pattern)"),
        Field("set_states", "list", flags=("-S", "--set_state", "--set_states")),
        LIMIT, OFFSET,
    ),
    record_label="RECORD",
    layout=("msg_id", "control_action", "description", "enabled:yn", "message", "set_state", "severity",
            "threshold_count:n", "threshold_period:n", "visible_to_users:yn"))

NODE_INVENTORY = Command(name="INV_get_node_inventory", cmd_id=API_IDS["INV_get_node_inventory"], cli="",
                         description="A node's inventory, sent by its daemon.", open_input=True)

NODE_STATES = ("DISCOVERED", "IN_SERVICE", "ADMIN_RESERVED", "MAINTENANCE", "SOFT_FAILURE", "OUT_OF_SERVICE",
               "HARD_FAILURE")
NODE_TYPES = ("management", "service", "login", "workload-manager", "launch", "compute", "utility", "aggregator")
NODE_NAMES = Field("node_names", "list", flags=("-n", "--node_names"), help="nodes: c01,c02 or c[01-02]")

#: csm_node's fields in the order CAST's node queries print them.
NODE_LAYOUT = ("node_name", "collection_time", "update_time", "comment:q", "discovered_cores:n", "discovered_dimms:n",
               "discovered_gpus:n", "discovered_hcas:n", "discovered_sockets:n", "discovered_ssds:n", "feature_1",
               "feature_2", "feature_3", "feature_4", "hard_power_cap:n", "installed_memory:n", "installed_swap:n",
               "kernel_release", "kernel_version", "machine_model", "os_image_name", "os_image_uuid",
               "physical_frame_location", "physical_u_location", "primary_agg", "secondary_agg", "serial_number",
               "state", "type")
RESOURCES_LAYOUT = ("node_name", "node_discovered_cores:n", "node_discovered_gpus:n", "node_discovered_sockets:n",
                    "node_installed_memory:n", "node_update_time", "node_ready:yn", "node_state", "node_type",
                    "vg_total_size:n", "vg_available_size:n", "vg_update_time", "ssds_count=#ssds",
                    ("ssds", ("ssd_serial_number=serial_number", "update_time", "wear_lifespan_used:f")))
DETAILS_LAYOUT = ("node_name=node_node_name",) + tuple("node_" + item for item in NODE_LAYOUT[1:]) + (
    "dimms_count=#dimms", ("dimms", ("serial_number", "physical_location", "size:n")),
    "gpus_count=#gpus", ("gpus", ("gpu_id:n", "device_name", "hbm_memory:n", "inforom_image_version", "pci_bus_id",
                                  "serial_number", "uuid", "vbios")),
    "hcas_count=#hcas", ("hcas", ("serial_number", "board_id", "device_name", "fw_ver", "guid", "hw_rev",
                                  "part_number", "pci_bus_id")),
    "processors_count=#processors", ("processors", ("serial_number", "discovered_cores:n", "physical_location")),
    "ssds_count=#ssds", ("ssds", ("serial_number", "update_time", "device_name", "fw_ver", "pci_bus_id", "size:n",
                                  "wear_lifespan_used:f", "wear_total_bytes_read:n", "wear_total_bytes_written:n",
                                  "wear_percent_spares_remaining:f")))


def _node_query(name, description, fields, results_key="results", one_of=(), **kw):
    return Command(name=name, cmd_id=API_IDS[name], description=description, fields=fields,
                   results_key=results_key, one_of=one_of, **kw)


NODE_COMMANDS = (
    _node_query("node_attributes_query", "Query nodes (csm_node).", (
        NODE_NAMES,
        Field("state", "str", choices=NODE_STATES, flags=("-s", "--state")),
        Field("type", "str", choices=NODE_TYPES, flags=("-t", "--type")),
        Field("comment", "str", flags=("-c", "--comment"), help="comment (LIKE pattern)"),
        LIMIT, OFFSET), cli_one_of=("node_names", "state", "type", "comment"), layout=NODE_LAYOUT + ("ready:yn",)),
    _node_query("node_attributes_query_details", "One node with its processors, GPUs, HCAs, DIMMs and SSDs.", (
        Field("node_name", "str", required=True, flags=("-n", "--node_name")),), results_key=None,
        layout=DETAILS_LAYOUT),
    _node_query("node_attributes_query_history", "The history of a node's attributes.", (
        Field("node_name", "str", required=True, flags=("-n", "--node_name")),
        Field("order_by", "str", choices=("a", "d"), flags=("-O", "--order_by"),
              help="a: oldest first, d: newest first (default)"),
        LIMIT, OFFSET), layout=("history_time",) + NODE_LAYOUT),
    _node_query("node_query_state_history", "A node's state changes and what caused each.", (
        Field("node_name", "str", required=True, flags=("-n", "--node_name")),
        Field("order_by", "str", choices=("a", "d"), flags=("-O", "--order_by")),
        Field("yaml", "bool", default=False, flags=("-Y", "--YAML"), help="YAML instead of the table"),
        LIMIT, OFFSET), layout=("history_time", "node_name", "state", "alteration", "RAS_rec_id=ras_rec_id",
                                "RAS_msg_id=ras_msg_id")),
    Command(name="node_attributes_update", cmd_id=API_IDS["node_attributes_update"],
            description="Update nodes: state (checked against the transition table unless --force), "
                        "comment, locations, features. #CSM_NULL clears a field.",
            fields=(
                Field("node_names", "list", required=True, flags=("-n", "--node_names")),
                Field("state", "str", choices=NODE_STATES, flags=("-s", "--state")),
                Field("comment", "str", nullable=True, flags=("-c", "--comment")),
                Field("physical_frame_location", "str", nullable=True, flags=("-f", "--physical_frame_location")),
                Field("physical_u_location", "str", nullable=True, flags=("-u", "--physical_u_location")),
                Field("feature_1", "str", nullable=True, flags=("-1", "--feature_1")),
                Field("feature_2", "str", nullable=True, flags=("-2", "--feature_2")),
                Field("feature_3", "str", nullable=True, flags=("-3", "--feature_3")),
                Field("feature_4", "str", nullable=True, flags=("-4", "--feature_4")),
                Field("force", "bool", default=False, flags=("--force",),
                      help="allow a state change the transition table does not"),
            ), cli_partial=("update", "node_names")),
    Command(name="node_delete", cmd_id=API_IDS["node_delete"], description="Delete nodes and their inventory.",
            fields=(Field("node_names", "list", required=True, flags=("-n", "--node_names")),),
            cli_partial=("delete", "node_names")),
    _node_query("cluster_query_state", "Every node with its state, type and allocations.", (
        Field("state", "str", choices=NODE_STATES, flags=("-s", "--state")),
        Field("type", "str", choices=NODE_TYPES, flags=("-t", "--type")),
        Field("num_allocs", "int", flags=("-n", "--num_allocs"), help="only nodes with this many allocations"),
        Field("order_by", "str", choices=tuple("abcdefgh"), flags=("-O", "--order_by"),
              help="a/b node_name, c/d state, e/f type, g/h num_allocs (second letter: descending)"),
        Field("yaml", "bool", default=False, flags=("-Y", "--YAML"), help="YAML instead of the table"),
        LIMIT, OFFSET), layout=("node_name", "collection_time", "update_time", "state", "type", "num_allocs:n",
                                ("allocs", "-alloc_id"), ("states", "-state"), ("shared", "-shared:tf"))),
    _node_query("node_resources_query", "The scheduler's view of some nodes.",
                (NODE_NAMES.replace(required=True), LIMIT, OFFSET), layout=RESOURCES_LAYOUT),
    _node_query("node_resources_query_all", "The scheduler's view of every node.", (LIMIT, OFFSET),
                layout=RESOURCES_LAYOUT),
)

AGGREGATOR_REHOME = Command(
    name="aggregator_rehome", cmd_id=101,
    description="(beyond CAST) Make an aggregator the primary again of every compute it reaches as "
                "secondary, e.g. after it was restarted.",
    fields=(Field("aggregator", "str", required=True, flags=("-a", "--aggregator"), help="the aggregator's node"),))

SOFT_FAILURE_RECOVERY = Command(
    name="soft_failure_recovery", cmd_id=API_IDS["soft_failure_recovery"],
    description="Try to return SOFT_FAILURE compute nodes without an allocation to IN_SERVICE (runs the "
                "recovery script on each); a node that fails retry_count times goes to HARD_FAILURE.",
    fields=(Field("retry_count", "int", flags=("-r", "--retry", "--retry_count"), default=1,
                  help="failures before a node is taken out of service (default 1)"),))

SSD_WEAR_UPDATE = Command(name="ssd_wear_update", cmd_id=API_IDS["ssd_wear_update"], cli="",
                          description="SSD wear counters from a node's ssd bucket.", open_input=True)

RAS_COMMANDS = (RAS_EVENT_CREATE, RAS_EVENT_QUERY, RAS_EVENT_QUERY_ALLOCATION, RAS_EVENT_ACK,
                RAS_MSG_TYPE_CREATE, RAS_MSG_TYPE_UPDATE, RAS_MSG_TYPE_DELETE, RAS_MSG_TYPE_QUERY)


def build_registry():
    """The registry of every command this implementation knows."""
    from csm.api.wm_commands import WM_COMMANDS  # it builds on the fields above
    from csm.api.cgroup_commands import CGROUP_COMMANDS
    from csm.api.bb_commands import BB_COMMANDS
    from csm.api.diag_commands import DIAG_COMMANDS
    from csm.api.switch_commands import SWITCH_COMMANDS
    return Registry((INFRASTRUCTURE_HEALTH_CHECK, CTRL_CMD, ECHO, NODE_INVENTORY, SSD_WEAR_UPDATE, AGGREGATOR_REHOME,
                     SOFT_FAILURE_RECOVERY)
                    + NODE_COMMANDS + RAS_COMMANDS + WM_COMMANDS + DIAG_COMMANDS + SWITCH_COMMANDS
                    + CGROUP_COMMANDS + BB_COMMANDS)



def __getattr__(name):
    """``REGISTRY``, built on first use: the command modules build on this one's fields, so
    importing one of them first (``csm.api.wm_commands``) must not build it half-way."""
    if name == "REGISTRY":
        registry = globals()["REGISTRY"] = build_registry()
        return registry
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
