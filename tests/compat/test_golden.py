"""Golden output of every CAST command, in the layout of CAST 1.8.5's tools (csmi/src/*/cmd/*.c).

Each case is a reply as the daemons send it, the command's arguments, and the lines
CAST's tool prints for it: field order, the value column, quoting, y/n letters,
Record_N / RECORD_N headers. Then the lines every command prints on failure, with no
results and for a partial update, and the flags CAST's scripts use.
"""

import io
import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.api.commands import REGISTRY
from csm.cli import formats
from csm.cli.main import build_parser, expand_ranges, run
from csm.errors import CSMError, ErrorCode, NodeError


def cols(indent, column, fields, first=None):
    """Lines ``<indent><key>:`` with values from ``column`` on, as CAST's printf("  key:   %s");
    ``fields`` is ``key=value|key=value`` (``key`` alone: empty); ``first`` starts the first line (``- ``)."""
    lines = []
    for number, item in enumerate(fields.split("|")):
        key, _, value = item.partition("=")
        pad = first if first is not None and number == 0 else indent
        lines.append(pad + (key + ":").ljust(column - len(pad)) + value)
    return lines


def record(column, fields, label="Record"):
    """A whole one-record reply: ``Total_Records: 1``, ``<label>_1:`` and the fields."""
    return ["---", "Total_Records: 1", "%s_1:" % label] + cols("  ", column, fields) + ["..."]


NODE = {"node_name": "c01", "collection_time": "2026-01-01 00:00:00", "update_time": "2026-01-01 00:00:01",
        "comment": "rack 3", "discovered_cores": 40, "state": "IN_SERVICE", "type": "compute", "ready": True}
#: csm_node's fields this reply leaves empty, in CAST's order.
NODE_EMPTY = ("discovered_dimms=0|discovered_gpus=0|discovered_hcas=0|discovered_sockets=0|discovered_ssds=0|"
              "feature_1|feature_2|feature_3|feature_4|hard_power_cap=0|installed_memory=0|installed_swap=0|"
              "kernel_release|"
              "kernel_version|machine_model|os_image_name|os_image_uuid|physical_frame_location|physical_u_location|"
              "primary_agg|secondary_agg|serial_number")
NODE_FIELDS = ('node_name=c01|collection_time=2026-01-01 00:00:00|update_time=2026-01-01 00:00:01|comment="rack 3"|'
               "discovered_cores=40|" + NODE_EMPTY + "|state=IN_SERVICE|type=compute")
CLUSTER = {"results": [
    {"node_name": "c01", "collection_time": "2026-01-01 00:00:00.000001", "update_time": "2026-01-01 00:00:00.000002",
     "state": "IN_SERVICE", "type": "compute", "num_allocs": 2, "allocs": [7, 8], "states": ["running", "staging-in"],
     "shared": [False, True]},
    {"node_name": "c02", "collection_time": "2026-01-01 00:00:00.000003", "update_time": "2026-01-01 00:00:00.000004",
     "state": "DISCOVERED", "type": "compute", "num_allocs": 0, "allocs": [], "states": [], "shared": []}]}
FIND = {"results": [{"node_name": "c01", "allocation_id": 7, "primary_job_id": 1, "user_name": "u", "num_nodes": 1,
                     "begin_time": "2026-01-01 00:00:00.000001", "end_time": None}]}
HISTORY = {"node_name": "c01", "results": [
    {"history_time": "2026-01-01 00:00:00.000001", "state": "IN_SERVICE", "alteration": "CSM API",
     "ras_rec_id": None, "ras_msg_id": None},
    {"history_time": "2026-01-01 00:00:00.000002", "state": "SOFT_FAILURE", "alteration": "RAS EVENT",
     "ras_rec_id": 5, "ras_msg_id": "csm.status.down"}]}
STEP = "allocation_id=7|step_id=1"
STEP_EMPTY = "executable|working_directory"
STEP_REST = "environment_variable|num_nodes=0|num_processors=0|num_gpus=0|projected_memory=0|num_tasks=0|user_flags"
#: An allocation's fields at column 32 (csm_allocation_query, _details), after its nodes.
ALLOCATION_TAIL = ("ssd_file_system_name|launch_node_name={launch}|user_flags|system_flags|smt_mode=0|ssd_min=0|"
                   "ssd_max=0|num_processors=0|num_gpus=0|projected_memory=0|state=complete|type|job_type|user_name|"
                   "user_id=0|user_group_id=0|user_script|begin_time|account|comment={comment}|job_name|"
                   "job_submit_time|queue|requeue|time_limit=0|wc_key|isolated_cores=0")
ALLOCATION_HISTORY = ["history:"] + cols("   ", 28, "end_time=e|exit_status=0|archive_history_time")

GOLDEN = [
    ("infrastructure_health_check",
     {"master": {"node": "m", "version": "1.8.5"}, "status": "ok", "utilities": [],
      "aggregators": [{"bounced": 1, "node": "a1", "responding": False, "version": "n/a"}],
      "local_daemon": {"node": "m", "role": "master", "version": "1.8.5"}}, {},
     ["Starting. Contacting local daemon...",
      "Connected. Checking infrastructure... (this may take a moment. Please be patient...)", "",
      "###### RESPONSE FROM THE LOCAL DAEMON #######", "MASTER: m (bounced=0; version=1.8.5)", "",
      "Aggregators:1", "  Unresponsive Aggregators: 1", "    AGGREGATOR: a1 (bounced=1; version=n/a)", "",
      "Utility Nodes:0", "", "  Unresponsive Utility Nodes: 0", "",
      "Local_daemon: MASTER: m (bounced=0; version=1.8.5)", "        Status: ok",
      "#############################################", "", "Finished. Cleaning up...", "Test complete: rc=0"]),
    ("ctrl_cmd", {"agg_reset": "ok"}, {},
     ["Started client ", "", "", "### RESPONSE FROM THE LOCAL DAEMON ###", "agg_reset:               ok",
      "#######################################"]),
    ("node_attributes_query", {"results": [NODE]}, {}, record(27, NODE_FIELDS + "|ready=y")),
    ("node_attributes_query_details",
     {"node": NODE, "dimms": [], "gpus": [{"gpu_id": 0, "device_name": "H200"}], "hcas": [], "processors": [],
      "ssds": []}, {},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 32, "node_name=c01|" + "|".join("node_" + f for f in NODE_FIELDS.split("|")[1:]) + "|dimms_count=0")
     + ["  dimms:"] + cols("  ", 32, "gpus_count=1") + ["  gpus:"]
     + cols("      ", 29, "gpu_id=0|device_name=H200|hbm_memory=0|inforom_image_version|pci_bus_id|serial_number|"
                          "uuid|vbios", first="    - ")
     + cols("  ", 32, "hcas_count=0") + ["  hcas:"] + cols("  ", 32, "processors_count=0") + ["  processors:"]
     + cols("  ", 32, "ssds_count=0") + ["  ssds:", "..."]),
    ("node_attributes_query_history",
     {"results": [dict(NODE, history_time="2026-01-02 00:00:00")]}, {},
     record(27, "history_time=2026-01-02 00:00:00|" + NODE_FIELDS)),
    ("node_query_state_history", HISTORY, {},
     ["---", "node_name: c01",
      "#         history_time        |      state     |      alteration      | RAS_rec_id, RAS_msg_id ",
      "# ----------------------------+----------------+----------------------+------------------------",
      "#  2026-01-01 00:00:00.000001 | IN_SERVICE     | CSM API              | ",
      "#  2026-01-01 00:00:00.000002 | SOFT_FAILURE   | RAS EVENT            | 5, csm.status.down", "..."]),
    ("node_query_state_history", {"node_name": "c01", "results": HISTORY["results"][1:]}, {"yaml": True},
     record(16, "history_time=2026-01-01 00:00:00.000002|node_name=c01|state=SOFT_FAILURE|alteration=RAS EVENT|"
                "RAS_rec_id=5|RAS_msg_id=csm.status.down")),
    ("node_attributes_update", {}, {"node_names": ["c01", "c02"]},
     ["---", "# All 2 record(s) successfully updated.", "..."]),
    ("node_delete", {}, {"node_names": ["c01"]}, ["---", "# All 1 record(s) successfully deleted.", "..."]),
    ("cluster_query_state", CLUSTER, {},
     ["---",
      "# node_name | collection_time            | update_time                | state      | type    | "
      "num_allocs - allocs - states - shared",
      "#     +                            +                            +            +         +  ",
      "# c01 | 2026-01-01 00:00:00.000001 | 2026-01-01 00:00:00.000002 | IN_SERVICE | compute |  2 - 7,8 - "
      "running,staging-in - f,t",
      "# c02 | 2026-01-01 00:00:00.000003 | 2026-01-01 00:00:00.000004 | DISCOVERED | compute |  0", "..."]),
    ("cluster_query_state", {"results": CLUSTER["results"][:1]}, {"yaml": True},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 19, "node_name=c01|collection_time=2026-01-01 00:00:00.000001|"
                      "update_time=2026-01-01 00:00:00.000002|state=IN_SERVICE|type=compute|num_allocs=2")
     + ["  allocs:", "    - alloc_id: 7", "    - alloc_id: 8", "  states:", "    - state: running",
        "    - state: staging-in", "  shared:", "    - shared: f", "    - shared: t", "..."]),
    ("node_resources_query",
     {"results": [{"node_name": "c01", "node_ready": False,
                   "ssds": [{"serial_number": "s1", "update_time": "u", "wear_lifespan_used": 2}]}]}, {},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 27, "node_name=c01|node_discovered_cores=0|node_discovered_gpus=0|node_discovered_sockets=0|"
                      "node_installed_memory=0|node_update_time|node_ready=n|node_state|node_type|vg_total_size=0|"
                      "vg_available_size=0|vg_update_time|ssds_count=1")
     + ["  ssds:"] + cols("      ", 26, "ssd_serial_number=s1|update_time=u|wear_lifespan_used=2.000000",
                          first="    - ") + ["..."]),
    ("node_resources_query_all", {"results": [{"node_name": "c02", "node_ready": True, "node_state": "IN_SERVICE",
                                               "ssds": []}]}, {},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 27, "node_name=c02|node_discovered_cores=0|node_discovered_gpus=0|node_discovered_sockets=0|"
                      "node_installed_memory=0|node_update_time|node_ready=y|node_state=IN_SERVICE|node_type|"
                      "vg_total_size=0|vg_available_size=0|vg_update_time|ssds_count=0") + ["  ssds:", "..."]),
    ("soft_failure_recovery", {"recovered": ["c01"], "error_count": 0, "node_errors": []}, {},
     ["---", "# Soft Failure cleaned up.", "..."]),
    ("soft_failure_recovery",
     {"recovered": [], "error_count": 1, "node_errors": [{"source": "c02", "errcode": 55, "errmsg": "fan"}]}, {},
     ["---", "# Soft Failure cleaned up.", "# 1 Nodes Failed:", "# c02[55]: fan", "..."]),
    ("soft_failure_recovery", {"recovered": [], "error_count": 0, "none_in_soft_failure": True}, {},
     ["# No nodes currently in soft failure."]),
    ("ras_event_create", {"stored": True}, {}, []),
    ("ras_event_query", {"results": [{"rec_id": 1, "msg_id": "a.b.c", "severity": "INFO", "count": 1}]}, {},
     record(21, "rec_id=1|msg_id=a.b.c|severity=INFO|time_stamp|master_time_stamp|location_name|count=1|"
                "control_action|message|raw_data|kvcsv", "RECORD")),
    ("ras_event_query_allocation", {"events": [{"rec_id": 1, "msg_id": "a.b.c", "msg_id_seq": 2}]}, {},
     record(24, "rec_id=1|msg_id=a.b.c|msg_id_seq=2|time_stamp|count=0|message|raw_data|archive_history_time")),
    ("ras_msg_type_create", {"insert_successful": True, "msg_id": "a.b.c"}, {},
     ["csm_ras_msg_type_create has completed successfully!", "    insert_successful: y",
      "    msg_id:            a.b.c"]),
    ("ras_msg_type_update", {"update_successful": False, "msg_id": "a.b.c"}, {},
     ["csm_ras_msg_type_update has completed successfully!", "    update_successful: n",
      "    msg_id:            a.b.c"]),
    ("ras_msg_type_delete", {"deleted_msg_ids": ["a.b.c", "d.e.f"]}, {},
     ["csm_ras_msg_type_delete has completed successfully!", "  The following msg ids have been deleted:",
      "    a.b.c", "    d.e.f"]),
    ("ras_msg_type_query",
     {"results": [{"msg_id": "a.b.c", "enabled": True, "visible_to_users": False, "severity": "INFO"}]}, {},
     record(20, "msg_id=a.b.c|control_action|description|enabled=y|message|set_state|severity=INFO|"
                "threshold_count=0|threshold_period=0|visible_to_users=n", "RECORD")),
    ("allocation_create",
     {"allocation_id": 7, "num_nodes": 1, "compute_nodes": ["c01"], "user_name": "u", "user_id": 1,
      "state": "running", "type": "user-managed", "job_submit_time": "t"}, {},
     ["---", "allocation_id: 7", "num_nodes: 1", "- compute_nodes: c01", "user_name: u", "user_id: 1",
      "state: running", "type: user-managed", "job_submit_time: t", "..."]),
    ("allocation_delete", {}, {"allocation_id": 7}, ["---", "# Allocation ID: 7 successfully deleted", "..."]),
    ("allocation_update_state", {}, {"allocation_id": 7, "new_state": "staging-out"},
     ["Allocation ID 7 was updated to staging-out successfully"]),
    ("allocation_query",
     {"allocations": [{"allocation_id": 7, "primary_job_id": 1, "secondary_job_id": 0, "num_nodes": 1,
                       "compute_nodes": ["c01"], "launch_node_name": "util01", "state": "complete",
                       "comment": "test_comment", "history": {"end_time": "e", "exit_status": 0}}]}, {},
     ["---"] + cols("", 32, "allocation_id=7|primary_job_id=1|secondary_job_id=0|num_nodes=1")
     + ["compute_nodes:", " - c01"]
     + cols("", 32, ALLOCATION_TAIL.format(launch="util01", comment="test_comment")) + ALLOCATION_HISTORY + ["..."]),
    ("allocation_query",
     {"allocations": [{"allocation_id": 7, "primary_job_id": 1, "secondary_job_id": 0, "begin_time": "b",
                       "state": "complete", "history": {"end_time": "e", "exit_status": 0}},
                      {"allocation_id": 8, "primary_job_id": 1, "secondary_job_id": 0, "begin_time": "b",
                       "state": "running", "history": None}]}, {},
     ["---", "num_allocations: 2", "allocations:"]
     + cols("    ", 22, "allocation_id=7|primary_job_id=1|secondary_job_id=0", first="  - ")
     + cols("    ", 21, "begin_time=b|state=complete") + ["    history:"]
     + cols("     ", 19, "end_time=e|exit_status=0")
     + cols("    ", 22, "allocation_id=8|primary_job_id=1|secondary_job_id=0", first="  - ")
     + cols("    ", 21, "begin_time=b|state=running") + ["..."]),
    ("allocation_query_active_all",
     {"allocations": [{"allocation_id": 7, "primary_job_id": 1, "shared": False, "compute_nodes": ["c01"]}]},
     {"fields": ["allocation_id", "shared", "compute_nodes"]},
     ["---", "num_allocations: 1", "allocations:", "  - allocation_id: 7", "    shared: f", "    compute_nodes: ",
      "      - c01", "..."]),
    ("allocation_query_active_all", {"allocations": [{"allocation_id": 7, "primary_job_id": 1, "state": "running",
                                                      "begin_time": "b", "user_name": "u", "num_nodes": 1,
                                                      "launch_node_name": "c01", "compute_nodes": ["c01"]}]}, {},
     ["---", "num_allocations: 1", "allocations:", "  - allocation_id: 7", "    primary_job_id: 1",
      "    begin_time: b", "    state: running", "    user_name: u", "    num_nodes: 1", "    launch_node_name: c01",
      "..."]),
    ("allocation_query_active_all", {"allocations": [{"allocation_id": 7, "shared": True}]}, {"fields": ["%"]},
     ["---", "num_allocations: 1", "allocations:", "  - allocation_id: 7", "    primary_job_id: 0",
      "    secondary_job_id: 0", "    ssd_file_system_name: ", "    launch_node_name: ", "    isolated_cores: 0",
      "    user_flags: ", "    system_flags: ", "    ssd_min: 0", "    ssd_max: 0", "    num_nodes: 0",
      "    num_processors: 0", "    num_gpus: 0", "    projected_memory: 0", "    state: ", "    type: ",
      "    job_type: ", "    user_name: ", "    user_id: 0", "    user_group_id: 0", "    user_group_name: ",
      "    user_script: ", "    begin_time: ", "    account: ", "    comment: ", "    job_name: ",
      "    job_submit_time: ", "    queue: ", "    requeue: ", "    time_limit: 0", "    wc_key: ", "    shared: t",
      "    compute_nodes: ", "..."]),
    ("allocation_query_details",
     {"allocation": {"allocation_id": 7, "compute_nodes": ["c01"], "state": "complete",
                     "history": {"end_time": "e", "exit_status": 0}},
      "node_accounting": [{"node_name": "c01", "ib_rx": 1}],
      "state_transitions": [{"history_time": "t", "state": "running"}],
      "steps": [{"step_id": 1, "end_time": "e", "compute_nodes": ["c01"]}]}, {},
     ["---"] + cols("", 32, "allocation_id=7|primary_job_id=0|secondary_job_id=0|num_nodes=0")
     + ["compute_nodes:", "  c01:"]
     + cols("   ", 32, "ib_rx=1|ib_tx=0|gpfs_read=0|gpfs_write=0|energy_consumed=0|power_cap=0|"
                       "power_shifting_ratio=0|power_cap_hit=0|gpu_energy=0|gpu_usage=0|cpu_usage=0|memory_usage_max=0")
     + cols("", 32, "num_transitions=1") + ["state_transitions:"]
     + cols("    ", 29, "history_time=t|state=running", first="  - ")
     + cols("", 32, ALLOCATION_TAIL.format(launch="", comment="")) + ALLOCATION_HISTORY
     + ["num_steps:      1", "steps:", " - step_id:         1", "   end_time:        e", "   num_nodes:       1",
        "   compute_nodes:", "    - c01", "..."]),
    ("allocation_resources_query", {"results": [{"node_name": "c01", "ready": True}]}, {},
     record(14, "node_name=c01|ready=y")),
    ("allocation_update_history", {}, {"allocation_id": 7}, ["---", "# Successfully updated allocation 7", "..."]),
    ("node_find_job", FIND, {},
     ["---",
      "# node_name | allocation_id | primary_job_id | user_name | num_nodes | begin_time                 | "
      "end_time                  ",
      "#           +               +                +           +           +                            + "
      "                          ",
      "# c01       | 7             | 1              | u         | 1         | 2026-01-01 00:00:00.000001 | "
      "                          ", "..."]),
    ("node_find_job", FIND, {"yaml": True},
     record(18, "node_name=c01|allocation_id=7|primary_job_id=1|user_name=u|num_nodes=1|"
                "begin_time=2026-01-01 00:00:00.000001|end_time", "RECORD")),
    ("allocation_step_begin", {}, {}, []),
    ("allocation_step_end", {}, {}, []),
    ("allocation_step_query",
     {"steps": [{"allocation_id": 7, "step_id": 1, "history": {"end_time": "e", "total_s_time": 1.5}}]}, {},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 24, "|".join((STEP, "begin_time|status", STEP_EMPTY, "argument", STEP_REST))) + ["  history:"]
     + cols("    ", 26, "archive_history_time|cpu_stats|end_time=e|error_message|exit_status=0|gpu_stats|io_stats|"
                        "max_memory=0|memory_stats|omp_thread_limit|total_s_time=1.500000|total_u_time=0.000000")
     + ["..."]),
    ("allocation_step_query_active_all", {"steps": [{"allocation_id": 7, "step_id": 2, "status": "running"}]}, {},
     record(24, "|".join(("allocation_id=7|step_id=2|begin_time|status=running", STEP_EMPTY, "argument",
                          STEP_REST)))),
    ("allocation_step_query_details",
     {"steps": [{"allocation_id": 7, "step_id": 1, "compute_nodes": ["c01"], "history": None}]}, {},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 24, "|".join((STEP, "argument|begin_time|status", STEP_EMPTY, STEP_REST)))
     + ["  compute_nodes:", "    - c01", "..."]),
]


T0 = "2026-01-01 00:00:00.000001"
T1 = "2026-01-01 00:00:00.000002"
DIAG_RUN = {"run_id": 5, "allocation_id": 7, "begin_time": T0, "end_time": None, "history_time": None,
            "cmd_line": "hcdiag -t chk-cpu", "inserted_ras": False, "log_dir": "/var/log/diag/5", "diag_status": "RUNNING"}
DIAG_RESULT = {"history_time": T1, "run_id": 5, "test_name": "chk-cpu", "node_name": "c01", "serial_number": "SN01",
               "begin_time": T0, "end_time": T1, "status": "PASS", "log_file": "/var/log/diag/5/c01.log"}
SWITCH = {"switch_name": "switch_001", "serial_number": "MT001", "discovery_time": T0, "collection_time": T1,
          "comment": "Test Comment", "has_ufm_agent": True, "num_modules": 1, "total_alarms": 0, "state": "active"}
SWITCH_REST = ("description|fw_version|gu_id|has_ufm_agent=t|hw_version|ip|model|num_modules=1|"
               "physical_frame_location|physical_u_location|ps_id|role|server_operation_mode|sm_mode|state=active|"
               "sw_version|system_guid|system_name|total_alarms=0|type|vendor")
MODULE = {"name": "PS1", "host_system_guid": "0x1", "serial_number": "MT002", "status": "OK"}
CABLE = {"serial_number": "ib_001", "discovery_time": T0, "collection_time": T1, "comment": "Test Comment",
         "guid_s1": "0x1", "guid_s2": "0x2", "length": "3 m", "port_s1": "1", "port_s2": "2", "severity": "Info"}
CABLE_REST = ("discovery_time=%s|collection_time=%s|comment=Test Comment|guid_s1=0x1|guid_s2=0x2|identifier|"
              "length=3 m|name|part_number|port_s1=1|port_s2=2|revision|severity=Info|type|width" % (T0, T1))
#: The diagnostics, switch and InfiniBand cable commands (csmi/src/diag/cmd, csmi/src/inv/cmd): what
#: the hcdiag, switch_inventory and ib_inventory buckets read of them, in the columns of CAST's printf.
GOLDEN_INVENTORY = [
    ("diag_run_begin", {"run_id": 5}, {"run_id": 5}, ["---", "# csm_diag_run_begin has completed successfully!", "..."]),
    ("diag_run_end", {}, {"run_id": 5, "status": "COMPLETED"},
     ["---", "# csm_diag_run_end has completed successfully!", "..."]),
    ("diag_result_create", {}, {"run_id": 5}, ["csm_diag_result_create has completed successfully!"]),
    ("diag_run_query", {"runs": [DIAG_RUN]}, {"run_ids": [5]},
     record(17, "run_id=5|allocation_id=7|begin_time=%s|cmd_line=hcdiag -t chk-cpu|end_time|history_time|"
                "inserted_ras=f|log_dir=/var/log/diag/5|status=RUNNING" % T0, "RECORD")),
    ("diag_run_query", {"runs": []}, {"run_ids": [6]}, ["---", "Total_Records: 0", "# No matching records found.", "..."]),
    ("diag_run_query_details", {"run_data": dict(DIAG_RUN, history_time=T1, end_time=T1, inserted_ras=True,
                                                 diag_status="COMPLETED"), "details": [DIAG_RESULT]}, {"run_id": 5},
     ["---", "runData:"]
     + [text + " " for text in cols("  ", 20, "history_time=%s|run_id=5|allocation_id=7|begin_time=%s|end_time=%s|"
                                    "diag_status=COMPLETED|inserted_ras=t|log_dir=/var/log/diag/5|"
                                    "cmd_line=hcdiag -t chk-cpu" % (T1, T0, T1))]
     + ["Total_Result_Records: 1", "Result_Record_1:"]
     + cols("  ", 20, "history_time=%s|run_id=5|test_name=chk-cpu|node_name=c01|serial_number=SN01|begin_time=%s|"
                      "end_time=%s|status=PASS|log_file=/var/log/diag/5/c01.log" % (T1, T0, T1)) + ["..."]),
    ("switch_attributes_query", {"results": [SWITCH]}, {"switch_names": ["switch_001"]},
     record(27, "switch_name=switch_001|serial_number=MT001|discovery_time=%s|collection_time=%s|comment=Test Comment|"
                % (T0, T1) + SWITCH_REST, "RECORD")),
    ("switch_attributes_query_history", {"results": [dict(SWITCH, history_time=T1, comment="my comment")]},
     {"switch_names": ["switch_001"]},
     record(27, "history_time=%s|switch_name=switch_001|serial_number=MT001|discovery_time=%s|collection_time=%s|"
                "comment=my comment|" % (T1, T0, T1) + SWITCH_REST, "RECORD")),
    ("switch_attributes_query_details", {"switch": SWITCH, "inventory": [MODULE]}, {"switch_name": "switch_001"},
     ["---", "Total_Records: 1", "Record_1:"]
     + cols("  ", 34, "switch_name=switch_001|switch_serial_number=MT001|switch_discovery_time=%s|"
                      "switch_collection_time=%s|switch_comment=Test Comment|" % (T0, T1)
            + "|".join("switch_" + item for item in SWITCH_REST.split("|")))
     + ["  inventory_count:                1", "  inventory:"]
     + cols("      ", 24, "name=PS1|host_system_guid=0x1|discovery_time|collection_time|comment|description|"
                          "device_name|device_type|fw_version|hw_version|max_ib_ports|module_index|number_of_chips|"
                          "path|serial_number=MT002|severity|status=OK|type", first="    - ")
     + ["..."]),
    ("switch_attributes_update", {}, {"switch_names": ["switch_001"], "comment": "Test Comment"},
     ["---", "# All 1 record(s) successfully updated.", "..."]),
    ("ib_cable_query", {"results": [CABLE]}, {"serial_numbers": ["ib_001"]},
     ["---", "Total_Records: 1", "RECORD_1:", "  serial_number:  ib_001"] + cols("  ", 19, CABLE_REST) + ["..."]),
    ("ib_cable_query_history", {"results": [dict(CABLE, history_time=T1)]}, {"serial_numbers": ["ib_001"]},
     record(19, "history_time=%s|serial_number=ib_001|" % T1 + CABLE_REST, "RECORD")),
    ("ib_cable_update", {}, {"serial_numbers": ["ib_001", "ib_002"], "comment": "Test Comment"},
     ["---", "# All 2 record(s) successfully updated.", "..."]),
]


class GoldenOutputTests(SynchronousTestCase):
    def test_every_cast_command_has_a_golden(self):
        self.assertEqual(len({name for name, _, _, _ in GOLDEN}), 33)
        self.assertEqual(len({name for name, _, _, _ in GOLDEN_INVENTORY}), 12)

    def test_inventory_goldens(self):
        for name, result, args, lines in GOLDEN_INVENTORY:
            text = formats.render(REGISTRY.get(name), result, args)
            self.assertEqual(text.splitlines(), lines, name)
            self.assertTrue(text.endswith("\n"), name)

    def test_goldens(self):
        for name, result, args, lines in GOLDEN:
            text = formats.render(REGISTRY.get(name), result, args)
            self.assertEqual(text.splitlines(), lines, name)
            self.assertTrue(text == "" or text.endswith("\n"), name)


class FailureLayoutTests(SynchronousTestCase):
    def test_more_than_one_step(self):
        """A step id that began twice: CAST's tool names the fault of its database (exit CSMERR_GENERIC)."""
        command = REGISTRY.get("allocation_step_query_details")
        self.assertEqual(command.cli_one_record, ("step_id", "step"))
        self.assertEqual(formats.more_than_one(command, {"steps": [{}, {}]}).splitlines(),
                         ["---", "Total_Records: 2",
                          "# Error: There should only be one matching step record. Verify the database. "])

    def test_failure_lines(self):
        error = CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation 9 not found")
        expected = {
            "node_attributes_query": "csm_node_attributes_query FAILED: errcode: 50 errmsg: allocation 9 not found",
            "allocation_create": "csm_allocation_create FAILED: returned: 50, errcode: 50 errmsg: "
                                 "allocation 9 not found",
            "allocation_delete": "# csm_allocation_delete FAILED: returned: 50, errcode: 50 errmsg: "
                                 "allocation 9 not found",
            "allocation_update_history": "---\n# FAILED: errcode: 50 errmsg: allocation 9 not found\n...",
        }
        for name, line in expected.items():
            self.assertEqual(formats.failure_line(REGISTRY.get(name), error), line)

    def test_no_results(self):
        self.assertEqual(formats.no_results(REGISTRY.get("allocation_step_query_active_all")),
                         "---\nTotal_Records: 0\n# No matching records found.\n...\n")
        self.assertEqual(formats.no_results(REGISTRY.get("allocation_query_active_all")),
                         "---\nnum_allocations: 0\n# No matching records found.\n...\n")
        self.assertEqual(formats.render(REGISTRY.get("allocation_query_active_all"), {"allocations": []}, {}),
                         "---\nnum_allocations: 0\n# No matching records found.\n...\n")

    def test_node_errors(self):
        errors = [NodeError("c02", ErrorCode.CSMERR_MULTI_GEN_ERROR, "prolog failed"),
                  NodeError("c03", ErrorCode.CSMERR_TIMEOUT, "no answer")]
        self.assertEqual(formats.node_errors(errors).splitlines(),
                         ["bad_node_count: 2", "bad_nodes:",
                          " - c02[%d]: prolog failed" % ErrorCode.CSMERR_MULTI_GEN_ERROR,
                          " - c03[%d]: no answer" % ErrorCode.CSMERR_TIMEOUT])
        self.assertEqual(formats.node_errors([]), "")

    def test_update_mismatch(self):
        error = CSMError(ErrorCode.CSMERR_UPDATE_MISMATCH, "1 node(s) not found: ghost",
                         [NodeError("ghost", ErrorCode.CSMERR_UPDATE_MISMATCH, "not found")])
        self.assertEqual(formats.update_mismatch(REGISTRY.get("node_attributes_update"), error,
                                                 {"node_names": ["c01", "ghost"]}).splitlines(),
                         ["---", "# Could not update 1 of the 2 record(s):", "total_failures: 1", "node_names:",
                          " - ghost", "..."])


class FlagTests(SynchronousTestCase):
    """CAST's long option names and letters parse to the registry's fields."""

    def parse(self, name, *argv):
        return vars(build_parser(REGISTRY.get(name)).parse_intermixed_args(list(argv)))

    def test_cast_long_names(self):
        self.assertEqual(self.parse("ras_event_query", "--begin_timestamp", "b", "--end_timestamp", "e")
                         ["start_time_stamp"], "b")
        self.assertEqual(self.parse("ras_msg_type_delete", "--msg_ids", "a.b.c,d.e.f")["msg_ids"], "a.b.c,d.e.f")
        self.assertEqual(self.parse("ras_msg_type_query", "--set_state", "SOFT_FAILURE")["set_states"],
                         "SOFT_FAILURE")
        self.assertEqual(self.parse("soft_failure_recovery", "--retry", "3")["retry_count"], "3")
        self.assertEqual(self.parse("allocation_update_history", "-a", "1", "--use_name", "bob")["user_name"], "bob")
        self.assertTrue(self.parse("ctrl_cmd", "--dump_mem_usage")["dump_mem"])
        self.assertTrue(self.parse("ctrl_cmd", "--dump_perf_data")["dump_perf"])
        self.assertTrue(self.parse("node_query_state_history", "-n", "c01", "-Y")["yaml"])

    def test_stray_operands_are_ignored_as_getopt_does(self):
        args = self.parse("ras_msg_type_create", "-m", "a.b.c", "-M", "Test", "message", "words")
        self.assertEqual((args["msg_id"], args["message"]), ("a.b.c", "Test"))

    def test_sort_letters(self):
        command = REGISTRY.get("ras_event_query")
        self.assertEqual(command.validate({"msg_id": "x", "order_by": "l"})["order_by"], "l")
        with self.assertRaises(CSMError):
            command.validate({"msg_id": "x", "order_by": "m"})

    def test_ras_type_severity_defaults_to_info(self):
        self.assertEqual(REGISTRY.get("ras_msg_type_create").validate({"msg_id": "a.b.c"})["severity"], "INFO")
        self.assertNotIn("severity", REGISTRY.get("ras_msg_type_update").validate({"msg_id": "a.b.c"}))

    def test_step_details_without_step(self):
        self.assertEqual(REGISTRY.get("allocation_step_query_details").validate({"allocation_id": 1}),
                         {"allocation_id": 1})


class NodeRangeTests(SynchronousTestCase):
    def test_ranges_expand(self):
        command = REGISTRY.get("node_attributes_query")
        self.assertEqual(expand_ranges(command, {"node_names": "c[01-03],u01"})["node_names"],
                         ["c01", "c02", "c03", "u01"])
        self.assertEqual(expand_ranges(command, {"node_names": "c01,c02"})["node_names"], "c01,c02")
        with self.assertRaises(CSMError) as caught:
            expand_ranges(command, {"node_names": "c[01-"})
        self.assertEqual(caught.exception.errcode, ErrorCode.CSMERR_INVALID_PARAM)


class RequiredTests(SynchronousTestCase):
    def setUp(self):
        self.patch(os, "environ", dict(os.environ, CSM_SOCKET=os.path.join(tempfile.mkdtemp(), "none.sock")))

    def test_node_attributes_query_needs_a_filter(self):
        out = io.StringIO()
        self.assertEqual(run(REGISTRY.get("node_attributes_query"), [], out), ErrorCode.CSMERR_MISSING_PARAM)
        self.assertIn("csm_node_attributes_query FAILED: errcode: 8", out.getvalue())

    def test_missing_flag_exits_as_cast_tool(self):
        for name, code in (("node_attributes_query_history", 8), ("allocation_resources_query", 8),
                           ("ras_msg_type_delete", 9), ("allocation_step_query", 9),
                           ("allocation_update_state", 9), ("allocation_step_query_details", 1)):
            out = io.StringIO()
            self.assertEqual(run(REGISTRY.get(name), [], out), code, name)
            self.assertIn("csm_%s FAILED: errcode: %d" % (name, code), out.getvalue())

    def test_bad_range_is_one_line(self):
        out = io.StringIO()
        self.assertEqual(run(REGISTRY.get("node_attributes_query"), ["-n", "c[01-"], out),
                         ErrorCode.CSMERR_INVALID_PARAM)
        self.assertEqual(len(out.getvalue().splitlines()), 1, out.getvalue())
