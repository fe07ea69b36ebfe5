"""Output of the switch and InfiniBand cable commands in CAST's layout (``csmi/src/inv/cmd``)."""

from csm.api.switch_commands import CABLE_ORDER, SWITCH_ORDER
from csm.cli.cast_records import line, listing, missing, updated

MODULE_ORDER = ("name", "host_system_guid", "discovery_time", "collection_time", "comment", "description",
                "device_name", "device_type", "fw_version", "hw_version", "max_ib_ports", "module_index",
                "number_of_chips", "path", "serial_number", "severity", "status", "type")


def switch_details(result, args):
    switch = result.get("switch") or {}
    modules = result.get("inventory") or []
    lines = ["---", "Total_Records: 1", "Record_1:"]
    lines.extend(line(switch, key, 31, label=key if key.startswith("switch_") else "switch_" + key)
                 for key in SWITCH_ORDER)
    lines.extend(missing(switch, 31))
    lines.append("  inventory_count:                %d" % len(modules))
    if modules:
        lines.append("  inventory:")
        for module in modules:
            fields = [line(module, key, 17, "      ") for key in MODULE_ORDER] + missing(module, 17, "      ")
            lines.append("    - " + fields[0].lstrip())
            lines.extend(fields[1:])
    return "\n".join(lines + ["..."]) + "\n"


FORMATTERS = {
    "switch_attributes_query": listing(SWITCH_ORDER, 24),
    "switch_attributes_query_history": listing(("history_time",) + SWITCH_ORDER, 24),
    "switch_attributes_query_details": switch_details,
    "switch_attributes_update": updated("updated", "switch_names"),
    "ib_cable_query": listing(CABLE_ORDER, 16, first_width=15),
    "ib_cable_query_history": listing(("history_time",) + CABLE_ORDER, 16),
    "ib_cable_update": updated("updated", "serial_numbers"),
}
