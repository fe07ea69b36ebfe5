"""Packaging for csm: the daemons' twistd plugins, the csm_* commands and the tools."""

import os
import sys

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


#: A csm_* program: sh finds the interpreter (the one that built this, else the one beside the
#: program, else python3 on PATH) and starts it without the site module (-S: about 2 ms of
#: CPU of each start here); Python then puts on sys.path the site-packages beside the program's bin/
#: (and, installed editable, the source tree) and imports the command's module alone; where a
#: module (csm, or a dependency) is not found there, the site module runs after all (docs/differences.rst).
LAUNCHER = r"""#!/bin/sh
''':'
p=%(python)s
[ -x "$p" ] || p="${0%%/*}/python3"
[ -x "$p" ] || p=python3
exec "$p" -S "$0" "$@"
'''
import gc
import posix  # not os, which the command does not need either (csm.client.getenv)
import sys

gc.disable()  # a command lives milliseconds and makes no garbage cycles worth a collection
_program = __file__
while True:  # through symbolic links to where pip put the program
    try:
        _link = posix.readlink(_program)
    except OSError:
        break
    _program = _link if _link.startswith("/") else _program.rpartition("/")[0] + "/" + _link
_bin = _program.rpartition("/")[0] or "."
_prefix = _bin[:-4] if _bin.endswith("/bin") else _bin + "/.."
sys.path.append("%%s/lib/python%%d.%%d/site-packages" %% ((_prefix,) + sys.version_info[:2]))%(source)s


class _SiteAfterAll:
    # the last finder: a module not on the paths above (csm, or a dependency in the system's
    # site-packages or on a .pth path) runs the site module once and is looked for again

    @staticmethod
    def find_spec(name, path=None, target=None):
        sys.meta_path.remove(_SiteAfterAll)
        import site
        site.main()
        for finder in sys.meta_path:
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                return spec
        return None


sys.meta_path.append(_SiteAfterAll)
from csm.cli.main import main
sys.exit(main())
"""


def command_launchers():
    """The csm_* programs, written under build/ for this build (editable: with the source tree)."""
    directory = os.path.join("build", "csm-launchers")
    os.makedirs(directory, exist_ok=True)
    source = ""
    if "editable_wheel" in sys.argv or "develop" in sys.argv:
        source = "\nsys.path.append(%r)" % os.path.dirname(os.path.abspath(__file__))
    text = LAUNCHER % {"python": "'%s'" % os.path.abspath(sys.executable).replace("'", "'\\''"),
                       "source": source}
    paths = []
    for name in CSM_COMMANDS:
        path = os.path.join(directory, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o755)
        paths.append(path)
    return paths


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
    scripts=command_launchers(),
    entry_points={
        "console_scripts": [
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
