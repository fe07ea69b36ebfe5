"""Per-command output formats where CAST prints something other than plain YAML."""

from csm.cli import diag_formats, output


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
    for key in ("db_state", "db_free_conn_size", "db_schema_version"):
        if key in master:
            lines.append("        %s: %s" % (key, master[key]))
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


def allocation_query(result, args):
    """num_allocations, then each allocation's key fields (and its history block when ended)."""
    lines = ["---", "num_allocations: %d" % result.get("num_allocations", 0)]
    for allocation in result.get("allocations") or ():
        lines.append("  - allocation_id:    %s" % allocation.get("allocation_id"))
        for key in ("primary_job_id", "secondary_job_id", "begin_time", "state", "num_nodes", "user_name"):
            lines.append("    %s %s" % ((key + ":").ljust(17), output.scalar(allocation.get(key))))
        lines.append("    compute_nodes:")
        lines.extend("     - %s" % node for node in allocation.get("compute_nodes") or ())
        history = allocation.get("history")
        if history:
            lines.append("    history:")
            lines.append("     end_time:     %s" % output.scalar(history.get("end_time")))
            lines.append("     exit_status:  %s" % output.scalar(history.get("exit_status")))
    return "\n".join(lines + ["..."]) + "\n"


def _message(text):
    return lambda result, args: "---\n# %s\n...\n" % text.format(**dict(args, **(result or {})))


#: command name -> function(result, args) -> text
FORMATTERS = {
    "allocation_create": allocation_create,
    "allocation_query": allocation_query,
    "allocation_delete": _message("Allocation ID: {allocation_id} successfully deleted"),
    "allocation_update_state": _message("Allocation ID {allocation_id} was updated to {state} successfully"),
    "allocation_step_begin": _message("Step {step_id} of allocation {allocation_id} began"),
    "allocation_step_end": _message("Step {step_id} of allocation {allocation_id} ended"),
    "infrastructure_health_check": lambda result, args: health_check(result, args.get("verbose_health")),
}


FORMATTERS.update(diag_formats.FORMATTERS)


def render(command, result, args):
    formatter = FORMATTERS.get(command.name)
    if formatter is not None:
        return formatter(result, args)
    if command.results_key and isinstance(result, dict):
        return output.records(result.get(command.results_key) or [])
    return output.document(result if result is not None else {})
