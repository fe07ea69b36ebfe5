"""Sockets and cores from sysfs topology (``/proc/cpuinfo`` as the fallback)."""

from csm.node.commands import dmidecode
from csm.node.sysfs import meaningful, parse_fields

_CPUS = "sys/devices/system/cpu"


def _cpuinfo_topology(tree):
    packages = {}
    for block in (tree.read("proc/cpuinfo") or "").split("\n\n"):
        fields = parse_fields(block, ":")
        if fields.get("physical id", "").isdigit() and fields.get("core id", "").isdigit():
            packages.setdefault(int(fields["physical id"]), set()).add(int(fields["core id"]))
    return packages


def _packaged_cpus(tree):
    """``(topology dir, package id)`` of each online CPU."""
    for cpu in tree.listdir(_CPUS, r"cpu\d+"):
        topo = "%s/%s/topology/" % (_CPUS, cpu)
        package = tree.read_int(topo + "physical_package_id")
        if package is not None:
            yield topo, package


def topology(tree):
    """``{package id: set of core ids}`` over the online CPUs."""
    packages = {}
    for topo, package in _packaged_cpus(tree):
        core = tree.read_int(topo + "core_id")
        if core is not None:
            packages.setdefault(package, set()).add(core)
    return packages or _cpuinfo_topology(tree)


def _ppins(tree):
    """``{package id: PPIN}`` where the kernel exposes the processor inventory number."""
    ppins = {}
    for topo, package in _packaged_cpus(tree):
        ppin = meaningful(tree.read(topo + "ppin"))
        if ppin:
            ppins.setdefault(package, ppin)
    return ppins


def processors(tree, run, packages):
    """One record per socket: ``{serial_number, physical_location, discovered_cores}``.

    The serial is the PPIN when sysfs has one, else SMBIOS's (``dmidecode -t 4``); the
    location is SMBIOS's socket designation.  Populated SMBIOS sockets are matched to the
    packages in order.
    """
    ppins = _ppins(tree)
    sockets = [s for s in dmidecode(run, 4) if "Unpopulated" not in s.get("Status", "")]
    records = []
    for position, package in enumerate(sorted(packages)):
        smbios = sockets[position] if position < len(sockets) else {}
        records.append({
            "serial_number": ppins.get(package) or meaningful(smbios.get("Serial Number")),
            "physical_location": meaningful(smbios.get("Socket Designation")),
            "discovered_cores": len(packages[package]),
        })
    return records
