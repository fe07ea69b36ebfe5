"""The diagnostics commands: CAST's five ``csm_diag_*`` APIs and the check runner's multicast.

Flags follow CAST's command-line tools (``csmi/src/diag/cmd``).
"""

from csm.api.registry import LIMIT, OFFSET, Command, Field, api_command

#: csmi_diag_run_status_t
RUN_STATUSES = ("CANCELED", "COMPLETED", "RUNNING", "FAILED", "COMPLETED_FAIL")
END_STATUSES = tuple(s for s in RUN_STATUSES if s != "RUNNING")
RUN_ID = Field("run_id", "int", required=True, flags=("-r", "--run_id"), help="the diagnostic run id")


DIAG_RUN_BEGIN = api_command(
    "diag_run_begin", "Record the start of a diagnostic run (without -r the master picks the next run id).",
    fields=(Field("run_id", "int", flags=("-r", "--run_id"), help="the diagnostic run id (default: the next)"),
            Field("allocation_id", "int", required=True, flags=("-a", "--allocation_id"),
                  help="the allocation the run is part of"),
            Field("log_dir", "str", required=True, flags=("-l", "--log_dir"), help="where its log files are"),
            Field("cmd_line", "str", flags=("-c", "--cmd_line"), help="how the diagnostic program was invoked")))

DIAG_RUN_END = api_command(
    "diag_run_end", "End a diagnostic run: it and its results move to history.",
    fields=(RUN_ID,
            Field("status", "str", required=True, choices=END_STATUSES, flags=("-s", "--status")),
            Field("inserted_ras", "bool", flags=("-i", "--inserted_ras"),
                  help="whether the run raised RAS events: t or f (default f)")))

DIAG_RESULT_CREATE = api_command(
    "diag_result_create", "Record the result of one test of a running diagnostic run on one node.",
    fields=(RUN_ID,
            Field("test_name", "str", required=True, flags=("-t", "--test_name")),
            Field("node_name", "str", required=True, flags=("-n", "--node_name")),
            Field("status", "str", required=True, flags=("-s", "--status"), help="e.g. PASS or FAIL (16 characters)"),
            Field("serial_number", "str", flags=("-S", "--serial_number"), help="the part the test was run against"),
            Field("begin_time", "str", flags=("-b", "--begin_time"), help="when the test began"),
            Field("log_file", "str", flags=("-l", "--log_file"))))

DIAG_RUN_QUERY = api_command(
    "diag_run_query", "Query diagnostic runs, running and in history.", results_key="runs",
    one_of=("allocation_ids", "run_ids", "status", "inserted_ras", "begin_time_search_begin",
            "begin_time_search_end", "end_time_search_begin", "end_time_search_end"),
    fields=(Field("allocation_ids", "list", flags=("-a", "--allocation_ids"), help="allocation ids: 1,33"),
            Field("begin_time_search_begin", "str", flags=("-b", "--begin_time_search_begin")),
            Field("begin_time_search_end", "str", flags=("-B", "--begin_time_search_end")),
            Field("end_time_search_begin", "str", flags=("-e", "--end_time_search_begin")),
            Field("end_time_search_end", "str", flags=("-E", "--end_time_search_end")),
            Field("inserted_ras", "bool", flags=("-i", "--inserted_ras"), help="t or f"),
            Field("run_ids", "list", flags=("-r", "--run_ids"), help="run ids: 1,42"),
            Field("status", "list", choices=RUN_STATUSES, flags=("-s", "--status"), help="statuses: FAILED,RUNNING"),
            LIMIT, OFFSET))

DIAG_RUN_QUERY_DETAILS = api_command(
    "diag_run_query_details", "A diagnostic run with every result it recorded.", fields=(RUN_ID,))

DIAG_CHECK = Command(
    name="diag_check", cmd_id=116, cli="", multicast=True, timeout=600.0,
    description="(beyond CAST, for csm-diag) Run one check script on some compute nodes through their "
                "daemons; every node's exit status and output.",
    fields=(Field("node_names", "list", required=True),
            Field("test_name", "str", required=True),
            Field("script", "str", required=True, help="the check's text (run as an executable file)"),
            Field("run_id", "int"),
            Field("check_timeout", "int", default=60, help="seconds a node may take")))

DIAG_COMMANDS = (DIAG_RUN_BEGIN, DIAG_RUN_END, DIAG_RESULT_CREATE, DIAG_RUN_QUERY, DIAG_RUN_QUERY_DETAILS,
                 DIAG_CHECK)
