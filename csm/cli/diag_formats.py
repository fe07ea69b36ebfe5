"""Output of the ``csm_diag_*`` commands in CAST's layout (``csmi/src/diag/cmd``)."""

from csm.cli.cast_records import line, listing

RUN_KEYS = ("run_id", "allocation_id", "begin_time", "cmd_line", "end_time", "history_time", "inserted_ras",
            "log_dir", "status")
RUN_DATA_KEYS = ("history_time", "run_id", "allocation_id", "begin_time", "end_time", "diag_status", "inserted_ras",
                 "log_dir", "cmd_line")
RESULT_KEYS = ("history_time", "run_id", "test_name", "node_name", "serial_number", "begin_time", "end_time",
               "status", "log_file")


def run_query_details(result, args):
    details = result.get("details") or []
    lines = ["---", "runData:"]
    lines.extend(line(result.get("run_data") or {}, key, 17, trail=" ") for key in RUN_DATA_KEYS)
    lines.append("Total_Result_Records: %d" % len(details))
    for number, detail in enumerate(details, 1):
        lines.append("Result_Record_%d:" % number)
        lines.extend(line(detail, key, 17) for key in RESULT_KEYS)
    return "\n".join(lines + ["..."]) + "\n"


def run_begin(result, args):
    given = "" if args.get("run_id") is not None else "run_id: %s\n" % result.get("run_id")
    return "---\n%s# csm_diag_run_begin has completed successfully!\n...\n" % given


FORMATTERS = {
    "diag_run_begin": run_begin,
    "diag_run_end": lambda result, args: "---\n# csm_diag_run_end has completed successfully!\n...\n",
    "diag_result_create": lambda result, args: "csm_diag_result_create has completed successfully!\n",
    "diag_run_query": listing(RUN_KEYS, 14, "runs", prepare=lambda run: dict(run, status=run.get("diag_status"))),
    "diag_run_query_details": run_query_details,
}
