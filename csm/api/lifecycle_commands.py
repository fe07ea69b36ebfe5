"""An allocation's life: csm_allocation_create, csm_allocation_update_state and csm_allocation_delete.

A module of their own (the rest of the workload-management commands are in
``csm.api.wm_commands``, which takes these from here): each of the two commands a
scheduler runs for every job builds its own definition and these few only.
"""

from csm.api.registry import Field, api_command

ALLOCATION_TYPES = ("user-managed", "jsm", "jsm-cgroup-step", "diagnostics", "cgroup-step")
JOB_TYPES = ("batch", "interactive")

ALLOCATION_ID = Field("allocation_id", "int", flags=("-a", "--allocation_id"), help="the allocation")
REQUIRED_ALLOCATION_ID = Field("allocation_id", "int", required=True, flags=("-a", "--allocation_id"),
                               help="the allocation")
PRIMARY_JOB_ID = Field("primary_job_id", "int", flags=("-j", "--primary_job_id"), help="the scheduler's job id")
SECONDARY_JOB_ID = Field("secondary_job_id", "int", flags=("-J", "--secondary_job_id"),
                         help="the scheduler's secondary job id (default 0)")

ALLOCATION_CREATE = api_command(
    "allocation_create",
    "Reserve compute nodes for a job; in state running (not diagnostics) the privileged prolog runs on "
    "every node first.",
    multicast=True,
    fields=(
        Field("primary_job_id", "int", required=True, flags=("-j", "--primary_job_id"),
              help="the scheduler's job id"),
        SECONDARY_JOB_ID,
        Field("compute_nodes", "list", required=True, flags=("-n", "--node_range"), help="nodes: n1,n2"),
        Field("state", "str", choices=("running", "staging-in"), default="running", flags=("-s", "--state"),
              help="running (default) or staging-in"),
        Field("type", "str", choices=ALLOCATION_TYPES, default="user-managed", flags=("-t", "--type")),
        Field("job_type", "str", choices=JOB_TYPES, default="batch"),
        Field("user_name", "str", flags=("-u", "--user_name"), help="default: the caller"),
        Field("user_id", "int", flags=("-U", "--user_id"), help="default: the caller"),
        Field("user_group_id", "int"),
        Field("user_group_name", "str"),
        Field("launch_node_name", "str", flags=("-l", "--launch_node_name"), help="default: the first node"),
        Field("isolated_cores", "int", default=0, flags=("-c", "--isolated_cores"),
              help="cores per node kept for the system, 0-4"),
        Field("shared", "bool", default=False, flags=("-S", "--shared"), help="share the nodes"),
        Field("smt_mode", "int", default=0, flags=("-m", "--smt_mode")),
        Field("core_blink", "bool", default=False),
        Field("user_flags", "str", flags=("-A", "--user_flags"), help="flags for the prolog (alphanumeric)"),
        Field("system_flags", "str", flags=("-a", "--system_flags"), help="flags for the prolog (alphanumeric)"),
        Field("ssd_min", "int"), Field("ssd_max", "int"), Field("ssd_file_system_name", "str"),
        Field("num_processors", "int", default=0), Field("num_gpus", "int", default=0),
        Field("projected_memory", "int", default=0), Field("time_limit", "int", default=0),
        Field("account", "str", default=""), Field("comment", "str"), Field("job_name", "str"),
        Field("queue", "str"), Field("requeue", "str"), Field("wc_key", "str"), Field("reservation", "str"),
        Field("user_script", "str", default=""), Field("job_submit_time", "str"),
    ))

ALLOCATION_DELETE = api_command(
    "allocation_delete",
    "End an allocation: the epilog runs on its nodes (unless it is staging in or out), then it moves to "
    "history with the nodes' usage.",
    multicast=True, one_of=("allocation_id", "primary_job_id"),
    fields=(ALLOCATION_ID, PRIMARY_JOB_ID, SECONDARY_JOB_ID,
            Field("exit_status", "int", default=0, flags=("-e", "--exit_status"),
                  help="the job's exit status (default 0)")))

ALLOCATION_UPDATE_STATE = api_command(
    "allocation_update_state",
    "Move an allocation from staging-in to running (the prolog runs) or to staging-out (the epilog runs).",
    multicast=True,
    fields=(REQUIRED_ALLOCATION_ID,
            Field("new_state", "str", required=True, choices=("running", "staging-out"), flags=("-s", "--state")),
            Field("exit_status", "int", flags=("-e", "--exit_status"))), cli_missing=9)
