"""Shared by the benchmarks: percentiles and appending figures to bench/RESULTS.md."""

import os
import platform
import signal
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


#: Config settings that quiet every subcomponent's log to warnings (for ``LocalCluster`` extra).
QUIET = {"log.default_sev": "warning", "log.csmnet": "warning", "log.csmd": "warning", "log.csmras": "warning",
         "log.csmapi": "warning", "log.csmdb": "warning", "log.csmenv": "warning"}


def cpu_rss(pid):
    """(CPU seconds used, RSS in MB) of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rpartition(")")[2].split()
    with open("/proc/%d/status" % pid) as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss / 1024.0


def server_pids(server):
    """The private PostgreSQL's processes: its postmaster and the postmaster's children."""
    with open(os.path.join(server.data, "postmaster.pid")) as f:
        postmaster = int(f.readline())
    pids = [postmaster]
    for name in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/stat" % name) as f:
                if int(f.read().rpartition(")")[2].split()[1]) == postmaster:
                    pids.append(int(name))
        except OSError:
            pass  # ended meanwhile
    return pids


def pss_mb(pid):
    """A process's proportional set size in MB (shared pages split between their users, so the
    figures of a tree add up: PostgreSQL's shared buffers are counted once)."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Pss:")) / 1024.0


def percentile(values, pct):
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(pct / 100.0 * (len(ordered) - 1)))))
    return ordered[index]


def record(name, command, lines):
    """Append one run's figures, with the command that made them, to RESULTS.md."""
    new = not os.path.exists(RESULTS)
    with open(RESULTS, "a") as f:
        if new:
            f.write("# Benchmark results\n\nEach entry: the command, the machine, the figures.\n")
        f.write("\n## %s (%s)\n\n" % (name, time.strftime("%Y-%m-%d %H:%M")))
        f.write("- command: `%s`\n" % command)
        f.write("- machine: %s, %d cores, Python %s\n" % (platform.machine(), os.cpu_count() or 0,
                                                         platform.python_version()))
        for line in lines:
            f.write("- %s\n" % line)


def schema_server():
    """A private, durable PostgreSQL with CSM's schema installed: (server, dsn); ``stop()`` it."""
    import psycopg2

    from csm.db import schema
    from csm.db.embedded import EmbeddedPostgres

    server = EmbeddedPostgres(fast=False)
    dsn = server.start()
    try:
        connection = psycopg2.connect(dsn)
        with connection, connection.cursor() as cur:
            schema.install(cur)
        connection.close()
    except BaseException:
        server.stop()
        raise
    return server, dsn


def stop_on_signals():
    """SIGTERM and SIGINT raise ``SystemExit``, so that a benchmark's ``finally`` stops the
    cluster it started (by default SIGTERM ends Python at once); more of them while it
    stops are ignored."""
    def interrupted(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)


def run_reactor(function):
    """Run ``function()`` (returning a Deferred) on the reactor until it fires; return its result.

    A signal stops the reactor (its own handlers, meanwhile) and raises ``SystemExit`` here."""
    from twisted.internet import defer, reactor

    outcome = {}
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    d = defer.maybeDeferred(function)
    d.addCallbacks(lambda value: outcome.update(value=value), lambda failure: outcome.update(error=failure))
    d.addBoth(lambda _: reactor.stop())
    reactor.run()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    if "error" in outcome:
        outcome["error"].raiseException()
    if "value" not in outcome:
        raise SystemExit("interrupted")
    return outcome["value"]
