"""Per-command output formats where CAST prints something other than plain YAML."""

from csm.cli import output


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


#: command name -> function(result, args) -> text
FORMATTERS = {
    "infrastructure_health_check": lambda result, args: health_check(result, args.get("verbose_health")),
}


def render(command, result, args):
    formatter = FORMATTERS.get(command.name)
    if formatter is not None:
        return formatter(result, args)
    if command.results_key and isinstance(result, dict):
        return output.records(result.get(command.results_key) or [])
    return output.document(result if result is not None else {})
