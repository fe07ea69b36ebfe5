"""The burst buffer commands: volume groups, logical volumes and ``csm_bb_cmd``.

Flags follow CAST's command-line tools (``csmi/src/bb/cmd``); ``csm_bb_lv_update``
and ``csm_bb_cmd`` have no command-line tool in CAST and none here.
"""

from csm.api.registry import OFFSET, Field, api_command

#: csm_lv.state: created, mounted, shrinking, removed
LV_STATES = ("C", "M", "S", "R")


NODE_NAME = Field("node_name", "str", required=True, flags=("-n", "--node_name"))
VG_NAME = Field("vg_name", "str", required=True, flags=("-V", "--vg_name"))
LV_NAME = Field("logical_volume_name", "str", required=True, flags=("-l", "--logical_volume_name"))
LV_ALLOCATION = Field("allocation_id", "int", required=True, flags=("-a", "--allocation_id"))
SIZE = "bytes"

BB_VG_CREATE = api_command(
    "bb_vg_create", "Record a volume group on a node's SSDs (the SSDs' allocations add up to its total size).",
    (Field("available_size", "int", required=True, flags=("-a", "--available_size"), help=SIZE),
     Field("scheduler", "bool", flags=("-c", "--scheduler"),
           help="true: the scheduler's volume group (one per node); default false"),
     NODE_NAME,
     Field("ssd_serial_numbers", "list", required=True, flags=("-s", "--ssd_serial_number"), help="s1,s2"),
     Field("ssd_allocations", "list", required=True, flags=("-S", "--ssd_allocation"),
           help="bytes on each SSD: b1,b2"),
     Field("total_size", "int", required=True, flags=("-t", "--total_size"), help=SIZE),
     VG_NAME))

BB_VG_DELETE = api_command("bb_vg_delete", "Delete a volume group that holds no logical volume.", (NODE_NAME, VG_NAME))

BB_VG_QUERY = api_command(
    "bb_vg_query", "Volume groups with their SSDs.", results_key="results", one_of=("node_names", "vg_names"),
    fields=(Field("node_names", "list", flags=("-n", "--node_names")),
            Field("vg_names", "list", flags=("-V", "--vg_names")), Field("limit", "int", flags=("-l", "--limit")),
            OFFSET))

BB_LV_CREATE = api_command(
    "bb_lv_create", "Record a logical volume of an allocation in a volume group of one of its nodes.",
    (LV_ALLOCATION,
     Field("current_size", "int", required=True, flags=("-c", "--current_size"), help=SIZE),
     Field("file_system_mount", "str", required=True, flags=("-f", "--file_system_mount")),
     Field("file_system_type", "str", required=True, flags=("-F", "--file_system_type")),
     LV_NAME, NODE_NAME,
     Field("state", "str", required=True, choices=LV_STATES, flags=("-s", "--state"), help="C, M, S or R"),
     VG_NAME))

BB_LV_DELETE = api_command(
    "bb_lv_delete", "Move a logical volume to history with its I/O counts; its space returns to the volume group.",
    (LV_ALLOCATION, LV_NAME, NODE_NAME)
    + tuple(Field(name, "int", flags=(short, "--" + name)) for name, short in (
        ("num_bytes_read", "-r"), ("num_bytes_written", "-w"), ("num_reads", "-R"), ("num_writes", "-W"))))

BB_LV_QUERY = api_command(
    "bb_lv_query", "Logical volumes.", results_key="results",
    one_of=("allocation_ids", "logical_volume_names", "node_names"),
    fields=(Field("allocation_ids", "list", flags=("-a", "--allocation_ids")),
            Field("logical_volume_names", "list", flags=("-L", "--logical_volume_names")),
            Field("node_names", "list", flags=("-n", "--node_names")),
            Field("limit", "int", flags=("-l", "--limit")), OFFSET))

BB_LV_UPDATE = api_command(
    "bb_lv_update", "Change a logical volume's state or size (the volume group's free space follows).", cli="",
    one_of=("current_size", "state"),
    fields=(LV_ALLOCATION, LV_NAME, NODE_NAME,
            Field("current_size", "int", flags=("-c", "--current_size")),
            Field("state", "str", choices=LV_STATES, flags=("-s", "--state"))))

BB_CMD = api_command(
    "bb_cmd", "Run the burst buffer command (the compute's bb_cmd key) on some nodes, as the caller; the output "
              "of each node comes back.", multicast=True, cli="",
    fields=(Field("node_names", "list", required=True, flags=("-n", "--node_names")),
            Field("command_arguments", "str", default="", flags=("-a", "--command_arguments"),
                  help="arguments (letters, digits, space and _ = , . / : -)")))

BB_COMMANDS = (BB_VG_CREATE, BB_VG_DELETE, BB_VG_QUERY, BB_LV_CREATE, BB_LV_DELETE, BB_LV_QUERY, BB_LV_UPDATE, BB_CMD)
