"""Output of the ``csm_diag_*`` commands in CAST's layout (``csmi/src/diag/cmd``)."""

from csm.cli import output

RUN_KEYS = ("run_id", "allocation_id", "begin_time", "cmd_line", "end_time", "history_time", "inserted_ras",
            "log_dir", "status")
RUN_DATA_KEYS = ("history_time", "run_id", "allocation_id", "begin_time", "end_time", "diag_status", "inserted_ras",
                 "log_dir", "cmd_line")
RESULT_KEYS = ("history_time", "run_id", "test_name", "node_name", "serial_number", "begin_time", "end_time",
               "status", "log_file")
NO_RESULTS = "---\nTotal_Records: 0\n# No matching records found.\n...\n"


def _value(record, key):
    value = record.get(key)
    if key == "inserted_ras":
        return "t" if value else "f"  # CAST printed the raw csm_bool byte
    return output.scalar(value)


def _lines(record, keys, width, pad="  ", trail=""):
    return ["%s%s %s%s" % (pad, (key + ":").ljust(width), _value(record, key), trail) for key in keys]


def run_query(result, args):
    runs = result.get("runs") or []
    if not runs:
        return NO_RESULTS
    lines = ["---", "Total_Records: %d" % len(runs)]
    for number, run in enumerate(runs, 1):
        lines.append("RECORD_%d:" % number)
        lines.extend(_lines(dict(run, status=run.get("diag_status")), RUN_KEYS, 14))
    return "\n".join(lines + ["..."]) + "\n"


def run_query_details(result, args):
    details = result.get("details") or []
    lines = ["---", "runData:"]
    lines.extend(_lines(result.get("run_data") or {}, RUN_DATA_KEYS, 17, trail=" "))
    lines.append("Total_Result_Records: %d" % len(details))
    for number, detail in enumerate(details, 1):
        lines.append("Result_Record_%d:" % number)
        lines.extend(_lines(detail, RESULT_KEYS, 17))
    return "\n".join(lines + ["..."]) + "\n"


def run_begin(result, args):
    given = "" if args.get("run_id") is not None else "run_id: %s\n" % result.get("run_id")
    return "---\n%s# csm_diag_run_begin has completed successfully!\n...\n" % given


FORMATTERS = {
    "diag_run_begin": run_begin,
    "diag_run_end": lambda result, args: "---\n# csm_diag_run_end has completed successfully!\n...\n",
    "diag_result_create": lambda result, args: "csm_diag_result_create has completed successfully!\n",
    "diag_run_query": run_query,
    "diag_run_query_details": run_query_details,
}
