"""Which module defines each csm_* command, so that a command loads its own definition only.

Building the registry of every API costs a command about a third of its imports; a
command needs one entry. ``find`` imports the module that defines the command and
takes it from there. A name missing here is still found (``find`` falls back to the
whole registry); tests/test_cli_index.py checks this table against the registry.
"""

#: module -> the command-line names of the commands it defines
MODULES = {
    "csm.api.commands": (
        "csm_aggregator_rehome", "csm_cluster_query_state", "csm_ctrl_cmd", "csm_infrastructure_health_check",
        "csm_node_attributes_query", "csm_node_attributes_query_details", "csm_node_attributes_query_history",
        "csm_node_attributes_update", "csm_node_delete", "csm_node_query_state_history",
        "csm_node_resources_query", "csm_node_resources_query_all", "csm_ras_event_ack", "csm_ras_event_create",
        "csm_ras_event_query", "csm_ras_event_query_allocation", "csm_ras_msg_type_create",
        "csm_ras_msg_type_delete", "csm_ras_msg_type_query", "csm_ras_msg_type_update",
        "csm_soft_failure_recovery"),
    "csm.api.lifecycle_commands": ("csm_allocation_create", "csm_allocation_delete", "csm_allocation_update_state"),
    "csm.api.wm_commands": (
        "csm_allocation_query", "csm_allocation_query_active_all", "csm_allocation_query_details",
        "csm_allocation_resources_query", "csm_allocation_step_begin", "csm_allocation_step_end",
        "csm_allocation_step_query", "csm_allocation_step_query_active_all", "csm_allocation_step_query_details",
        "csm_allocation_update_history", "csm_node_find_job"),
    "csm.api.bb_commands": (
        "csm_bb_lv_create", "csm_bb_lv_delete", "csm_bb_lv_query", "csm_bb_vg_create", "csm_bb_vg_delete",
        "csm_bb_vg_query"),
    "csm.api.diag_commands": (
        "csm_diag_result_create", "csm_diag_run_begin", "csm_diag_run_end", "csm_diag_run_query",
        "csm_diag_run_query_details"),
    "csm.api.switch_commands": (
        "csm_ib_cable_query", "csm_ib_cable_query_history", "csm_ib_cable_update", "csm_switch_attributes_query",
        "csm_switch_attributes_query_details", "csm_switch_attributes_query_history",
        "csm_switch_attributes_update"),
    "csm.api.cgroup_commands": ("csm_jsrun_cmd",),
}

MODULE_OF = {name: module for module, names in MODULES.items() for name in names}


def defined_in(module, cli_name):
    """The command named ``cli_name`` among ``module``'s globals (alone or in a tuple), else None."""
    from csm.api.registry import Command
    for value in vars(module).values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, Command) and item.cli_name == cli_name:
                return item
    return None


def find(cli_name):
    """The ``Command`` whose command-line tool is ``cli_name``, or None."""
    module = MODULE_OF.get(cli_name)
    if module is not None:
        __import__(module)
        import sys
        command = defined_in(sys.modules[module], cli_name)
        if command is not None:
            return command
    from csm.api.commands import REGISTRY
    return REGISTRY.by_cli.get(cli_name)
