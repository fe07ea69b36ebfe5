"""The switch and InfiniBand cable commands (CAST's ``csmi/src/inv/cmd``) and the UFM collection APIs."""

from csm.api.registry import LIMIT, OFFSET, Field, api_command

SWITCH_ORDER = ("switch_name", "serial_number", "discovery_time", "collection_time", "comment", "description",
                "fw_version", "gu_id", "has_ufm_agent", "hw_version", "ip", "model", "num_modules",
                "physical_frame_location", "physical_u_location", "ps_id",
                "role", "server_operation_mode", "sm_mode", "state", "sw_version", "system_guid", "system_name",
                "total_alarms", "type", "vendor")
CABLE_ORDER = ("serial_number", "discovery_time", "collection_time", "comment", "guid_s1", "guid_s2", "identifier",
               "length", "name", "part_number", "port_s1", "port_s2", "revision", "severity", "type", "width")


def _order_help(columns):
    return "; ".join("%s %s" % (chr(ord("a") + i), c) for i, c in enumerate(columns)) + " (upper case: descending)"


def _csv(name, letter, help_text):
    return Field(name, "list", flags=("-" + letter, "--" + name), help=help_text)


SWITCH_COMMANDS = (
    api_command("switch_attributes_query", "Query switches (csm_switch).", results_key="results", fields=(
        _csv("roles", "r", "roles: tor,core"),
        _csv("switch_names", "s", "switch names: s1,s2"),
        Field("serial_number", "str", flags=("-S", "--serial_number")),
        Field("state", "str", flags=("-t", "--state")),
        LIMIT, OFFSET,
        Field("order_by", "str", flags=("-O", "--order_by"), help=_order_help(SWITCH_ORDER)))),
    api_command("switch_attributes_query_details", "One switch with its modules (csm_switch_inventory).",
                fields=(Field("switch_name", "str", required=True, flags=("-s", "--switch_name")),)),
    api_command("switch_attributes_query_history", "The history of a switch's attributes.", results_key="results",
                fields=(Field("switch_name", "str", required=True, flags=("-s", "--switch_name")), LIMIT, OFFSET)),
    api_command("switch_attributes_update", "Set the comment or location of switches. #CSM_NULL clears a field.",
                fields=(Field("switch_names", "list", required=True, flags=("-s", "--switch_names")),
                        Field("comment", "str", nullable=True, flags=("-c", "--comment")),
                        Field("physical_frame_location", "str", nullable=True,
                              flags=("-f", "--physical_frame_location")),
                        Field("physical_u_location", "str", nullable=True, flags=("-u", "--physical_u_location"))),
                cli_partial=("update", "switch_names")),
    api_command("ib_cable_query", "Query InfiniBand cables (csm_ib_cable).", results_key="results", fields=(
        _csv("comments", "c", "comments"),
        _csv("guids", "g", "guids of either end"),
        _csv("identifiers", "i", "e.g. QSFP+"),
        _csv("lengths", "L", "e.g. 3 m"),
        _csv("names", "n", "UFM link names"),
        _csv("part_numbers", "p", "part numbers"),
        _csv("ports", "P", "ports of either end"),
        _csv("revisions", "r", "revisions"),
        _csv("serial_numbers", "s", "serial numbers"),
        _csv("severities", "S", "e.g. Info,Warning"),
        _csv("types", "t", "cable technology"),
        _csv("widths", "w", "e.g. IB_4x"),
        LIMIT, OFFSET,
        Field("order_by", "str", flags=("-O", "--order_by"), help=_order_help(CABLE_ORDER)))),
    api_command("ib_cable_query_history", "The history of a cable.", results_key="results",
                fields=(Field("serial_number", "str", required=True, flags=("-s", "--serial_number")), LIMIT, OFFSET)),
    api_command("ib_cable_update", "Set the comment of cables. #CSM_NULL clears it.",
                fields=(Field("serial_numbers", "list", required=True, flags=("-s", "--serial_numbers")),
                        Field("comment", "str", required=True, nullable=True, flags=("-c", "--comment"))),
                cli_partial=("update", "serial_numbers")),
    api_command("switch_inventory_collection", "Store UFM's switches (standalone_ib_and_switch_collection).",
                cli="", timeout=120.0, open_input=True, fields=()),
    api_command("switch_children_inventory_collection", "Store UFM's switch modules.",
                cli="", timeout=120.0, open_input=True, fields=()),
    api_command("ib_cable_inventory_collection", "Store UFM's InfiniBand cables.",
                cli="", timeout=120.0, open_input=True, fields=()),
)
