"""The workload-management commands: allocations, steps and ``csm_node_find_job``.

Flags follow CAST's command-line tools (``csmi/src/wm/cmd``); states, types and
error codes follow ``csm-apis-db.md`` section 7.2.
"""

from csm.api.lifecycle_commands import (  # noqa: F401 (ALLOCATION_TYPES, JOB_TYPES: kept importable from here)
    ALLOCATION_CREATE, ALLOCATION_DELETE, ALLOCATION_ID, ALLOCATION_TYPES, ALLOCATION_UPDATE_STATE, JOB_TYPES,
    PRIMARY_JOB_ID, REQUIRED_ALLOCATION_ID, SECONDARY_JOB_ID)
from csm.api.registry import LIMIT, OFFSET, Field, api_command

#: csmi_state_t, in CAST's order.
ALLOCATION_STATES = ("staging-in", "to-running", "running", "to-staging-out", "staging-out", "to-complete",
                     "complete", "to-failed", "failed", "deleting", "deleting-mcast", "running-failed",
                     "staging-out-failed")
STEP_STATUSES = ("running", "completed", "killed")

#: An allocation's fields in the order csm_allocation_query prints one (csmi/src/wm/cmd).
ALLOCATION_LAYOUT = ("allocation_id:n", "primary_job_id:n", "secondary_job_id:n", "num_nodes:n", ("compute_nodes", "-"),
                     "ssd_file_system_name", "launch_node_name", "user_flags", "system_flags", "smt_mode:n",
                     "ssd_min:n", "ssd_max:n", "num_processors:n", "num_gpus:n", "projected_memory:n", "state", "type",
                     "job_type", "user_name", "user_id:n", "user_group_id:n", "user_script", "begin_time", "account",
                     "comment", "job_name", "job_submit_time", "queue", "requeue", "time_limit:n", "wc_key",
                     "isolated_cores:n")
STEP_LAYOUT = ("allocation_id:n", "step_id:n", "begin_time", "status", "executable", "working_directory", "argument",
               "environment_variable", "num_nodes:n", "num_processors:n", "num_gpus:n", "projected_memory:n",
               "num_tasks:n", "user_flags")
STEP_HISTORY = ("history", ("archive_history_time", "cpu_stats", "end_time", "error_message", "exit_status:n",
                            "gpu_stats", "io_stats", "max_memory:n", "memory_stats", "omp_thread_limit",
                            "total_s_time:f", "total_u_time:f"))


ALLOCATION_QUERY = api_command(
    "allocation_query", "One allocation, active or in history, by id or by job id.",
    one_of=("allocation_id", "primary_job_id"), fields=(ALLOCATION_ID, PRIMARY_JOB_ID, SECONDARY_JOB_ID),
    layout=ALLOCATION_LAYOUT)

ALLOCATION_QUERY_ACTIVE_ALL = api_command(
    "allocation_query_active_all", "Every active allocation.", results_key="allocations",
    fields=(Field("fields", "list", flags=("-f", "--fields"), help="only these fields: f1,f2 (CAST: -f/--format)"),
            LIMIT, OFFSET))

ALLOCATION_QUERY_DETAILS = api_command(
    "allocation_query_details", "An allocation with its steps, per-node accounting and state changes.",
    fields=(REQUIRED_ALLOCATION_ID,), layout=ALLOCATION_LAYOUT, cli_missing=9)

ALLOCATION_RESOURCES_QUERY = api_command(
    "allocation_resources_query", "The nodes of an allocation and whether each is ready.", results_key="results",
    fields=(REQUIRED_ALLOCATION_ID, LIMIT, OFFSET), layout=(12, "node_name", "ready:yn"))

ALLOCATION_UPDATE_HISTORY = api_command(
    "allocation_update_history", "Correct the accounting fields of an allocation in history.",
    fields=(REQUIRED_ALLOCATION_ID,
            Field("user_name", "str", flags=("-u", "--use_name", "--user_name")),
            Field("user_id", "int", flags=("-U", "--user_id")),
            Field("user_group_id", "int", flags=("-g", "--user_group_id")),
            Field("account", "str", flags=("-A", "--account")),
            Field("comment", "str", flags=("-c", "--comment")),
            Field("job_name", "str", flags=("-j", "--job_name")),
            Field("reservation", "str", flags=("-r", "--reservation"))))

NODE_FIND_JOB = api_command(
    "node_find_job", "The allocations (active and in history) that ran on some nodes.", results_key="results",
    fields=(Field("node_names", "list", required=True, flags=("-n", "--node_names")),
            Field("begin_time_search_begin", "str", flags=("-b", "--begin_time_search_begin")),
            Field("begin_time_search_end", "str", flags=("-B", "--begin_time_search_end")),
            Field("end_time_search_begin", "str", flags=("-e", "--end_time_search_begin")),
            Field("end_time_search_end", "str", flags=("-E", "--end_time_search_end")),
            Field("midpoint", "str", flags=("-m", "--midpoint"), help="active at this time"),
            Field("midpoint_interval", "str", flags=("-M", "--midpoint_interval"),
                  help="widen the midpoint by this PostgreSQL interval"),
            Field("search_range_begin", "str", flags=("-s", "--search_range_begin")),
            Field("search_range_end", "str", flags=("-S", "--search_range_end")),
            Field("user_name", "str", flags=("-u", "--user_name")),
            Field("order_by", "str", flags=("-O", "--order_by"),
                  help="a/b node_name, allocation_id; c/d allocation_id; e/f primary_job_id; g/h user_name; "
                       "i/j num_nodes; k/l begin_time; m/n end_time (second letter: descending)"),
            Field("yaml", "bool", default=False, flags=("-Y", "--YAML"), help="YAML instead of the table"),
            LIMIT, OFFSET),
    record_label="RECORD",
    layout=("node_name", "allocation_id:n", "primary_job_id:n", "user_name", "num_nodes:n", "begin_time",
            "end_time"))

STEP_BEGIN = api_command(
    "allocation_step_begin", "Record a step of an allocation (the step prolog runs when user flags are set).",
    multicast=True,
    fields=(REQUIRED_ALLOCATION_ID,
            Field("step_id", "int", required=True, flags=("-S", "--step_id")),
            Field("compute_nodes", "list", required=True, flags=("-c", "--compute_nodes"), help="nodes: n1,n2"),
            Field("executable", "str", default="", flags=("-x", "--executable")),
            Field("working_directory", "str", default="", flags=("-w", "--working_directory")),
            Field("argument", "str", default="", flags=("-r", "--argument")),
            Field("environment_variable", "str", default="", flags=("-e", "--environment_variable")),
            Field("num_processors", "int", default=0, flags=("-p", "--num_processors")),
            Field("num_gpus", "int", default=0, flags=("-g", "--num_gpus")),
            Field("projected_memory", "int", default=0, flags=("-m", "--projected_memory")),
            Field("num_tasks", "int", default=0, flags=("-t", "--num_tasks")),
            Field("status", "str", choices=STEP_STATUSES, default="running"),
            Field("user_flags", "str", flags=("-u", "--user_flags"), help="flags for the step prolog")), cli_missing=9)

STEP_END = api_command(
    "allocation_step_end", "End a step: it moves to history with its statistics.", multicast=True,
    fields=(REQUIRED_ALLOCATION_ID,
            Field("step_id", "int", required=True, flags=("-s", "--step_id")),
            Field("status", "str", choices=STEP_STATUSES, default="completed", flags=("-S", "--status")),
            Field("exit_status", "int", default=0, flags=("-e", "--exit_status")),
            Field("error_message", "str", flags=("-E", "--error_message")),
            Field("cpu_stats", "str", flags=("-c", "--cpu_stats")),
            Field("gpu_stats", "str", flags=("-G", "--gpu_stats")),
            Field("io_stats", "str", flags=("-i", "--io_stats")),
            Field("memory_stats", "str", flags=("-m", "--memory_stats")),
            Field("max_memory", "int", flags=("-M", "--max_memory")),
            Field("omp_thread_limit", "str", flags=("-n", "--omp_thread_limit")),
            Field("total_u_time", "float", flags=("-t", "--total_u_time")),
            Field("total_s_time", "float", flags=("-T", "--total_s_time"))), cli_missing=9)

STEP_QUERY = api_command(
    "allocation_step_query", "Steps of an allocation, active and in history.", results_key="steps",
    fields=(REQUIRED_ALLOCATION_ID, Field("step_id", "int", flags=("-s", "--step_id")), LIMIT, OFFSET),
    layout=STEP_LAYOUT + (STEP_HISTORY,), cli_missing=9)

STEP_QUERY_ACTIVE_ALL = api_command(
    "allocation_step_query_active_all", "The active steps of an allocation.", results_key="steps",
    fields=(REQUIRED_ALLOCATION_ID, LIMIT, OFFSET), layout=STEP_LAYOUT, cli_missing=9)

STEP_QUERY_DETAILS = api_command(
    "allocation_step_query_details", "The steps of an allocation (or one step) with their nodes.",
    results_key="steps",
    fields=(REQUIRED_ALLOCATION_ID, Field("step_id", "int", flags=("-s", "--step_id"))),
    layout=STEP_LAYOUT[:2] + ("argument",) + tuple(f for f in STEP_LAYOUT[2:] if f != "argument")
    + (("compute_nodes", "-"), STEP_HISTORY), cli_missing=1,
    cli_one_record=("step_id", "step"))  # CAST's check of its step table: a step id began more than once

WM_COMMANDS = (ALLOCATION_CREATE, ALLOCATION_DELETE, ALLOCATION_UPDATE_STATE, ALLOCATION_QUERY,
               ALLOCATION_QUERY_ACTIVE_ALL, ALLOCATION_QUERY_DETAILS, ALLOCATION_RESOURCES_QUERY,
               ALLOCATION_UPDATE_HISTORY, NODE_FIND_JOB, STEP_BEGIN, STEP_END, STEP_QUERY, STEP_QUERY_ACTIVE_ALL,
               STEP_QUERY_DETAILS)

#: The commands a compute runs for the master (the agent side of a multicast).
MULTICAST_COMMANDS = (ALLOCATION_CREATE, ALLOCATION_DELETE, ALLOCATION_UPDATE_STATE, STEP_BEGIN, STEP_END)
