"""UFM inventory collection benchmark: 800 switches and 20,000 cables from the UFM stand-in.

    .venv/bin/python bench/ufm_inventory.py [--switches 800] [--cables 20000] [--record]

A private PostgreSQL (fsync on) with the CSM schema and the UFM stand-in
(tests/ufm_standin.py, HTTP on loopback, answers made once). The master's
periodic collection (``UfmCollectionService.collect``: two GETs with treq,
mapping, bad-record files, one transaction of the three collection functions)
runs first on an empty database, then with nothing changed, then with 1% of
the cables changed and 100 gone. Targets: first under 10 s, unchanged under 3 s.
With ``--api``, ``standalone_ib_and_switch_collection`` does the same twice
against a real master (its PostgreSQL fresh): UFM -> tool -> local socket ->
the three collection APIs.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twisted.internet import defer, reactor  # noqa: E402

from bench.results import QUIET, record, run_reactor, schema_server, stop_on_signals  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.config import DaemonConfig, InventoryConfig, UFMConfig  # noqa: E402
from csm.db.pool import DatabasePool  # noqa: E402
from csm.ufm import UfmClient  # noqa: E402
from csm.ufm_collection import UfmCollectionService, unchanged  # noqa: E402
from tests.ufm_standin import UfmStandIn  # noqa: E402


@defer.inlineCallbacks
def run(dsn, standin, out):
    pool = DatabasePool(None, reactor, dsn=dsn, size=2)
    yield pool.start()
    config = DaemonConfig(path="", role="master", node_name="master",
                          ufm=UFMConfig(rest_address=standin.address, rest_port=standin.port,
                                        ufm_ssl_file_path="/nonexistent", timeout=60),
                          inventory=InventoryConfig(tempfile.mkdtemp(prefix="csm-inv-"), {}))
    service = UfmCollectionService(reactor, reactor, pool, config)
    try:
        yield UfmClient(reactor, config.ufm).collect()  # the stand-in makes its answers once
        started = time.perf_counter()
        yield UfmClient(reactor, config.ufm).collect()
        out["fetch"] = time.perf_counter() - started
        for name, change in (("first", None), ("unchanged", None), ("changed", "1%")):
            if change:
                standin.gone = 100
                standin.severity = "Warning"  # every cable's severity: worst case of "changed"
            started = time.perf_counter()
            summary = yield service.collect()
            out[name] = time.perf_counter() - started
            out[name + "_summary"] = summary
    finally:
        pool.close()


def through_api(standin):
    """Seconds of the collection tool against a real master: empty database, then unchanged."""
    run_dir = tempfile.mkdtemp(prefix="csm-bench-ufm-")
    master = dict(QUIET, ufm={"rest_address": standin.address, "rest_port": standin.port,
                              "ufm_ssl_file_path": run_dir, "timeout": 60},
                  inventory={"csm_inv_log_dir": run_dir})
    cluster = LocalCluster(run_dir, computes=0, aggregators=0, utilities=0, tls=False, extra={"master": master})
    times = []
    try:
        cluster.start()
        command = [sys.executable, "-m", "csm.ufm_collection", "-c", cluster.daemons["master"].path]
        for _ in range(2):
            started = time.perf_counter()
            proc = subprocess.run(command, env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, text=True, timeout=300)
            times.append(time.perf_counter() - started)
            if proc.returncode:
                raise SystemExit("collection tool failed: %s" % proc.stdout)
    finally:
        cluster.stop()
    return times


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--switches", type=int, default=800)
    parser.add_argument("--cables", type=int, default=20000)
    parser.add_argument("--api", action="store_true", help="also through the tool and a real master")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]  # the machine is shared: say how busy it was
    standin = UfmStandIn(switches=args.switches, cables=args.cables, bad_switches=5, bad_cables=20).start()
    pg, dsn = schema_server()
    try:
        out = {}
        run_reactor(lambda: run(dsn, standin, out))
        [counts] = pg.query("SELECT (SELECT count(*) FROM csm_switch), (SELECT count(*) FROM csm_switch_inventory), "
                            "(SELECT count(*) FROM csm_ib_cable), (SELECT count(*) FROM csm_ib_cable_history), "
                            "(SELECT count(*) FROM csm_ib_cable WHERE missing_since IS NOT NULL)")
    finally:
        pg.stop()
    try:
        api = through_api(standin) if args.api else None
    finally:
        standin.stop()
    first, again = out["first_summary"], out["unchanged_summary"]
    lines = [
        "UFM collection, %d switches (%d modules) and %d cables (+%d bad records), empty database: %.2f s"
        % (args.switches, first["modules"]["inserted"], args.cables, first["bad_switches"] + first["bad_cables"],
           out["first"]),
        "the same again, nothing changed: %.2f s (%d cables unchanged, %d new, %d changed)"
        % (out["unchanged"], unchanged(again["cables"]), again["cables"]["inserted"], again["cables"]["updated"]),
        "every cable's severity changed, 100 cables gone: %.2f s" % out["changed"],
        "of which the two GETs, JSON decoding and mapping: %.2f s" % out["fetch"],
        "rows: %d switches, %d modules, %d cables, %d cable history rows, %d cables marked missing" % counts,
    ]
    lines.append("load average (1 min) when it started: %.1f on %d cores" % (load, os.cpu_count() or 0))
    if api:
        lines.append("standalone_ib_and_switch_collection through a real master's local socket (whole process): "
                     "empty database %.2f s, nothing changed %.2f s" % tuple(api))
    print("\n".join(lines))
    if args.record:
        record("ufm_inventory", " ".join(["python", "bench/ufm_inventory.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
