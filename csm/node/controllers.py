"""CAST's ``csmi_cgroup_controller_t``: the controllers a step cgroup may name.

On their own: the command definitions (every csm_* command reads them) need the names,
not the cgroup code behind them."""

CONTROLLERS = ("cpuset", "memory", "devices", "cpuacct")
