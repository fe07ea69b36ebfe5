"""The node-side workload commands: step cgroups, ``csm_cgroup_login`` and ``csm_jsrun_cmd``.

Inputs follow CAST's structures (``csmi/include/csm_types/struct_defs/wm``);
the step cgroup and login APIs are answered by the compute they are sent to
(CAST's agent-only APIs), ``csm_jsrun_cmd`` goes through the master, which
multicasts it to the allocation's nodes.
"""

from csm.api.registry import API_IDS, Command, Field
from csm.node.controllers import CONTROLLERS

ALLOCATION_ID = Field("allocation_id", "int", required=True, flags=("-a", "--allocation_id"), help="the allocation")
COMPUTE = frozenset({"compute"})
#: the step cgroup APIs: on the compute called (CAST), or on the master with the step's nodes;
#: csm_jsrun_cmd: on the master, and refused on a compute (CAST)
STEP_ROLES = frozenset({"compute", "master"})
STEP_NODES = Field("compute_nodes", "list", help="(beyond CAST) the step's nodes: the master multicasts to them")

STEP_CGROUP_CREATE = Command(
    name="allocation_step_cgroup_create", cmd_id=API_IDS["allocation_step_cgroup_create"], handled_on=STEP_ROLES,
    master_with=("compute_nodes",), cli="", open_input=True,
    description="Make a step's cgroup inside the allocation's cgroup on this node: its CPU set and memory "
                "limits; components: [{type: cpuset|memory|devices|cpuacct, params: [..], values: [..]}].",
    fields=(ALLOCATION_ID,
            Field("cgroup_name", "str", required=True, help="the step cgroup's name"),
            Field("pid", "int", default=0, help="a process to put in it (0: none)"), STEP_NODES))

STEP_CGROUP_DELETE = Command(
    name="allocation_step_cgroup_delete", cmd_id=API_IDS["allocation_step_cgroup_delete"], handled_on=STEP_ROLES,
    master_with=("compute_nodes",), cli="",
    description="Remove a step's cgroup on this node, killing what still runs in it.",
    fields=(ALLOCATION_ID,
            Field("cgroup_name", "str", required=True),
            Field("controller_types", "list", choices=CONTROLLERS, help="controllers (v2: all go together)"),
            STEP_NODES))

CGROUP_LOGIN = Command(
    name="cgroup_login", cmd_id=API_IDS["cgroup_login"], handled_on=COMPUTE, cli="",
    description="Check that a user owns an allocation on this node and (migrate_pid) put a process, their "
                "login session, into its cgroup.",
    fields=(Field("allocation_id", "int", default=-1, help="the allocation to prefer (-1: the user's)"),
            Field("pid", "int", default=0, help="the process to move"),
            Field("user_name", "str", required=True),
            Field("migrate_pid", "bool", default=False)))

JSRUN_CMD = Command(
    name="jsrun_cmd", cmd_id=API_IDS["jsrun_cmd"], multicast=True, handled_on=STEP_ROLES,
    description="Start the job launcher's daemon (JSM) as the allocation's user in its cgroup on every node "
                "of the allocation.",
    fields=(ALLOCATION_ID,
            Field("kv_pairs", "str", default="", flags=("-k", "--kv_pairs"),
                  help="arguments for the launcher (letters, digits, _ , =); exported as CSM_JSM_ARGS"),
            Field("jsm_path", "str", default="", flags=("-p", "--jsm_path"),
                  help="the launcher to run (default: the compute's jsrun_cmd key)")))

RAS_SUBSCRIBE_IDS = ("ras_subscribe", "ras_unsubscribe", "ras_sub_event", "ras_msg_type_get")
#: CAST's ids with no handler even in CAST: answered with an error, never silence
NOT_IMPLEMENTED = tuple(
    Command(name=name, cmd_id=API_IDS[name], cli="", open_input=True,
            description="(CAST's legacy MQTT id: not implemented in CAST either)")
    for name in RAS_SUBSCRIBE_IDS)

#: the aggregator fans these out (the master's multicast) or passes them up
MULTICAST = (JSRUN_CMD, STEP_CGROUP_CREATE, STEP_CGROUP_DELETE)
CGROUP_COMMANDS = (STEP_CGROUP_CREATE, STEP_CGROUP_DELETE, CGROUP_LOGIN, JSRUN_CMD) + NOT_IMPLEMENTED
