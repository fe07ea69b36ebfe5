"""``csm-diag``: run a directory of checks on compute nodes through the CSM daemons.

A check is any executable file: exit 0 passes, anything else fails, its output
is kept in the run's log directory. The runner begins a diagnostic run inside a
``diagnostics`` allocation of the nodes, sends each check to every node
(``diag_check``, a multicast through the aggregators: no ssh), records one
result per node and check, and ends the run. With ``--soft_failure`` a node
that failed a check gets a ``csm.diag.check_failure`` RAS event, which sets it
to SOFT_FAILURE.

Exit status: 0 every check passed, 1 some check failed, else the CSM error code.
"""

import argparse
import os
import sys
import time

from csm.client import Client
from csm.errors import CSMError, ErrorCode

DEFAULT_LOG_DIR = "/var/log/ibm/csm/diag"
FAILURE_EVENT = "csm.diag.check_failure"
#: the most bytes of a check file sent to the nodes
MAX_CHECK_SIZE = 256 * 1024


class UsageError(Exception):
    pass


def find_checks(directory):
    """[(name, text)] of the executable files in ``directory``, by name."""
    if not os.path.isdir(directory):
        raise UsageError("%s is not a directory" % directory)
    checks = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".") or not os.path.isfile(path) or not os.access(path, os.X_OK):
            continue
        if os.path.getsize(path) > MAX_CHECK_SIZE:
            raise UsageError("%s is larger than %d bytes" % (path, MAX_CHECK_SIZE))
        with open(path, encoding="utf-8", errors="replace") as f:
            checks.append((name, f.read()))
    if not checks:
        raise UsageError("no executable checks in %s" % directory)
    return checks


class DiagRun:
    """One run: allocation, run begin, the checks, results, run end, allocation delete."""

    def __init__(self, client, nodes, checks, log_dir, timeout=60, job_id=None, soft_failure=False, out=sys.stdout,
                 cmd_line=""):
        self.client = client
        self.nodes = nodes
        self.checks = checks
        self.log_root = log_dir
        self.timeout = timeout
        self.job_id = job_id if job_id is not None else int(time.time() * 1000) % (1 << 53)
        self.soft_failure = soft_failure
        self.out = out
        self.cmd_line = cmd_line
        self.failed = {}  # node -> [(check, exit status)]

    def run(self):
        allocation = self.client.call("allocation_create", {
            "primary_job_id": self.job_id, "compute_nodes": self.nodes, "type": "diagnostics",
            "job_name": "csm-diag"})
        allocation_id = allocation["allocation_id"]
        status = "FAILED"
        run_id = None
        try:
            run_id = self.client.call("diag_run_begin", {"allocation_id": allocation_id, "log_dir": self.log_root,
                                                         "cmd_line": self.cmd_line})["run_id"]
            self.log_dir = os.path.join(self.log_root, "run_%d" % run_id)
            os.makedirs(self.log_dir, exist_ok=True)
            self.out.write("diagnostic run %d (allocation %d) on %d node(s), %d check(s); logs in %s\n"
                           % (run_id, allocation_id, len(self.nodes), len(self.checks), self.log_dir))
            for name, script in self.checks:
                self._check(run_id, name, script)
            status = "COMPLETED_FAIL" if self.failed else "COMPLETED"
        finally:
            try:
                self.client.call("allocation_delete", {"allocation_id": allocation_id})
            except CSMError as exc:  # e.g. the epilog failed on a node that did not answer the checks either
                self.out.write("allocation %d: errcode: %d errmsg: %s\n" % (allocation_id, int(exc.errcode),
                                                                          exc.errmsg))
            finally:  # the run ends whatever became of the allocation
                raised = self._raise_events(run_id) if status != "FAILED" and self.soft_failure else False
                if run_id is not None:
                    self.client.call("diag_run_end", {"run_id": run_id, "status": status, "inserted_ras": raised})
        self.out.write("run %d: %s\n" % (run_id, status))
        return run_id, status

    def _check(self, run_id, name, script):
        begin = time.strftime("%Y-%m-%d %H:%M:%S")
        reply = self.client.call("diag_check", {"node_names": self.nodes, "test_name": name, "script": script,
                                                "run_id": run_id, "check_timeout": self.timeout})
        for node in self.nodes:
            result = reply["nodes"].get(node) or {"errcode": ErrorCode.CSMERR_TIMEOUT, "errmsg": "no answer"}
            if "exit_status" in result:
                code, text = result["exit_status"], result.get("output", "")
                status = "PASS" if code == 0 else "FAIL"
            else:
                code, text = None, "no result: %s\n" % result.get("errmsg")
                status = "ERROR"
            log_file = os.path.join(self.log_dir, "%s.%s.log" % (node, name))
            with open(log_file, "w") as f:
                f.write(text)
            self.client.call("diag_result_create", {"run_id": run_id, "test_name": name, "node_name": node,
                                                    "status": status, "begin_time": begin, "log_file": log_file})
            if status != "PASS":
                self.failed.setdefault(node, []).append((name, code))
            self.out.write("%-12s %-28s %s%s\n" % (node, name, status,
                                                    "" if code in (0, None) else " (exit %d)" % code))

    def _raise_events(self, run_id):
        for node, failures in sorted(self.failed.items()):
            name, code = failures[0]
            self.client.call("ras_event_create", {
                "msg_id": FAILURE_EVENT, "location_name": node,
                "kvcsv": "test_name=%s,run_id=%s,rc=%s" % (name, run_id, "none" if code is None else code),
                "raw_data": "; ".join("%s rc=%s" % failure for failure in failures)})
        return bool(self.failed)


def node_list(text):
    """``c01,c02`` or a ClusterShell host range (``c[01-04],u01``)."""
    if "[" not in text:
        return [node.strip() for node in text.split(",") if node.strip()]
    from ClusterShell.NodeSet import NodeSet, NodeSetParseError
    try:
        return list(NodeSet(text))
    except NodeSetParseError as exc:
        raise UsageError("invalid node range %r: %s" % (text, exc)) from None


def build_parser():
    parser = argparse.ArgumentParser(prog="csm-diag", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--node_names", required=True, help="compute nodes: n1,n2 or n[01-04]")
    parser.add_argument("-d", "--directory", required=True, help="directory of check scripts")
    parser.add_argument("-l", "--log_dir", default=DEFAULT_LOG_DIR, help="where the run's logs go (default %(default)s)")
    parser.add_argument("-t", "--timeout", type=int, default=60, help="seconds a check may take on a node")
    parser.add_argument("-j", "--primary_job_id", type=int, help="job id of the diagnostics allocation")
    parser.add_argument("--soft_failure", action="store_true",
                        help="raise %s on nodes that failed (they go to SOFT_FAILURE)" % FAILURE_EVENT)
    return parser


def main(argv=None, out=sys.stdout):
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    try:
        nodes = node_list(args.node_names)
        if not nodes:
            raise UsageError("no nodes given")
        checks = find_checks(args.directory)
        with Client() as client:
            _run_id, status = DiagRun(client, nodes, checks, os.path.abspath(args.log_dir), args.timeout,
                                      args.primary_job_id, args.soft_failure, out,
                                      cmd_line=" ".join(["csm-diag"] + argv)).run()
    except UsageError as exc:
        out.write("csm-diag FAILED: %s\n" % exc)
        return ErrorCode.CSMERR_INVALID_PARAM
    except CSMError as exc:
        out.write("csm-diag FAILED: errcode: %d errmsg: %s\n" % (int(exc.errcode), exc.errmsg))
        return int(exc.errcode)
    except OSError as exc:
        out.write("csm-diag FAILED: %s\n" % exc)
        return ErrorCode.CSMERR_GENERIC
    return 0 if status == "COMPLETED" else 1


if __name__ == "__main__":
    sys.exit(main())
