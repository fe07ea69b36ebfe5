"""Output of the switch and InfiniBand cable commands in CAST's layout (``csmi/src/inv/cmd``)."""

from csm.api.switch_commands import CABLE_ORDER, SWITCH_ORDER
from csm.cli import output

NO_RESULTS = "---\nTotal_Records: 0\n# No matching records found.\n...\n"
MODULE_ORDER = ("name", "host_system_guid", "discovery_time", "collection_time", "comment", "description",
                "device_name", "device_type", "fw_version", "hw_version", "max_ib_ports", "module_index",
                "number_of_chips", "path", "serial_number", "severity", "status", "type")


def _value(record, key):
    value = record.get(key)
    if key == "has_ufm_agent":
        return "t" if value else "f"
    return "" if value == "" else output.scalar(value)


def _field(record, key, width, pad="  ", label=None):
    return "%s%s %s" % (pad, ((label or key) + ":").ljust(width), _value(record, key))


def _missing(record, width, pad="  "):
    """Beyond CAST: a record UFM no longer reports says since when."""
    return [_field(record, "missing_since", width, pad)] if record.get("missing_since") else []


def _listing(keys, width, first_width=None):
    def render(result, args):
        items = result.get("results") or []
        if not items:
            return NO_RESULTS
        lines = ["---", "Total_Records: %d" % len(items)]
        for number, record in enumerate(items, 1):
            lines.append("RECORD_%d:" % number)
            for index, key in enumerate(keys):
                lines.append(_field(record, key, first_width if index == 0 and first_width else width))
            lines.extend(_missing(record, width))
        return "\n".join(lines + ["..."]) + "\n"
    return render


def switch_details(result, args):
    switch = result.get("switch") or {}
    modules = result.get("inventory") or []
    lines = ["---", "Total_Records: 1", "Record_1:"]
    lines.extend(_field(switch, key, 31, label=key if key.startswith("switch_") else "switch_" + key)
                 for key in SWITCH_ORDER)
    lines.extend(_missing(switch, 31))
    lines.append("  inventory_count:                %d" % len(modules))
    if modules:
        lines.append("  inventory:")
        for module in modules:
            fields = [_field(module, key, 17, "      ") for key in MODULE_ORDER] + _missing(module, 17, "      ")
            lines.append("    - " + fields[0].lstrip())
            lines.extend(fields[1:])
    return "\n".join(lines + ["..."]) + "\n"


def _updated(result, args):
    names = args.get("switch_names") or args.get("serial_numbers") or []
    return "---\n# All %d record(s) successfully updated.\n...\n" % len(names)


FORMATTERS = {
    "switch_attributes_query": _listing(SWITCH_ORDER, 24),
    "switch_attributes_query_history": _listing(("history_time",) + SWITCH_ORDER, 24),
    "switch_attributes_query_details": switch_details,
    "switch_attributes_update": _updated,
    "ib_cable_query": _listing(CABLE_ORDER, 16, first_width=15),
    "ib_cable_query_history": _listing(("history_time",) + CABLE_ORDER, 16),
    "ib_cable_update": _updated,
}
