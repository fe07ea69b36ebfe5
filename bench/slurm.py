"""Slurm comparison: one node allocated and queried through Slurm 22.05 and through CSM, side by side.

    .venv/bin/python bench/slurm.py [--runs 20] [--record]

Slurm (Debian's slurmctld, slurmd, slurm-client and munge; installed with
apt-get when missing and run as root): munged with a fresh key, slurmctld -D and
slurmd -D in a temp dir on loopback ports, one node (this machine's CPUs) in
one partition, auth/munge, select/cons_tres, proctrack/linuxproc, task/none, no
accounting, no prolog script, PrologFlags=Alloc (the node's slurmd takes part in
each allocation, as a CSM compute does). CSM: a master with its private
PostgreSQL, one aggregator, a utility and one compute (c01) as real twistd
processes with TLS, the compute with no prolog or epilog ("none"); c01 is set
IN_SERVICE. Both systems run at once and the runs alternate between them.

Each of ``--runs`` times (after one untimed warm-up of each command):
``salloc -N1 true`` against ``csm_allocation_create -j N -n c01`` then
``csm_allocation_delete -a ID`` (the real csm_* programs, through the utility's
socket, as a scheduler on a login node calls them; the allocation reaches
running), and ``scontrol show node c01`` against ``csm_node_attributes_query -n
c01``; the same CSM APIs through an in-process csm.client.Client too. After
salloc returns, the run waits (untimed) until the node is idle again. Prints
p50, p99 and max of each, the ratios csm / slurm, and the idle RSS (VmRSS) of
slurmd and of the csm-compute daemon after the runs, and the compute's CPU over
``IDLE_SECONDS`` idle. Each figure is printed against its target (issue 21):
a node query at most 3 times ``scontrol show node``, an allocation's create +
delete (two processes) at most 4 times ``salloc -N1 true``, the compute's RSS at
most 40 MB (default config: no admin shell, no metrics exporter). Where the
command's time goes: the same interpreter started as the csm_* programs start
it (``python -S -c pass``: setup.py's launcher skips the site module) and
importing the command's path (``IMPORT_COMMAND``), p50, and the CPU of each
command's own process (user + system, from its rusage). Bytecode is
compiled first, as ``make compile`` leaves it.

``--job-nodes N`` instead: one job over N nodes (Slurm with one slurmd per node
on this machine, csm/slurmlocal.py; CSM with N real computes of the same
names), ``srun -N<N> true`` named ``csm`` (conf/slurm's PrologSlurmctld and
EpilogSlurmctld make it a CSM allocation) against the same job named ``plain``
(the same scripts exit 0 at once), alternating, ``--runs`` each: what CSM adds
to a job's start (srun's wall time) and end (from srun's return until the job
is gone and every node idle).
"""

import argparse
import collections
import compileall
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import QUIET, cpu_rss, percentile, record, stop_on_signals  # noqa: E402
from csm.client import Client  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.slurmlocal import PACKAGES, LocalSlurm, missing_tools, which  # noqa: E402

NODE = "c01"
#: what a csm_* program imports before it connects (with the checkout on sys.path, as make venv's launcher)
IMPORT_COMMAND = ("import sys; sys.path.append(%r); from csm.cli.main import main; from csm.api.cli_index import "
                  "find; find('csm_node_attributes_query')" % os.path.dirname(HERE))
BIN = os.path.dirname(sys.executable)  # the virtualenv's csm_* programs
IDLE_SECONDS = 10
#: issue 21: csm / slurm p50 at most these; the compute's idle RSS at most this (MB)
QUERY_TARGET, ALLOCATION_TARGET, RSS_TARGET = 3.0, 4.0, 40.0


def ensure_slurm():
    """Install Slurm and munge when missing (as root); exit with a message when that cannot be done."""
    missing = missing_tools()
    if missing and os.geteuid() == 0:
        print("installing %s (missing: %s)" % (" ".join(PACKAGES), " ".join(missing)), flush=True)
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends"] + list(PACKAGES),
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdin=subprocess.DEVNULL)
        missing = missing_tools()
    if missing:
        sys.exit("bench/slurm.py: Slurm is not installed (no %s) and could not be installed; as root: "
                 "apt-get install %s" % (", ".join(missing), " ".join(PACKAGES)))


#: the CPU seconds (user + system) of each process ``timed`` ran, by program name
CHILD_CPU = collections.defaultdict(list)


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd, env=None, expect=0):
    """Run ``cmd``; (seconds, output), its CPU in ``CHILD_CPU``. Fails unless it exits ``expect``."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    CHILD_CPU[os.path.basename(cmd[0])].append(_children_cpu() - cpu)
    if proc.returncode != expect:
        raise RuntimeError("%s exited %d: %s" % (" ".join(cmd), proc.returncode, proc.stdout.strip()[-500:]))
    return elapsed, proc.stdout


class Slurm(LocalSlurm):
    """munged, slurmctld and slurmd for one node (PrologFlags=Alloc), all files in ``run_dir``."""

    def __init__(self, run_dir):
        super().__init__(run_dir, [NODE], settings=[("PrologFlags", "Alloc")], cluster_name="csmbench")

    def idle(self):
        out = subprocess.run(["sinfo", "-h", "-N", "-n", NODE, "-o", "%T"], env=self.env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True).stdout
        return out.strip() == "idle"

    def salloc(self):
        elapsed, _ = timed(["salloc", "-N1", "true"], env=self.env)
        self.wait(self.idle, "%s idle after the job" % NODE)  # the job's end on the node, untimed
        return elapsed

    def show_node(self):
        elapsed, out = timed(["scontrol", "show", "node", NODE], env=self.env)
        assert "NodeName=%s " % NODE in out, out
        return elapsed


class CSM:
    """The CSM tree for one compute node; the csm_* programs and a Client on the utility's socket."""

    def __init__(self, run_dir):
        quiet = {role: dict(QUIET) for role in ("master", "aggregator", "utility", "compute")}
        quiet["compute"].update({"prolog": "none", "epilog": "none", "manhole.socket": ""})  # CAST's defaults
        self.cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=1, tls=True, extra=quiet)
        self.env = dict(self.cluster.env(), CSM_SOCKET=self.cluster.daemons["util01"].socket)
        self.client = None
        self.job = 1000

    def start(self):
        self.cluster.start()
        self.client = Client(self.cluster.daemons["util01"].socket)
        self.cluster.wait_for(lambda: self.client.call("node_attributes_query", {"node_names": [NODE]})["results"],
                              timeout=60, what="%s's inventory" % NODE)
        self.client.call("node_attributes_update", {"node_names": [NODE], "state": "IN_SERVICE"})
        return self

    def cli(self, command, *args):
        return timed([os.path.join(BIN, command)] + list(args), env=self.env)

    def allocation_cli(self):
        self.job += 1
        create, out = self.cli("csm_allocation_create", "-j", str(self.job), "-n", NODE)
        assert re.search(r"^state: running$", out, re.M), out
        delete, _ = self.cli("csm_allocation_delete", "-a", re.search(r"^allocation_id: (\d+)$", out, re.M).group(1))
        return create, delete

    def allocation_client(self):
        self.job += 1
        started = time.perf_counter()
        created = self.client.call("allocation_create", {"primary_job_id": self.job, "compute_nodes": [NODE]})
        self.client.call("allocation_delete", {"allocation_id": created["allocation_id"]})
        assert created["state"] == "running", created
        return time.perf_counter() - started

    def query_cli(self):
        elapsed, out = self.cli("csm_node_attributes_query", "-n", NODE)
        assert re.search(r"^\s*node_name:\s+%s$" % NODE, out, re.M), out
        return elapsed

    def query_client(self):
        started = time.perf_counter()
        assert self.client.call("node_attributes_query", {"node_names": [NODE]})["results"]
        return time.perf_counter() - started

    def python(self, code):
        """The interpreter the csm_* programs run, as they start it (no site module: setup.py's
        LAUNCHER), alone with ``code``: where a command's time goes."""
        return timed([os.path.join(BIN, "python"), "-S", "-c", code], env=self.env)[0]

    def stop(self):
        if self.client is not None:
            self.client.close()
        self.cluster.stop()


def _stats(values):
    return percentile(values, 50), percentile(values, 99), max(values)


def _ms(values):
    return "p50 %.1f ms, p99 %.1f ms, max %.1f ms" % tuple(v * 1e3 for v in _stats(values))


def _ratio(csm, slurm):
    return "csm/slurm p50 %.1fx, p99 %.1fx, max %.1fx" % tuple(c / s for c, s in zip(_stats(csm), _stats(slurm)))


def _against(what, value, target, unit):
    """``what`` against its target: met, or by how much it is missed."""
    verdict = "met" if value <= target else "not met, %.1fx the target" % (value / target)
    return "%s %.1f%s, target at most %.1f%s: %s" % (what, value, unit, target, unit, verdict)


def run(runs, run_dir):
    slurm, csm = Slurm(os.path.join(run_dir, "slurm")), CSM(os.path.join(run_dir, "csm"))
    t = collections.defaultdict(list)
    try:
        slurm.start()
        csm.start()
        for warm_up in (slurm.salloc, slurm.show_node, csm.allocation_cli, csm.query_cli, csm.allocation_client,
                        csm.query_client):
            warm_up()  # untimed
        CHILD_CPU.clear()
        for _ in range(runs):  # alternating, so that a busy moment of the machine hits both
            t["salloc"].append(slurm.salloc())
            create, delete = csm.allocation_cli()
            t["create"].append(create)
            t["delete"].append(delete)
            t["alloc_cli"].append(create + delete)
            t["alloc_client"].append(csm.allocation_client())
            t["scontrol"].append(slurm.show_node())
            t["query_cli"].append(csm.query_cli())
            t["query_client"].append(csm.query_client())
            t["python"].append(csm.python("pass"))
            t["import"].append(csm.python(IMPORT_COMMAND))
        time.sleep(2)  # let both settle: idle RSS
        compute = csm.cluster.daemons[NODE].process.pid
        cpu_before = cpu_rss(compute)[0]
        time.sleep(IDLE_SECONDS)
        cpu, compute_rss = cpu_rss(compute)
        rss = {"slurmd": cpu_rss(slurm.procs["slurmd-" + NODE].pid)[1], "csm-compute": compute_rss,
               "compute_cpu": 100.0 * (cpu - cpu_before) / IDLE_SECONDS}
    finally:
        csm.stop()
        slurm.stop()
    return t, rss


JOB_SCRIPT = """#!/bin/sh
# the CSM script for jobs named csm, nothing for the others (the same Slurm path for both)
case "$SLURM_JOB_NAME" in
    csm) CSM_SLURM_DEFAULTS=%s exec %s ;;
esac
exit 0
"""


def _job_script(run_dir, defaults, name):
    path = os.path.join(run_dir, name)
    with open(path, "w") as f:
        f.write(JOB_SCRIPT % (defaults, os.path.join(os.path.dirname(HERE), "conf", "slurm", name)))
    os.chmod(path, 0o755)
    return path


class SlurmWithCSM:
    """Slurm over ``nodes`` computes that are CSM computes too; conf/slurm's PrologSlurmctld and
    EpilogSlurmctld for jobs named ``csm``."""

    def __init__(self, run_dir, nodes):
        quiet = {role: dict(QUIET) for role in ("master", "aggregator", "utility", "compute")}
        quiet["compute"]["manhole.socket"] = ""
        self.cluster = LocalCluster(os.path.join(run_dir, "csm"), computes=nodes, aggregators=2, utilities=1,
                                    tls=True, extra=quiet)
        self.names = self.cluster.compute_names()
        slurm_dir = os.path.join(run_dir, "slurm")
        os.makedirs(slurm_dir)
        defaults = os.path.join(run_dir, "csm-slurm")
        with open(defaults, "w") as f:
            f.write("CSM_BIN=%s\nCSM_SOCKET=%s\nSLURM_CONF=%s\nCSM_SLURM_LOG=%s\n" % (
                BIN, self.cluster.daemons["util01"].socket, os.path.join(slurm_dir, "slurm.conf"),
                os.path.join(run_dir, "csm-slurm.log")))
        self.slurm = LocalSlurm(slurm_dir, self.names, cpus_per_node=1, cluster_name="csmbench", settings=[
            ("PrologSlurmctld", _job_script(run_dir, defaults, "csm-slurmctld-prolog")),
            ("EpilogSlurmctld", _job_script(run_dir, defaults, "csm-slurmctld-epilog"))])
        self.client = None

    def start(self):
        self.cluster.start(timeout=120)
        self.client = Client(self.cluster.daemons["util01"].socket)
        self.cluster.wait_for(lambda: len(self.client.call("node_attributes_query", {"node_names": self.names})
                                          ["results"]) == len(self.names), timeout=300, what="every inventory")
        self.client.call("node_attributes_update", {"node_names": self.names, "state": "IN_SERVICE"})
        self.slurm.start(timeout=300)
        return self

    def job(self, name):
        """``srun -N<all> -J name true``: (seconds until srun returns, seconds more until the job is gone
        and every node idle), and the job id."""
        argv = ["srun", "-N%d" % len(self.names), "-J", name, "sh", "-c", '[ "$SLURM_PROCID" = 0 ] && '
                'echo "$SLURM_JOB_ID"; true']
        started = time.perf_counter()
        elapsed, out = timed(argv, env=self.slurm.env)
        job = int(re.search(r"^(\d+)$", out, re.M).group(1))

        def ended():
            _, queued = self.slurm.run("squeue", "-h", "-j", str(job))
            return not queued.strip() and set(self.slurm.node_states().values()) == {"idle"}
        self.slurm.wait(ended, "job %d to end" % job, timeout=300)
        return elapsed, time.perf_counter() - started - elapsed, job

    def csm_job(self):
        run, end, job = self.job("csm")
        allocation = self.client.call("allocation_query", {"primary_job_id": job})["allocations"][0]
        assert allocation["history"] and len(allocation["compute_nodes"]) == len(self.names), allocation
        return run, end

    def stop(self):
        try:
            self.slurm.stop()
        finally:
            if self.client is not None:
                self.client.close()
            self.cluster.stop()


def job_run(nodes, runs, run_dir):
    """The same job over ``nodes`` nodes with and without the CSM allocation, alternating."""
    lab = SlurmWithCSM(run_dir, nodes)
    t = collections.defaultdict(list)
    try:
        started = time.perf_counter()
        lab.start()
        t["setup"].append(time.perf_counter() - started)
        lab.job("plain"), lab.csm_job()  # warm-up, untimed
        for _ in range(runs):
            for name, job in (("plain", lambda: lab.job("plain")[:2]), ("csm", lab.csm_job)):
                run, end = job()
                t[name + "_run"].append(run)
                t[name + "_end"].append(end)
    finally:
        lab.stop()
    return t


def job_main(args):
    run_dir = tempfile.mkdtemp(prefix="csm-bench-slurm-job-")
    os.chmod(run_dir, 0o755)
    try:
        t = job_run(args.job_nodes, args.runs, run_dir)
    except Exception:
        print("bench/slurm.py: failed; logs are in %s" % run_dir, file=sys.stderr)
        raise
    shutil.rmtree(run_dir, ignore_errors=True)
    p50 = lambda key: percentile(t[key], 50) * 1e3  # noqa: E731
    lines = [
        "one job over %d nodes (one slurmd per node on this machine, Debian's multiple-slurmd), `srun -N%d true`, "
        "%d runs each, alternating; with CSM: conf/slurm's PrologSlurmctld (csm_allocation_create over the %d "
        "nodes, CSM's sample privileged prolog on each) and EpilogSlurmctld (csm_allocation_delete, the sample "
        "epilog); without: a PrologSlurmctld and EpilogSlurmctld that exit 0; CSM master, 2 aggregators, "
        "utility and %d computes with TLS (set up in %.0f s)"
        % (args.job_nodes, args.job_nodes, args.runs, args.job_nodes, args.job_nodes, t["setup"][0]),
        "start and run (srun's wall time): without CSM %s; with CSM %s; CSM adds p50 %.1f ms"
        % (_ms(t["plain_run"]), _ms(t["csm_run"]), p50("csm_run") - p50("plain_run")),
        "end (srun's return until the job is gone and every node idle): without CSM %s; with CSM %s; "
        "CSM adds p50 %.1f ms" % (_ms(t["plain_end"]), _ms(t["csm_end"]), p50("csm_end") - p50("plain_end")),
        "load average %.1f" % os.getloadavg()[0],
    ]
    for line in lines:
        print(line, flush=True)
    if args.record:
        record("slurm_job", "python bench/slurm.py --job-nodes %d --runs %d --record" % (args.job_nodes, args.runs),
               lines)


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--job-nodes", type=int, default=0,
                        help="instead: one job over this many nodes with and without CSM (64 is the aim)")
    args = parser.parse_args()
    ensure_slurm()
    if args.job_nodes:
        return job_main(args)
    compileall.compile_dir(os.path.join(os.path.dirname(HERE), "csm"), quiet=1)  # as make compile leaves it
    run_dir = tempfile.mkdtemp(prefix="csm-bench-slurm-")
    os.chmod(run_dir, 0o755)  # postgres (another user) and munged's checks look into it
    try:
        t, rss = run(args.runs, run_dir)
    except Exception:
        print("bench/slurm.py: failed; logs are in %s" % run_dir, file=sys.stderr)
        raise
    shutil.rmtree(run_dir, ignore_errors=True)
    version = subprocess.run([which("slurmd"), "-V"], stdout=subprocess.PIPE, text=True).stdout.strip()
    lines = [
        "%s and CSM on one machine, one node: Slurm slurmctld + slurmd (auth/munge, PrologFlags=Alloc, no prolog "
        "script); CSM master + 1 aggregator + utility + compute (TLS, prolog and epilog none)" % version,
        "allocate and release one node, %d runs: Slurm `salloc -N1 true` %s; CSM `csm_allocation_create` + "
        "`csm_allocation_delete` %s (create p50 %.1f ms, delete p50 %.1f ms); %s"
        % (args.runs, _ms(t["salloc"]), _ms(t["alloc_cli"]), percentile(t["create"], 50) * 1e3,
           percentile(t["delete"], 50) * 1e3, _ratio(t["alloc_cli"], t["salloc"])),
        "the same through an in-process csm.client.Client (no process start): %s; %s"
        % (_ms(t["alloc_client"]), _ratio(t["alloc_client"], t["salloc"])),
        "query one node, %d runs: Slurm `scontrol show node %s` %s; CSM `csm_node_attributes_query -n %s` %s; %s"
        % (args.runs, NODE, _ms(t["scontrol"]), NODE, _ms(t["query_cli"]), _ratio(t["query_cli"], t["scontrol"])),
        "the same through an in-process csm.client.Client: %s; %s"
        % (_ms(t["query_client"]), _ratio(t["query_client"], t["scontrol"])),
        "idle RSS after the runs: slurmd %.1f MB, csm-compute %.1f MB (TLS links, no admin shell, no exporter; "
        "without TLS, CAST's default: bench/compute_rss.py); csm/slurm "
        "%.1fx; csm-compute CPU over %d s idle %.2f%%"
        % (rss["slurmd"], rss["csm-compute"], rss["csm-compute"] / rss["slurmd"], IDLE_SECONDS, rss["compute_cpu"]),
        "where a command's time goes, p50: the interpreter alone as the csm_* programs start it (`python -S -c "
        "pass`) %.1f ms (%.1fx `scontrol show node`), importing the command (`python -S -c '%s'`) %.1f ms; load "
        "average %.1f" % (percentile(t["python"], 50) * 1e3,
                          percentile(t["python"], 50) / percentile(t["scontrol"], 50),
                          IMPORT_COMMAND, percentile(t["import"], 50) * 1e3, os.getloadavg()[0]),
        "CPU (user + system) of the process itself, p50: `scontrol` %s, `csm_node_attributes_query` %s, "
        "`salloc` %s, `csm_allocation_create` %s, `csm_allocation_delete` %s, `python -S` %s"
        % tuple("%.1f ms" % (percentile(CHILD_CPU[name], 50) * 1e3) for name in (
            "scontrol", "csm_node_attributes_query", "salloc", "csm_allocation_create", "csm_allocation_delete",
            "python")),
        "targets: " + "; ".join(_against(*target) for target in (
            ("node query p50 csm/slurm", percentile(t["query_cli"], 50) / percentile(t["scontrol"], 50),
             QUERY_TARGET, "x"),
            ("allocation create + delete p50 csm/slurm", percentile(t["alloc_cli"], 50) / percentile(t["salloc"], 50),
             ALLOCATION_TARGET, "x"),
            ("compute idle RSS with TLS links", rss["csm-compute"], RSS_TARGET, " MB"))),
    ]
    for line in lines:
        print(line, flush=True)
    if args.record:
        record("slurm", "python bench/slurm.py --runs %d --record" % args.runs, lines)


if __name__ == "__main__":
    main()
