"""Allocation rate: one-node allocations created and deleted by many clients at once.

    .venv/bin/python bench/allocation_rate.py [--setups real,sim] [--prologs none,sample]
        [--clients 1,8,32,128] [--seconds 10] [--repeat N] [--rate PAIRS_PER_S] [--sim-nodes 1024] [--slurm]
        [--fast-db] [--record]

Setups: ``real``, a master with its private PostgreSQL, 2 aggregators, a utility
and 8 compute daemons as real twistd processes (TLS); ``sim``, the same tree
with 4 aggregators and ``--sim-nodes`` computes in csm-sim (real links, made-up
counters); PostgreSQL durable, or without fsync with ``--fast-db``. Prologs:
``none`` (no script), ``sample`` (conf/prologs: the shipped privileged prolog
and epilog). Every compute is set IN_SERVICE.

For each client count, a load process (``--load``, its own reactor) opens that
many connections to the utility's socket; each client takes a free node (a
scheduler never gives one node to two exclusive jobs: with more clients than
nodes, clients wait for a node, untimed), creates a one-node allocation on it
(state running: the prolog multicast), deletes it (the epilog multicast,
deltas, history) and gives the node back, for ``--seconds``. Prints pairs/s,
p50 and p99 of each call, the CPU of each process (% of one core; PostgreSQL
is its server processes together, ``scripts`` the prologs and epilogs the
computes ran) and, from pg_stat_statements and
pg_stat_database, the statements and transactions the master ran per
allocation (create + delete). With ``--slurm``: ``sbatch --wrap true`` jobs/s
on the same machine with bench/slurm.py's one-node Slurm.

With ``--repeat N`` each client count runs N times on the same tree and a last
line gives the median run's pairs/s beside every run's and the median CPU a pair
of each process: one 10 s run varies by about 20% on a shared machine.

With ``--rate R`` each client count also runs paced (open loop): the clients
together offer R pairs a second, client i starting its k-th pair at
``(i + k * clients) / R`` seconds, a schedule fixed in advance; a client still
busy at its next start catches up at once, so a slow answer does not lower the
offered load. A create's latency is then counted from its scheduled start, not
from when it was sent (a late start counts against it: no coordinated
omission). The saturated run (each client as fast as it is answered) comes
first and is kept.

Targets: no prolog, 128 clients, 1,024 simulated nodes: 500 pairs/s, create p99
under 100 ms (read as: at 500 pairs/s offered, paced); sample prolog, 8 real
computes: 5 x 34.4 pairs/s.
"""

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import psycopg2

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from bench.results import QUIET, percentile, record, stop_on_signals  # noqa: E402

PROLOG = os.path.join(os.path.dirname(HERE), "conf", "prologs", "privileged_prolog")
EPILOG = os.path.join(os.path.dirname(HERE), "conf", "prologs", "privileged_epilog")
REAL_NODES = 8
SIM_AGGREGATORS = 4


# -- the load (a process of its own) -----------------------------------------------------

def load(reactor, socket, clients, seconds, nodes, first_job, rate=None):
    """Fires with {"create": [s], "delete": [s], "errors": [text], "seconds": s}; paced at ``rate``
    pairs/s (see the module's docstring) also with "sent": [s] (a create from its sending) and
    "late": [s] (how late each pair started)."""
    from twisted.internet import defer, task

    from csm import client as csm_client

    free = defer.DeferredQueue()
    for node in nodes:
        free.put(node)
    out = {"create": [], "delete": [], "errors": [], "pairs": 0, "sent": [], "late": []}
    jobs = iter(range(first_job, first_job + 10 ** 9))
    deadline = []

    def pause(seconds):
        return task.deferLater(reactor, seconds, lambda: None) if seconds > 0 else defer.succeed(None)

    @defer.inlineCallbacks
    def one(client, index):
        pair = 0
        while time.perf_counter() < deadline[0]:
            scheduled = None
            if rate:
                scheduled = deadline[1] + (index + pair * clients) / rate
                if scheduled >= deadline[0]:
                    break
                yield pause(scheduled - time.perf_counter())
                pair += 1
            node = yield free.get()
            try:
                started = time.perf_counter()
                created = yield client.call("allocation_create", {"primary_job_id": next(jobs),
                                                                  "compute_nodes": [node], "user_name": "root"})
                middle = time.perf_counter()
                yield client.call("allocation_delete", {"allocation_id": created["allocation_id"]})
                out["create"].append(middle - (started if scheduled is None else scheduled))
                out["delete"].append(time.perf_counter() - middle)
                out["pairs"] += 1
                if scheduled is not None:
                    out["sent"].append(middle - started)
                    out["late"].append(max(0.0, started - scheduled))
            except Exception as exc:
                out["errors"].append("%s: %s" % (node, getattr(exc, "errmsg", exc)))
            finally:
                free.put(node)

    @defer.inlineCallbacks
    def run():
        connected = yield defer.gatherResults([csm_client.connect(reactor, socket) for _ in range(clients)])
        began = time.perf_counter()
        deadline.extend((began + seconds, began))
        yield defer.gatherResults([one(c, i) for i, c in enumerate(connected)])
        out["seconds"] = time.perf_counter() - began
        out["scheduled_seconds"] = seconds
        for c in connected:
            c.close()
        return out

    return run()


def load_main(args):
    from twisted.internet import reactor

    from bench.results import run_reactor

    with open(args.nodes_file) as f:
        nodes = [line.strip() for line in f if line.strip()]
    out = run_reactor(lambda: load(reactor, args.socket, args.clients[0], args.seconds, nodes, args.first_job,
                                   args.rate))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(out))


# -- the cluster -----------------------------------------------------------------------


def cpu_of(pids, children=False):
    """CPU seconds of ``pids`` together (one that has gone counts nothing); with ``children``,
    those of their ended children instead (a compute's prolog and epilog processes)."""
    total = 0.0
    first = 13 if children else 11
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[first]) + int(fields[first + 1])) / os.sysconf("SC_CLK_TCK")
    return total


def postgres_pids(cluster):
    """The postmaster and its children (the backends)."""
    with open(os.path.join(cluster.postgres.data, "postmaster.pid")) as f:
        main = int(f.readline())
    pids = [main]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    if int(f.read().rpartition(")")[2].split()[1]) == main:
                        pids.append(int(entry))
            except (OSError, ValueError):
                pass
    return pids


class Tree:
    """One cluster of a setup and prolog, started with pg_stat_statements."""

    def __init__(self, setup, prolog, sim_nodes, fast_db=False):
        from csm.cluster import LocalCluster

        self.setup, self.prolog = setup, prolog
        scripts = {"prolog": PROLOG, "epilog": EPILOG} if prolog == "sample" else {"prolog": "none",
                                                                                  "epilog": "none"}
        extra = {role: dict(QUIET) for role in ("master", "aggregator", "utility", "compute")}
        extra["compute"].update(scripts)
        real = setup == "real"
        self.cluster = LocalCluster(tempfile.mkdtemp(prefix="csm-bench-rate-"), computes=REAL_NODES if real else 0,
                                    aggregators=2 if real else SIM_AGGREGATORS, utilities=1, tls=True, extra=extra,
                                    fast_db=fast_db)
        self.sim_nodes = 0 if real else sim_nodes
        self.sim = None
        self.nodes = []

    def start(self):
        cluster = self.cluster
        cluster.start_database()
        cluster.postgres.query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
        cluster.postgres.restart()
        cluster.sql("CREATE EXTENSION pg_stat_statements")
        cluster.start()
        if self.sim_nodes:
            settings = dict(QUIET)
            if self.prolog == "sample":
                settings.update(prolog=PROLOG, epilog=EPILOG)
            self.sim = cluster.start_sim(self.sim_nodes, settings=settings)
        want = self.sim_nodes or REAL_NODES
        cluster.wait_for(lambda: cluster.sql("SELECT count(*) FROM csm_node WHERE type = 'compute'")[0][0] == want,
                         timeout=600, interval=1.0, what="every compute's inventory")
        cluster.wait_for(lambda: self._primaries() == want, timeout=180, interval=1.0,
                         what="every compute connected")
        for attempt in range(5):  # the master may still be writing the nodes' aggregators
            try:
                cluster.sql("UPDATE csm_node SET state = 'IN_SERVICE' WHERE node_name IN (SELECT node_name "
                            "FROM csm_node WHERE type = 'compute' ORDER BY node_name FOR UPDATE)")
                break
            except psycopg2.errors.DeadlockDetected:
                if attempt == 4:
                    raise
        self.nodes = [row[0] for row in cluster.sql("SELECT node_name FROM csm_node WHERE type = 'compute' "
                                                    "ORDER BY node_name")]
        self._settle()
        return self

    def _settle(self, most=60):
        """Wait until the master's start-up writes (inventory, links, RAS) have stopped."""
        last, deadline = None, time.monotonic() + most
        while time.monotonic() < deadline:
            count = self.db_counts()[0]
            if count == last:
                return
            last = count
            time.sleep(2)

    def _primaries(self):
        total = 0
        for aggregator in self.cluster.by_role("aggregator"):
            status = self.cluster.status(aggregator.name)
            total += sum(1 for link in status["links"]
                         if link["name"].endswith("(PRIMARY)") and link["state"] == "HAPPY")
        return total

    def processes(self):
        """{name: [pids]} of the processes whose CPU is reported."""
        pids = {"master": [self.cluster.daemons["master"].process.pid],
                "utility": [self.cluster.daemons["util01"].process.pid],
                "aggregators": [d.process.pid for d in self.cluster.by_role("aggregator")],
                "postgres": postgres_pids(self.cluster)}
        if self.sim is not None:
            pids["csm-sim"] = [self.sim.pid]
        else:
            pids["computes"] = [d.process.pid for d in self.cluster.by_role("compute")]
        return pids

    def db_counts(self):
        """(statements, transactions) the master's user has run so far."""
        statements = self.cluster.sql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN pg_roles r "
                                      "ON r.oid = s.userid WHERE r.rolname = 'csmdb'")[0][0]
        transactions = self.cluster.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                                        "WHERE datname = 'csmdb'")[0][0]
        return int(statements), int(transactions)

    def run(self, clients, seconds, first_job, rate=None):
        nodes_file = os.path.join(self.cluster.run_dir, "nodes.txt")
        with open(nodes_file, "w") as f:
            f.write("\n".join(self.nodes) + "\n")
        procs = self.processes()
        hosts = procs.get("computes") or procs.get("csm-sim")
        before = {name: cpu_of(pids) for name, pids in procs.items()}
        before_scripts = cpu_of(hosts, children=True)
        statements, transactions = self.db_counts()
        began = time.monotonic()
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--load", "--socket",
                               self.cluster.daemons["util01"].socket, "--clients", str(clients), "--seconds",
                               str(seconds), "--nodes-file", nodes_file, "--first-job", str(first_job)]
                              + (["--rate", str(rate)] if rate else []),
                              stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, timeout=seconds + 300)
        wall = time.monotonic() - began
        time.sleep(2)  # the backends report their transactions within a second of going idle
        if proc.returncode != 0:
            raise RuntimeError("the load process exited %d" % proc.returncode)
        out = json.loads(proc.stdout.strip().splitlines()[-1])
        cpu = {name: 100.0 * (cpu_of(pids) - before[name]) / wall
               for name, pids in procs.items()}
        cpu["load"] = 100.0 * out["cpu"] / wall
        if self.prolog != "none":
            cpu["scripts"] = 100.0 * (cpu_of(hosts, children=True) - before_scripts) / wall
        # the bench's own statements ran as postgres; its two transactions are taken off
        statements_after, transactions_after = self.db_counts()
        out.update(cpu=cpu, wall=wall, load=os.getloadavg()[0], statements=statements_after - statements,
                   transactions=transactions_after - transactions - 2)
        return out

    def stop(self, keep=False):
        if self.sim is not None:
            self.cluster.stop_sim(self.sim)
            self.sim = None
        self.cluster.stop()
        if keep:
            print("bench/allocation_rate.py: logs are in %s" % self.cluster.run_dir, file=sys.stderr)
        else:
            shutil.rmtree(self.cluster.run_dir, ignore_errors=True)


def describe(setup, prolog, clients, out, sim_nodes, rate=None):
    pairs = out["pairs"]
    where = ("%d real computes" % REAL_NODES if setup == "real" else "%d simulated computes" % sim_nodes)
    ms = lambda values, pct: percentile(values, pct) * 1e3  # noqa: E731
    if rate:
        where += ", paced at %g pairs/s offered (create from its scheduled start)" % rate
    per = (lambda count: count / pairs) if pairs else (lambda count: float("nan"))
    cpu_ms = sum(out["cpu"].values()) * 10.0 * out["wall"]  # % of a core over the wall time -> ms
    line = ("%s, prolog %s, %d clients, %.0f s: %d pairs, %.1f pairs/s; create p50 %.1f ms, p99 %.1f ms; "
            "delete p50 %.1f ms, p99 %.1f ms; %d errors; per allocation %.1f statements, %.1f transactions, "
            "%.1f ms of CPU (%s); CPU %s; load average %.1f"
            % (where, prolog, clients, out["seconds"], pairs, pairs / out["seconds"], ms(out["create"], 50),
               ms(out["create"], 99), ms(out["delete"], 50), ms(out["delete"], 99), len(out["errors"]),
               per(out["statements"]), per(out["transactions"]), per(cpu_ms),
               "the scripts' processes counted" if "scripts" in out["cpu"] else "no scripts",
               ", ".join("%s %.0f%%" % item for item in out["cpu"].items()), out["load"]))
    if rate:
        line += ("; %d pairs were scheduled (%d done); create from its sending p50 %.1f ms, p99 %.1f ms; started "
                 "late (over 1 ms) %d of %d, p99 %.1f ms late"
                 % (math.ceil(out["scheduled_seconds"] * rate), pairs, ms(out["sent"], 50), ms(out["sent"], 99),
                    sum(1 for late in out["late"] if late > 1e-3), len(out["late"]), ms(out["late"], 99)))
    if out["errors"]:
        line += "; first error: %s" % out["errors"][0][:200]
    return line


def median_line(setup, prolog, clients, runs, sim_nodes):
    """The run of median pairs/s among ``runs`` (one tree, one client count), with every run's
    rate and the median CPU each process spent a pair."""
    rates = sorted(out["pairs"] / out["seconds"] for out in runs)
    where = "%d real computes" % REAL_NODES if setup == "real" else "%d simulated computes" % sim_nodes
    per_pair = {name: percentile([out["cpu"][name] * 10.0 * out["wall"] / max(1, out["pairs"]) for out in runs], 50)
                for name in runs[0]["cpu"]}
    return ("%s, prolog %s, %d clients, median of %d runs: %.1f pairs/s (runs %s); CPU a pair (ms, median): %s, "
            "all %.2f" % (where, prolog, clients, len(runs), percentile(rates, 50),
                          ", ".join("%.1f" % rate for rate in rates),
                          ", ".join("%s %.2f" % item for item in per_pair.items()), sum(per_pair.values())))


# -- Slurm -----------------------------------------------------------------------------


def slurm_rate(seconds, submitters=8, drain=60.0):
    """``sbatch --wrap true`` jobs/s: submitted by ``submitters`` at once for ``seconds``; the
    jobs finished by the time the queue is empty (or ``drain`` seconds later)."""
    from concurrent.futures import ThreadPoolExecutor

    from bench import slurm

    slurm.ensure_slurm()
    run_dir = tempfile.mkdtemp(prefix="csm-bench-sbatch-")
    os.chmod(run_dir, 0o755)
    cluster = slurm.Slurm(run_dir)

    def queued():
        out = subprocess.run(["squeue", "-h", "-o", "%i"], env=cluster.env, stdout=subprocess.PIPE, text=True)
        return len(out.stdout.split())
    try:
        cluster.start()
        deadline = time.monotonic() + seconds
        began = time.monotonic()

        def submit(_):
            count = 0
            while time.monotonic() < deadline:
                slurm.timed(["sbatch", "-N1", "-o", "/dev/null", "--wrap", "true"], env=cluster.env)
                count += 1
            return count
        with ThreadPoolExecutor(submitters) as pool:
            jobs = sum(pool.map(submit, range(submitters)))
        submitted = time.monotonic() - began
        left = queued()
        while left and time.monotonic() < began + submitted + drain:
            time.sleep(0.5)
            left = queued()
        ended = time.monotonic() - began
    finally:
        cluster.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    return ("Slurm `sbatch --wrap true` (bench/slurm.py's one-node Slurm, 2 CPUs), %d submitters for %.0f s: %d jobs "
            "submitted (%.1f/s); %d finished after %.1f s: %.1f jobs/s"
            % (submitters, seconds, jobs, jobs / submitted, jobs - left, ended, (jobs - left) / ended))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="real,sim")
    parser.add_argument("--prologs", default="none,sample")
    parser.add_argument("--clients", default="1,8,32,128")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1, help="run each client count this many times on the same "
                        "tree and print the median run too (one 10 s run varies by 20%% on a shared machine)")
    parser.add_argument("--rate", type=float, help="also run each client count paced: this many pairs/s offered")
    parser.add_argument("--sim-nodes", type=int, default=1024)
    parser.add_argument("--slurm", action="store_true")
    parser.add_argument("--fast-db", action="store_true", help="PostgreSQL without fsync (not durable)")
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--socket", help=argparse.SUPPRESS)
    parser.add_argument("--nodes-file", help=argparse.SUPPRESS)
    parser.add_argument("--first-job", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.clients = [int(n) for n in args.clients.split(",")]
    if args.load:
        return load_main(args)
    stop_on_signals()
    lines = []
    job = 1
    for setup in args.setups.split(","):
        for prolog in args.prologs.split(","):
            tree = Tree(setup, prolog, args.sim_nodes, args.fast_db)
            failed = True
            try:
                tree.start()
                for clients in args.clients:
                    for rate in (None, args.rate) if args.rate else (None,):
                        runs = []
                        for _ in range(max(1, args.repeat)):
                            runs.append(tree.run(clients, args.seconds, job, rate))
                            job += 10 ** 6
                            lines.append(describe(setup, prolog, clients, runs[-1], args.sim_nodes, rate))
                            print(lines[-1], flush=True)
                        if len(runs) > 1:
                            lines.append(median_line(setup, prolog, clients, runs, args.sim_nodes))
                            print(lines[-1], flush=True)
                failed = False
            finally:
                tree.stop(keep=failed)
    if args.slurm:
        lines.append(slurm_rate(args.seconds))
        print(lines[-1], flush=True)
    if args.record:
        lines.append("targets: no prolog, 128 clients, 1,024 simulated nodes: 500 pairs/s, create p99 under 100 ms "
                     "(at 500 pairs/s offered, paced); sample prolog, 8 real computes: 172 pairs/s (5 x 34.4)")
        command = "python bench/allocation_rate.py --setups %s --prologs %s --clients %s --seconds %g%s%s%s%s --record" % (
            args.setups, args.prologs, ",".join(map(str, args.clients)), args.seconds,
            " --repeat %d" % args.repeat if args.repeat > 1 else "",
            " --rate %g" % args.rate if args.rate else "", " --slurm" if args.slurm else "",
            " --fast-db" if args.fast_db else "")
        lines.insert(0, "PostgreSQL %s" % ("without fsync (--fast-db)" if args.fast_db else "durable (fsync, "
                                                                                         "synchronous_commit on)"))
        record("allocation_rate", command, lines)


if __name__ == "__main__":
    main()
