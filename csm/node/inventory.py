"""A node's full inventory (CAST's ``csm_full_inventory_t``) as a JSON-able dict.

``collect_inventory`` is blocking: it walks /proc and /sys, runs ``dmidecode`` and
``nvme`` and calls NVML.  A daemon runs it off the reactor with
``collect_inventory_in_thread`` (``deferToThread``).  A thread cannot be stopped half
way, so each reader is bounded instead: directory scans stop at ``sysfs.MAX_ENTRIES``,
file reads at ``sysfs.MAX_BYTES``, GPUs at ``nvml.MAX_GPUS`` and each command at the
runner's timeout (10 s).  Missing or unreadable sources give None fields and empty lists,
with a log line, never an exception.
"""

import datetime

from twisted.internet import threads
from twisted.logger import Logger

from csm.node import cpu, gpu, hca, identity, memory, storage
from csm.node.commands import CommandRunner
from csm.node.nvml import Nvml
from csm.node.sysfs import SysTree

log = Logger(namespace="csmd")

NODE_TYPES = ("compute", "utility", "aggregator")


def _gpus(module):
    nvml = Nvml(module)
    if not nvml.open():
        log.info("inventory: no GPUs reported, NVML unavailable ({error})", error=nvml.error)
        return []
    try:
        return gpu.gpus(nvml)
    finally:
        nvml.close()


def _note_missing(sections):
    missing = sorted(name for name, records in sections.items() if not records)
    if missing:
        log.info("inventory: nothing found for {sections}", sections=", ".join(missing))


def collect_inventory(node_name, node_type, root="/", nvml=None, run=None):
    """The inventory of the node whose filesystem is at ``root`` (blocking).

    ``nvml`` is the pynvml module or a stand-in (default: pynvml, imported lazily);
    ``run(argv) -> bytes | None`` runs privileged tools (default: ``CommandRunner()``).
    Returns ``{"node": {...}, "dimm": [...], "gpu": [...], "hca": [...], "ssd": [...],
    "processor": [...]}`` with sizes in KiB (memory, swap, hbm_memory), MiB (dimm) and
    bytes (ssd).
    """
    if node_type not in NODE_TYPES:
        raise ValueError("node type %r is not one of %s" % (node_type, ", ".join(NODE_TYPES)))
    tree = SysTree(root)
    run = run or CommandRunner()
    packages = cpu.topology(tree)
    sections = {
        "dimm": memory.dimms(run),
        "gpu": _gpus(nvml),
        "hca": hca.hcas(tree),
        "ssd": storage.ssds(tree, run),
        "processor": cpu.processors(tree, run, packages),
    }
    _note_missing(sections)
    meminfo = memory.meminfo(tree)
    model, serial = identity.machine(tree)
    release, version = identity.kernel(tree)
    image_name, image_uuid = identity.os_image(tree)
    node = {
        "node_name": node_name,
        "machine_model": model,
        "serial_number": serial,
        "collection_time": datetime.datetime.now().isoformat(timespec="microseconds"),
        "type": node_type,
        "kernel_release": release,
        "kernel_version": version,
        "installed_memory": meminfo.get("MemTotal"),
        "installed_swap": meminfo.get("SwapTotal"),
        "discovered_sockets": len(packages),
        "discovered_cores": sum(len(cores) for cores in packages.values()),
        "discovered_gpus": len(sections["gpu"]),
        "discovered_hcas": len(sections["hca"]),
        "discovered_dimms": len(sections["dimm"]),
        "discovered_ssds": len(sections["ssd"]),
        "os_image_name": image_name,
        "os_image_uuid": image_uuid,
    }
    return dict(node=node, **sections)


def collect_inventory_in_thread(node_name, node_type, root="/", nvml=None, run=None,
                                reactor=None, timeout=None):
    """``collect_inventory`` on the reactor's thread pool: a Deferred firing with the dict.

    With ``timeout`` (seconds) the Deferred fails with ``TimeoutError`` when the
    collection is not done in time; the thread still runs to its bounded end and its
    result is dropped.
    """
    if reactor is None:
        from twisted.internet import reactor
    result = threads.deferToThreadPool(reactor, reactor.getThreadPool(), collect_inventory,
                                       node_name, node_type, root=root, nvml=nvml, run=run)
    if timeout is not None:
        result.addTimeout(timeout, reactor)
    return result
