"""Per-command output formats where CAST prints something other than plain YAML."""

from csm.cli import output
from csm.cli.cast_records import NO_RESULTS, updated
from csm.cli.layout import block, records, value_text


def _daemon_line(kind, entry, with_link=False):
    parts = ["bounced=%s" % entry.get("bounced", 0), "version=%s" % entry.get("version", "n/a")]
    if with_link and entry.get("responding", True):
        parts.append("link=%s" % entry.get("link", "SECONDARY"))
    return "%s: %s (%s)" % (kind, entry.get("node", "?"), "; ".join(parts))


def _compute_block(title, computes, lines):
    active = [c for c in computes if c.get("responding")]
    silent = [c for c in computes if not c.get("responding")]
    lines.append("        %s:" % title)
    lines.append("                Active: %d" % len(active))
    lines.extend("                        " + _daemon_line("COMPUTE", c, True) for c in active)
    lines.append("                Unresponsive: %d" % len(silent))
    lines.extend("                        " + _daemon_line("COMPUTE", c, True) for c in silent)
    lines.append("")


def _aggregator(entry, verbose, lines):
    lines.append("    " + _daemon_line("AGGREGATOR", entry))
    computes = entry.get("computes") or []
    primary = [c for c in computes if c.get("link") == "PRIMARY"]
    secondary = [c for c in computes if c.get("link") != "PRIMARY"]
    for label, group in (("primary", primary), ("secondary", secondary)):
        responding = sum(1 for c in group if c.get("responding"))
        lines.append("        Active_%s: %d" % (label, responding))
        lines.append("        Unresponsive_%s: %d" % (label, len(group) - responding))
    lines.append("")
    if verbose:
        _compute_block("Primary Nodes", primary, lines)
        _compute_block("Secondary Nodes", secondary, lines)


def health_check(result, verbose=False):
    """``csm_infrastructure_health_check`` in CAST's layout."""
    lines = ["Starting. Contacting local daemon...",
             "Connected. Checking infrastructure... (this may take a moment. Please be patient...)",
             "", "###### RESPONSE FROM THE LOCAL DAEMON #######"]
    master = result.get("master") or {}
    lines.append("MASTER: %s (bounced=0; version=%s)" % (master.get("node", "?"), master.get("version", "n/a")))
    for key in ("db_state", "db_free_conn_size", "db_schema_version", "ha_state"):
        if key in master:
            lines.append("        %s: %s" % (key, master[key]))
    for entry in result.get("masters") or ():  # high availability (beyond CAST)
        lines.append("        master %s: %s" % (entry.get("node"), entry.get("state")))
    for entry in result.get("database") or ():
        lines.append("        database %s: %s" % (entry.get("role"), entry.get("server")))
    aggregators = result.get("aggregators") or []
    lines.append("")
    lines.append("Aggregators:%d" % len(aggregators))
    for entry in aggregators:
        if entry.get("responding"):
            _aggregator(entry, verbose, lines)
    silent = [a for a in aggregators if not a.get("responding")]
    lines.append("  Unresponsive Aggregators: %d" % len(silent))
    lines.extend("    " + _daemon_line("AGGREGATOR", a) for a in silent)
    utilities = result.get("utilities") or []
    lines.append("")
    lines.append("Utility Nodes:%d" % len(utilities))
    lines.extend("    " + _daemon_line("UTILITY", u) for u in utilities if u.get("responding"))
    silent = [u for u in utilities if not u.get("responding")]
    lines.append("")
    lines.append("  Unresponsive Utility Nodes: %d" % len(silent))
    lines.extend("    " + _daemon_line("UTILITY", u) for u in silent)
    local = result.get("local_daemon") or {}
    lines.append("")
    lines.append("Local_daemon: %s" % _daemon_line((local.get("role") or "?").upper(), local))
    lines.append("        Status: %s" % result.get("status", ""))
    lines.append("#############################################")
    lines.append("")
    lines.append("Finished. Cleaning up...")
    lines.append("Test complete: rc=0")
    return "\n".join(lines) + "\n"


def allocation_create(result, args):
    """CAST's create output: the id, the nodes, the user, the state."""
    lines = ["---", "allocation_id: %s" % result.get("allocation_id"), "num_nodes: %s" % result.get("num_nodes")]
    lines.extend("- compute_nodes: %s" % node for node in result.get("compute_nodes") or ())
    for key in ("user_name", "user_id", "state", "type", "job_submit_time"):
        lines.append("%s: %s" % (key, output.scalar(result.get(key))))
    return "\n".join(lines + ["..."]) + "\n"


def allocation_query(result, args, command):
    """One match: every field flat, values at column 32; several: CAST's short list."""
    allocations = result.get("allocations") or []
    if len(allocations) != 1:
        lines = ["---", "num_allocations: %d" % len(allocations), "allocations:"]
        for allocation in allocations:
            lines.append("  - allocation_id:    %s" % allocation.get("allocation_id"))
            lines.append("    primary_job_id:   %s" % allocation.get("primary_job_id"))
            lines.append("    secondary_job_id: %s" % allocation.get("secondary_job_id"))
            for key in ("begin_time", "state"):
                lines.append("    %s %s" % ((key + ":").ljust(16), value_text(allocation.get(key))))
            _history(allocation, lines, "     ", 14)
        return "\n".join(lines + ["..."]) + "\n"
    allocation, lines = allocations[0], ["---"]
    for item in command.layout:
        if isinstance(item, tuple):  # the nodes, as " - c01"
            lines.append(item[0] + ":")
            lines.extend(" - %s" % node for node in allocation.get(item[0]) or ())
        else:
            block(allocation, (item,), "", lines, width=32)
    _history(allocation, lines, "   ", 25)
    return "\n".join(lines + ["..."]) + "\n"


#: Each node's usage under csm_allocation_query_details' compute_nodes.
ACCOUNTING = tuple(key + ":n" for key in (
    "ib_rx", "ib_tx", "gpfs_read", "gpfs_write", "energy_consumed", "power_cap", "power_shifting_ratio",
    "power_cap_hit", "gpu_energy", "gpu_usage", "cpu_usage", "memory_usage_max"))


def allocation_query_details(result, args, command):
    """The allocation at column 32 with each node's usage and its state changes, then its steps."""
    allocation, lines = result.get("allocation") or {}, ["---"]
    usage = {row.get("node_name"): row for row in result.get("node_accounting") or ()}
    transitions = result.get("state_transitions") or []
    for item in command.layout:
        if isinstance(item, tuple):  # the nodes with their usage, then the state changes
            nodes = allocation.get(item[0]) or []
            if nodes:
                lines.append("compute_nodes:")
            for node in nodes:
                lines.append("  %s:" % node)
                if node in usage:
                    block(usage[node], ACCOUNTING, "   ", lines, width=29)
            lines.append("num_transitions:".ljust(32) + str(len(transitions)))
            if transitions:
                lines.append("state_transitions:")
            for transition in transitions:
                block(transition, ("history_time", "state"), "    ", lines, first="  - ", width=25)
        else:
            block(allocation, (item,), "", lines, width=32)
    _history(allocation, lines, "   ", 25)
    steps = result.get("steps") or []
    lines.append("num_steps:".ljust(16) + str(len(steps)))
    if steps:
        lines.append("steps:")
    for step in steps:
        nodes = step.get("compute_nodes") or []
        lines.append(" - step_id:".ljust(20) + value_text(step.get("step_id")))
        if step.get("end_time"):
            lines.append("   end_time:".ljust(20) + value_text(step.get("end_time")))
        lines.append("   num_nodes:".ljust(20) + str(len(nodes)))
        if nodes:
            lines.append("   compute_nodes:")
            lines.extend("    - %s" % node for node in nodes)
    return "\n".join(lines + ["..."]) + "\n"


def _history(allocation, lines, indent, width):
    history = allocation.get("history")
    if history:
        lines.append(indent[:-1] + "history:" if len(indent) > 3 else "history:")
        keys = ("end_time", "exit_status", "archive_history_time") if width > 20 else ("end_time", "exit_status")
        for key in keys:
            lines.append(indent + (key + ":").ljust(width)
                         + value_text(history.get(key), "n" if key == "exit_status" else ""))


ACTIVE_FIELDS = ("allocation_id", "primary_job_id", "secondary_job_id", "ssd_file_system_name", "launch_node_name",
                 "isolated_cores", "user_flags", "system_flags", "ssd_min", "ssd_max", "num_nodes", "num_processors",
                 "num_gpus", "projected_memory", "state", "type", "job_type", "user_name", "user_id",
                 "user_group_id", "user_group_name", "user_script", "begin_time", "account", "comment", "job_name",
                 "job_submit_time", "queue", "requeue", "time_limit", "wc_key", "shared", "compute_nodes")
#: What csm_allocation_query_active_all shows without -f (``-f %``: every field).
ACTIVE_DEFAULT = ("allocation_id", "primary_job_id", "begin_time", "state", "user_name", "num_nodes",
                  "launch_node_name")
ACTIVE_NUMBERS = frozenset(("allocation_id", "primary_job_id", "secondary_job_id", "isolated_cores", "ssd_min",
                            "ssd_max", "num_nodes", "num_processors", "num_gpus", "projected_memory", "user_id",
                            "user_group_id", "time_limit"))


def allocation_query_active_all(result, args, command):
    """``num_allocations``, then each allocation's fields: CAST's seven, those of ``-f``, or all (``-f %``)."""
    allocations = result.get("allocations") or []
    if not allocations:
        return no_results(command)
    wanted = args.get("fields") or ACTIVE_DEFAULT
    if list(wanted) == ["%"]:
        wanted = ACTIVE_FIELDS
    lines = ["---", "num_allocations: %d" % len(allocations), "allocations:"]
    for allocation in allocations:
        for number, key in enumerate(wanted):
            pad = "  - " if number == 0 else "    "
            if key == "compute_nodes":
                lines.append(pad + "compute_nodes: ")
                lines.extend("      - %s" % node for node in allocation.get(key) or ())
            else:
                style = "tf" if key == "shared" else "n" if key in ACTIVE_NUMBERS else ""
                lines.append("%s%s: %s" % (pad, key, value_text(allocation.get(key), style)))
    return "\n".join(lines + ["..."]) + "\n"


def node_details(result, args, command):
    """One record: the node's fields prefixed ``node_``, then each kind of part with its count."""
    record = {"node_" + key: value for key, value in (result.get("node") or {}).items()}
    record.update({key: value for key, value in result.items() if key != "node"})
    return records([record], command.layout)


def state_history(result, args, command):
    """CAST's table, or YAML with ``-Y``."""
    rows = result.get("results") or []
    if args.get("yaml"):
        return records([dict(row, node_name=result.get("node_name")) for row in rows], command.layout)
    lines = ["---", "node_name: %s" % result.get("node_name"),
             "#         history_time        |      state     |      alteration      | RAS_rec_id, RAS_msg_id ",
             "# ----------------------------+----------------+----------------------+------------------------"]
    for row in rows:
        ras = "%s, %s" % (row.get("ras_rec_id"), row.get("ras_msg_id")) if row.get("ras_rec_id") else ""
        lines.append("#  %-27s| %-15s| %-21s| %s" % (row.get("history_time"), row.get("state"),
                                                     row.get("alteration"), ras))
    return "\n".join(lines + ["..."]) + "\n"


def _text(value):
    return value_text(value, "tf" if isinstance(value, bool) else "")


def _records_unless_table(result, args, command):
    """The rows, and the text when it is not CAST's table: no results, or YAML asked with ``-Y``."""
    rows = result.get("results") or []
    if not rows:
        return rows, no_results(command)
    if args.get("yaml"):
        return rows, records(rows, command.layout, command.record_label)
    return rows, None


def cluster_query_state(result, args, command):
    """CAST's table (a line a node: its allocations, their states and sharing), or YAML with ``-Y``."""
    rows, text = _records_unless_table(result, args, command)
    if text is not None:
        return text
    name = max(len(_text(r.get("node_name"))) for r in rows)
    state = max(len(_text(r.get("state"))) for r in rows)
    kind = max(len(_text(r.get("type"))) for r in rows)
    lines = ["---", "# %-*s | %-26s | %-26s | %-*s | %-*s | %s" % (
        name, "node_name", "collection_time", "update_time", state, "state", kind, "type",
        "num_allocs - allocs - states - shared"),
        "# %-*s + %-26s + %-26s + %-*s + %-*s + %s" % (name, " ", " ", " ", state, " ", kind, " ", " ")]
    for row in rows:
        line = "# %-*s | %-26s | %-26s | %-*s | %-*s |  %s" % (
            name, _text(row.get("node_name")), _text(row.get("collection_time")), _text(row.get("update_time")),
            state, _text(row.get("state")), kind, _text(row.get("type")), _text(row.get("num_allocs")))
        if row.get("allocs"):
            line += "".join(" - " + ",".join(_text(v) for v in row.get(key) or ())
                            for key in ("allocs", "states", "shared"))
        lines.append(line)
    return "\n".join(lines + ["..."]) + "\n"


def node_find_job(result, args, command):
    """CAST's table of the allocations on the nodes, or YAML with ``-Y``."""
    rows, text = _records_unless_table(result, args, command)
    if text is not None:
        return text
    name = max([9] + [len(_text(r.get("node_name"))) for r in rows])
    user = max([9] + [len(_text(r.get("user_name"))) for r in rows])
    widths = (name, 13, 14, user, 9)
    keys = ("node_name", "allocation_id", "primary_job_id", "user_name", "num_nodes")
    lines = ["---", "# " + " | ".join("%-*s" % (w, k) for w, k in zip(widths, keys))
             + " | %-26s | %-26s" % ("begin_time", "end_time"),
             "# " + " + ".join("%-*s" % (w, " ") for w in widths) + " + %-26s + %-26s" % (" ", " ")]
    for row in rows:
        lines.append("# " + " | ".join("%-*s" % (w, _text(row.get(k))) for w, k in zip(widths, keys))
                     + " | %-26s | %-26s" % (_text(row.get("begin_time")), _text(row.get("end_time"))))
    return "\n".join(lines + ["..."]) + "\n"


def _type_done(flag):
    def text(result, args, command):
        return ("%s has completed successfully!\n    %s: %s\n    msg_id:            %s\n"
                % (command.api_name, flag, "y" if result.get(flag) else "n", result.get("msg_id")))
    return text


def type_delete(result, args, command):
    lines = ["%s has completed successfully!" % command.api_name, "  The following msg ids have been deleted:"]
    lines.extend("    %s" % msg_id for msg_id in result.get("deleted_msg_ids") or ())
    return "\n".join(lines) + "\n"


def ctrl_cmd(result, args):
    """CAST's csm_ctrl_cmd: the daemon's response between its banner lines."""
    body = "\n".join(output.dump(result or {}))
    return ("Started client \n\n\n### RESPONSE FROM THE LOCAL DAEMON ###\n%s\n"
            "#######################################\n" % body)


def soft_failure_recovery(result, args):
    """Cleaned up, with the nodes whose recovery failed; or that no node is in soft failure."""
    if result.get("none_in_soft_failure"):
        return "# No nodes currently in soft failure.\n"
    errors = result.get("node_errors") or []
    lines = ["---", "# Soft Failure cleaned up."]
    if errors:
        lines.append("# %d Nodes Failed:" % len(errors))
        lines.extend("# %s[%d]: %s" % (e.get("source"), e.get("errcode"), e.get("errmsg")) for e in errors)
    return "\n".join(lines + ["..."]) + "\n"


def _message(text):
    return lambda result, args: text.format(**dict(args, **(result or {})))


def _silent(result, args):
    return ""


#: command name -> function(result, args) -> text, where CAST prints something other than records
FORMATTERS = {
    "allocation_create": allocation_create,
    "allocation_delete": _message("---\n# Allocation ID: {allocation_id} successfully deleted\n...\n"),
    "allocation_update_state": _message("Allocation ID {allocation_id} was updated to {new_state} successfully\n"),
    "allocation_update_history": _message("---\n# Successfully updated allocation {allocation_id}\n...\n"),
    "allocation_step_begin": _silent,
    "allocation_step_end": _silent,
    "ras_event_create": _silent,
    "node_attributes_update": updated("updated", "node_names"),
    "node_delete": updated("deleted", "node_names"),
    "ctrl_cmd": ctrl_cmd,
    "soft_failure_recovery": soft_failure_recovery,
    "infrastructure_health_check": lambda result, args: health_check(result, args.get("verbose_health")),
}

#: The same, for formatters that read the command's layout or name: function(result, args, command).
COMMAND_FORMATTERS = {
    "allocation_query": allocation_query,
    "allocation_query_active_all": allocation_query_active_all,
    "allocation_query_details": allocation_query_details,
    "ras_msg_type_create": _type_done("insert_successful"),
    "ras_msg_type_update": _type_done("update_successful"),
    "ras_msg_type_delete": type_delete,
    "node_attributes_query_details": node_details,
    "node_query_state_history": state_history,
    "cluster_query_state": cluster_query_state,
    "node_find_job": node_find_job,
}

#: How a failure reads, where CAST's tool differs from ``<cmd> FAILED: errcode: N errmsg: ...``.
FAILURES = {
    "allocation_create": "{cmd} FAILED: returned: {code}, errcode: {code} errmsg: {msg}",
    "allocation_delete": "# {cmd} FAILED: returned: {code}, errcode: {code} errmsg: {msg}",
    "soft_failure_recovery": "# {cmd} FAILED: returned: {code}, errcode: {code} errmsg: {msg}",
    "allocation_update_history": "---\n# FAILED: errcode: {code} errmsg: {msg}\n...",
}

#: What CAST prints when nothing matched, where it is not ``NO_RESULTS``.
NO_RESULTS_BY_COMMAND = {
    "allocation_query_active_all": "---\nnum_allocations: 0\n# No matching records found.\n...\n",
    "soft_failure_recovery": "# No nodes currently in soft failure.\n",
}


def failure_line(command, error):
    template = FAILURES.get(command.name, "{cmd} FAILED: errcode: {code} errmsg: {msg}")
    return template.format(cmd=command.cli_name, code=int(error.errcode), msg=error.errmsg)


def update_mismatch(command, error, args):
    """CAST's partial update: how many of the nodes (switches, cables) failed, and which."""
    names = [e.source for e in error.node_errors]
    verb, key = command.cli_partial
    lines = ["---", "# Could not %s %d of the %d record(s):" % (verb, len(names), len(args.get(key) or ())),
             "total_failures: %d" % len(names), "%s:" % key]
    lines.extend(" - %s" % name for name in names)
    return "\n".join(lines + ["..."]) + "\n"


def node_errors(errors):
    """CAST's list of the nodes that failed a multicast, after the failure line."""
    if not errors:
        return ""
    lines = ["bad_node_count: %d" % len(errors), "bad_nodes:"]
    lines.extend(" - %s[%d]: %s" % (e.source, e.errcode, e.errmsg) for e in errors)
    return "\n".join(lines) + "\n"


def more_than_one(command, result):
    """CAST's answer where one record was asked for (``Command.cli_one_record``) and more came."""
    return ("---\nTotal_Records: %d\n# Error: There should only be one matching %s record. Verify the database. \n"
            % (len(result[command.results_key]), command.cli_one_record[1]))


def no_results(command):
    return NO_RESULTS_BY_COMMAND.get(command.name, NO_RESULTS)


#: Command families whose formatters live in a module of their own, imported by those commands only.
FAMILIES = (("diag_", "csm.cli.diag_formats"), ("switch_", "csm.cli.switch_formats"),
            ("ib_cable_", "csm.cli.switch_formats"))


def formatter_of(name):
    """The ``FORMATTERS`` entry of command ``name`` (its family's module's where it has one), or None."""
    for prefix, module in FAMILIES:
        if name.startswith(prefix):
            import sys
            __import__(module)
            return sys.modules[module].FORMATTERS.get(name)
    return FORMATTERS.get(name)


def render(command, result, args):
    formatter = COMMAND_FORMATTERS.get(command.name)
    if formatter is not None:
        return formatter(result, args, command)
    formatter = formatter_of(command.name)
    if formatter is not None:
        return formatter(result, args)
    if command.results_key and isinstance(result, dict):
        return records(result.get(command.results_key) or [], command.layout, command.record_label)
    return output.document(result if result is not None else {})
