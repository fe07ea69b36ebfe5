"""Database benchmark: inventory upsert of a Summit-size cluster, and node queries per second.

    .venv/bin/python bench/db.py [--nodes 4608] [--queries 20000] [--record]

A private PostgreSQL (fsync on, as a site would run it) with the CSM schema;
every node reports 2 sockets, 6 GPUs, 16 DIMMs, 2 HCAs and 1 SSD, upserted
by ``upsert_node_inventory``: first in one transaction per node (a
``runInteraction`` each, as many in flight as the pool has connections), then
for other node names through the master's write queue (in order, up to 200
nodes a transaction with a savepoint each), then those reports again with
only collection_time changed. Then single-node attribute queries (the
csm_node_attributes_query SQL) through the pool, 32 at a time.
"""

import argparse
import datetime
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twisted.internet import defer, reactor  # noqa: E402

from bench.results import record, run_reactor, schema_server, stop_on_signals  # noqa: E402
from csm.api.node import NODE_SELECT  # noqa: E402
from csm.db.inventory import upsert_node_inventory  # noqa: E402
from csm.db.pool import DatabasePool  # noqa: E402


def inventory(n, prefix="c"):
    name = "%s%05d" % (prefix, n)
    now = datetime.datetime.now().isoformat()
    return {
        "node": {"node_name": name, "machine_model": "8335-GTW", "serial_number": "S%05d" % n,
                 "collection_time": now, "type": "compute", "kernel_release": "4.18.0",
                 "kernel_version": "#1 SMP", "installed_memory": 512 * 1024 * 1024, "installed_swap": 0,
                 "discovered_sockets": 2, "discovered_cores": 44, "discovered_gpus": 6, "discovered_hcas": 2,
                 "discovered_dimms": 16, "discovered_ssds": 1, "os_image_name": "rhel8", "os_image_uuid": "u"},
        "processor": [{"serial_number": "%s-p%d" % (name, i), "physical_location": "socket %d" % i,
                       "discovered_cores": 22} for i in range(2)],
        "gpu": [{"gpu_id": i, "serial_number": "%s-g%d" % (name, i), "device_name": "Tesla V100",
                 "pci_bus_id": "0000:%02x:00.0" % i, "uuid": "GPU-%s-%d" % (name, i), "vbios": "88.00",
                 "inforom_image_version": "G503", "hbm_memory": 16 * 1024 * 1024} for i in range(6)],
        "dimm": [{"serial_number": "%s-d%d" % (name, i), "size": 32768, "physical_location": "DIMM %d" % i}
                 for i in range(16)],
        "hca": [{"serial_number": "%s-h%d" % (name, i), "device_name": "ConnectX-5", "pci_bus_id": "0000:%02x:00.0" % (i + 8),
                 "guid": "0x%016x" % (n * 4 + i), "part_number": "MCX556", "fw_ver": "16.27", "hw_rev": "0",
                 "board_id": "MT_0000000010"} for i in range(2)],
        "ssd": [{"serial_number": "%s-s0" % name, "device_name": "nvme0n1", "pci_bus_id": "0000:10:00.0",
                 "fw_ver": "1.0", "size": 1600 * 10 ** 9, "wear_lifespan_used": 1.0,
                 "wear_total_bytes_written": 10 ** 12, "wear_total_bytes_read": 10 ** 12,
                 "wear_percent_spares_remaining": 100.0}],
    }


def queued(pool, reports):
    return defer.gatherResults([pool.enqueue_write("inventory", upsert_node_inventory, r, want_result=True)
                                for r in reports])


def per_node(pool, reports):
    sem = defer.DeferredSemaphore(pool.size)
    return defer.gatherResults([sem.run(pool.runInteraction, upsert_node_inventory, r) for r in reports])


@defer.inlineCallbacks
def timed(out, key, write, pool, reports):
    start = time.perf_counter()
    yield write(pool, reports)
    out[key] = time.perf_counter() - start


@defer.inlineCallbacks
def run(dsn, nodes, queries, out):
    pool = DatabasePool(None, reactor, dsn=dsn, size=8)
    yield pool.start()
    yield timed(out, "upsert_per_node", per_node, pool, [inventory(n) for n in range(nodes)])
    reports = [inventory(n, "q") for n in range(nodes)]
    yield timed(out, "upsert_queued", queued, pool, reports)
    for r in reports:  # the same inventory again: a master restart storm, nothing changed
        r["node"]["collection_time"] = datetime.datetime.now().isoformat()
    yield timed(out, "upsert_again", queued, pool, reports)
    sql = NODE_SELECT + " WHERE node_name = %s"
    names = ["c%05d" % (i % nodes) for i in range(queries)]
    start = time.perf_counter()
    sem = defer.DeferredSemaphore(32)
    yield defer.gatherResults([sem.run(pool.runQuery, sql, (name,)) for name in names])
    out["queries_per_s"] = queries / (time.perf_counter() - start)
    pool.close()


def main():
    stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=4608)
    parser.add_argument("--queries", type=int, default=20000)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    pg, dsn = schema_server()
    try:
        out = {}
        run_reactor(lambda: run(dsn, args.nodes, args.queries, out))
        [counts] = pg.query("SELECT (SELECT count(*) FROM csm_node), (SELECT count(*) FROM csm_dimm), "
                            "(SELECT count(*) FROM csm_gpu_history)")
    finally:
        pg.stop()
    lines = [
        "inventory upsert, %d nodes x (2 sockets, 6 GPUs, 16 DIMMs, 2 HCAs, 1 SSD), first sight, "
        "one transaction per node (8 connections): %.1f s" % (args.nodes, out["upsert_per_node"]),
        "%d other nodes, first sight, through the master's write queue: %.1f s" % (args.nodes, out["upsert_queued"]),
        "those %d reports again (collection_time changed, children unchanged): %.1f s"
        % (args.nodes, out["upsert_again"]),
        "rows: %d nodes, %d DIMMs, %d GPU history rows (no history for unchanged children)" % counts,
        "single-node attribute queries through the pool (32 in flight): %.0f/s" % out["queries_per_s"],
    ]
    print("\n".join(lines))
    if args.record:
        record("db", " ".join(["python", "bench/db.py"] + sys.argv[1:]), lines)


if __name__ == "__main__":
    main()
