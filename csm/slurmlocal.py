"""A real Slurm on loopback for the tests and benchmarks: munged, slurmctld and one slurmd per node.

Debian's slurm-wlm runs several slurmd on one machine (``slurmd -N <name>``, each
node with its own ``Port=``; spool, pid and log files per node through ``%n``).
Everything lives in ``run_dir``; ``stop()`` ends every process it started.
"""

import os
import re
import shutil
import signal
import subprocess
import time

from csm import exitcleanup

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
TOOLS = ("slurmctld", "slurmd", "salloc", "sbatch", "srun", "scontrol", "sinfo", "squeue", "munged")


def which(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def missing_tools():
    return [tool for tool in TOOLS if not which(tool)]


def free_ports(count):
    """``count`` distinct free loopback ports."""
    from csm.cluster import free_port
    ports = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def stop_group(proc, timeout=10):
    """SIGTERM the process group ``proc`` leads, SIGKILL after ``timeout``."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            proc.wait()


class LocalSlurm:
    """Slurm for ``nodes`` (names) in one partition ``csm``; ``settings`` are more slurm.conf lines."""

    def __init__(self, run_dir, nodes, settings=(), cpus_per_node=None, cluster_name="csmtest"):
        self.dir = os.path.abspath(run_dir)
        os.makedirs(self.dir, exist_ok=True)
        self.nodes = list(nodes)
        self.settings = list(settings)
        self.cpus_per_node = cpus_per_node
        self.cluster_name = cluster_name
        self.conf = self.path("slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.procs = {}

    def path(self, name):
        return os.path.join(self.dir, name)

    def _spawn(self, name, cmd):
        with open(self.path(name + ".out"), "ab") as out:
            self.procs[name] = subprocess.Popen(cmd, env=self.env, cwd=self.dir, stdin=subprocess.DEVNULL,
                                                stdout=out, stderr=out, start_new_session=True)

    def _cpus(self):
        if self.cpus_per_node:
            return "CPUs=%d" % self.cpus_per_node
        hardware = subprocess.run([which("slurmd"), "-C"], stdout=subprocess.PIPE, text=True).stdout
        return " ".join(re.findall(r"\b(?:CPUs|Boards|SocketsPerBoard|CoresPerSocket|ThreadsPerCore)=\d+",
                                   hardware)) or "CPUs=%d" % os.cpu_count()

    def write_conf(self):
        ctld, slurmd, *ports = free_ports(2 + len(self.nodes))
        settings = [
            ("ClusterName", self.cluster_name), ("SlurmctldHost", "localhost(127.0.0.1)"),
            ("SlurmctldPort", ctld), ("SlurmdPort", slurmd),
            ("AuthType", "auth/munge"), ("CredType", "cred/munge"), ("AuthInfo", "socket=" + self.path("munge.sock")),
            ("SlurmUser", "root"), ("SlurmdUser", "root"),
            ("StateSaveLocation", self.path("state")), ("SlurmdSpoolDir", self.path("spool/%n")),
            ("SlurmctldPidFile", self.path("slurmctld.pid")), ("SlurmdPidFile", self.path("slurmd.%n.pid")),
            ("SlurmctldLogFile", self.path("slurmctld.log")), ("SlurmdLogFile", self.path("slurmd.%n.log")),
            ("SelectType", "select/cons_tres"), ("SelectTypeParameters", "CR_Core"),
            ("ProctrackType", "proctrack/linuxproc"), ("TaskPlugin", "task/none"), ("MpiDefault", "none"),
            ("JobAcctGatherType", "jobacct_gather/none"), ("AccountingStorageType", "accounting_storage/none"),
            ("JobCompType", "jobcomp/none"), ("MailProg", "/bin/true"), ("ReturnToService", 2),
        ] + self.settings
        cpus = self._cpus()
        settings += [("NodeName", "%s NodeAddr=127.0.0.1 Port=%d %s State=UNKNOWN" % (node, port, cpus))
                     for node, port in zip(self.nodes, ports)]
        settings.append(("PartitionName", "csm Nodes=%s Default=YES MaxTime=INFINITE State=UP"
                         % ",".join(self.nodes)))
        for sub in ("state", "spool"):
            os.makedirs(self.path(sub), exist_ok=True)
        with open(self.conf, "w") as f:
            f.writelines("%s=%s\n" % setting for setting in settings)

    def start(self, timeout=90):
        """Start munged, slurmctld and the slurmds; wait until every node is idle (stopped at exit
        or on a signal, if not before)."""
        exitcleanup.register(self.stop)
        with open(os.open(self.path("munge.key"), os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(os.urandom(1024))
        self.write_conf()
        self._spawn("munged", [which("munged"), "-F", "--key-file=" + self.path("munge.key")] + [
            "--%s=%s" % (option, self.path(name)) for option, name in (
                ("socket", "munge.sock"), ("pid-file", "munged.pid"), ("log-file", "munged.log"),
                ("seed-file", "munged.seed"))])
        self.wait(lambda: os.path.exists(self.path("munge.sock")), "munged's socket")
        self._spawn("slurmctld", [which("slurmctld"), "-D", "-f", self.conf])
        for node in self.nodes:
            self._spawn("slurmd-" + node, [which("slurmd"), "-D", "-N", node, "-f", self.conf])
        self.wait(lambda: set(self.node_states().values()) == {"idle"}, "every node idle", timeout)
        return self

    def run(self, *argv, timeout=120):
        """A Slurm command with this cluster's slurm.conf: (exit status, output)."""
        proc = subprocess.run(list(argv), env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=timeout)
        return proc.returncode, proc.stdout

    def node_states(self):
        """{node: state} from sinfo."""
        return {node: state for node, (state, _) in self.nodes_with_reasons().items()}

    def nodes_with_reasons(self):
        """{node: (state, drain reason)} from sinfo (a state without sinfo's flags: ``*`` not
        responding for a moment, ``~`` powered down...)."""
        _, out = self.run("sinfo", "-h", "-N", "-o", "%N|%T|%E")
        nodes = {}
        for line in out.splitlines():
            if line.count("|") >= 2:
                node, state, reason = line.split("|", 2)
                nodes[node] = (state.rstrip("*~#!%$@^-"), reason)
        return nodes

    def job(self, job_id):
        """``scontrol show job`` as {key: value} (values up to the next space)."""
        _, out = self.run("scontrol", "-o", "show", "job", str(job_id))
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait(self, predicate, what, timeout=60):
        deadline = time.monotonic() + timeout
        while not predicate():
            dead = [name for name, proc in self.procs.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError("Slurm: %s while waiting for %s; see %s" % (
                    "%s exited" % ", ".join(dead) if dead else "timed out", what, self.dir))
            time.sleep(0.05)

    def stop(self):
        for name in sorted(self.procs, key=lambda name: ("slurmd", "slurmctld", "munged").index(
                name.split("-")[0])):
            stop_group(self.procs[name])
        exitcleanup.unregister(self.stop)
