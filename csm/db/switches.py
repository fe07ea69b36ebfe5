"""Writing UFM collections: switches, their modules and InfiniBand cables (schema 19.2 functions)."""

import json

from twisted.internet import defer

#: the columns a collection writes, per kind: (stored function, key column, columns)
KINDS = {
    "switches": ("fn_csm_switch_inventory_collection", "switch_name", (
        "switch_name", "serial_number", "description", "fw_version", "gu_id", "has_ufm_agent", "hw_version", "ip",
        "model", "num_modules", "ps_id", "role", "server_operation_mode", "sm_mode", "state", "sw_version",
        "system_guid", "system_name", "total_alarms", "type", "vendor")),
    "modules": ("fn_csm_switch_children_inventory_collection", "name", (
        "name", "host_system_guid", "description", "device_name", "device_type", "hw_version", "max_ib_ports",
        "module_index", "number_of_chips", "path", "serial_number", "severity", "status", "type", "fw_version")),
    "cables": ("fn_csm_ib_cable_inventory_collection", "serial_number", (
        "serial_number", "guid_s1", "guid_s2", "identifier", "length", "name", "part_number", "port_s1", "port_s2",
        "revision", "severity", "type", "width")),
}
ORDER = ("switches", "modules", "cables")


@defer.inlineCallbacks
def store(cursor, collections):
    """``{kind: [rows]}`` in one transaction (switches before their modules); ``{kind: counts}``."""
    summary = {}
    for kind in ORDER:
        if kind not in collections:
            continue
        function, _key, columns = KINDS[kind]
        rows = [{column: row.get(column) for column in columns} for row in collections[kind]]
        yield cursor.execute("SELECT %s(%%s::jsonb)" % function, (json.dumps(rows),))
        summary[kind] = cursor.fetchone()[0]
    return summary
