"""Packaging for csm: the daemons' twistd plugins, the csm_* commands and the tools."""

import os

from setuptools import find_packages, setup

# One console script per API command.  tests/test_cli.py checks this list against the
# command registry, so a command added there and forgotten here fails the suite.
CSM_COMMANDS = [
    "csm_infrastructure_health_check",
    "csm_ctrl_cmd",
    "csm_aggregator_rehome",
    "csm_node_attributes_query",
    "csm_node_attributes_query_details",
    "csm_node_attributes_query_history",
    "csm_node_query_state_history",
    "csm_node_attributes_update",
    "csm_node_delete",
    "csm_cluster_query_state",
    "csm_node_resources_query",
    "csm_node_resources_query_all",
    "csm_soft_failure_recovery",
    "csm_ras_event_create",
    "csm_ras_event_query",
    "csm_ras_event_query_allocation",
    "csm_ras_event_ack",
    "csm_ras_msg_type_create",
    "csm_ras_msg_type_update",
    "csm_ras_msg_type_delete",
    "csm_ras_msg_type_query",
    "csm_allocation_create",
    "csm_allocation_delete",
    "csm_allocation_update_state",
    "csm_allocation_query",
    "csm_allocation_query_active_all",
    "csm_allocation_query_details",
    "csm_allocation_resources_query",
    "csm_allocation_update_history",
    "csm_node_find_job",
    "csm_allocation_step_begin",
    "csm_allocation_step_end",
    "csm_allocation_step_query",
    "csm_allocation_step_query_active_all",
    "csm_allocation_step_query_details",
    "csm_diag_run_begin",
    "csm_diag_run_end",
    "csm_diag_result_create",
    "csm_diag_run_query",
    "csm_diag_run_query_details",
    "csm_switch_attributes_query",
    "csm_switch_attributes_query_details",
    "csm_switch_attributes_query_history",
    "csm_switch_attributes_update",
    "csm_ib_cable_query",
    "csm_ib_cable_query_history",
    "csm_ib_cable_update",
    "csm_jsrun_cmd",
    "csm_bb_vg_create",
    "csm_bb_vg_delete",
    "csm_bb_vg_query",
    "csm_bb_lv_create",
    "csm_bb_lv_delete",
    "csm_bb_lv_query",
]


def conf_files():
    """conf/ as data files under <prefix>/share/etc (CAST's /opt/ibm/csm/share/etc; csm/conf_files.py
    finds them there): default configs, RAS types, sample prologs, systemd units."""
    found = []
    for directory, _dirs, files in sorted(os.walk("conf")):
        files = [os.path.join(directory, name) for name in sorted(files) if not name.endswith((".pyc", "~"))]
        if files:
            found.append((os.path.normpath(os.path.join("share", "etc", os.path.relpath(directory, "conf"))), files))
    return found


setup(
    name="csm",
    version="1.8.5",
    description="Cluster System Management (IBM CAST's CSM) daemons on Twisted",
    packages=find_packages(include=["csm", "csm.*"]) + ["twisted.plugins"],
    package_data={"csm.db": ["schema/*.sql"], "twisted": ["plugins/csm_plugins.py"]},
    data_files=conf_files(),
    python_requires=">=3.9",
    install_requires=[
        "twisted[tls,conch]>=22.10",
        "service-identity",
        "pyopenssl",
        "txpostgres",
        "psycopg2",
        "attrs",
        "nvidia-ml-py",
        "prometheus-client",
        "ClusterShell",  # host ranges (c[01-04]) in the csm_* commands
        "treq",
        "sdnotify",  # readiness to systemd (Type=notify units in conf/systemd)
    ],
    extras_require={"test": ["hypothesis"]},
    entry_points={
        "console_scripts": [
            "%s = csm.cli.main:main" % name for name in CSM_COMMANDS
        ] + [
            "csm-demo = csm.demo:main",
            "csm-sim = csm.sim:main",
            "csm-db = csm.db.admin:main",
            "csm-diag = csm.diag.runner:main",
            "csm-certs = csm.certs:main",
            "csm-pam-login = csm.node.pam:main",
            "standalone_ib_and_switch_collection = csm.ufm_collection:main",
        ],
    },
)
