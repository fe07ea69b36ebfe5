"""Node and processor readings: hwmon temperatures, RAPL power, memory use.

Types ``csm-processor-env`` (processor_id, processor_temp °C, processor_power W,
memory_power W) and ``csm-node-env`` (memory_total, memory_used, memory_available KiB).
"""

import re
import time

from csm.node.items.base import Item, record
from csm.node.memory import meminfo
from csm.node.sysfs import SysTree

_HWMON = "sys/class/hwmon/"
_POWERCAP = "sys/class/powercap/"
_PACKAGE_LABEL = re.compile(r"(?:package id|physical id|socket|chip)\s*(\d+)", re.IGNORECASE)
# Drivers with one hwmon device per socket and no socket number in their labels.
_PER_SOCKET = {"k10temp": ("Tdie", "Tctl"), "zenpower": ("Tdie", "Tctl")}
_RAPL_KEYS = {"package": "processor_power", "dram": "memory_power"}


def _temperatures(tree, hwmon):
    """``{label: °C}`` of one hwmon device."""
    readings = {}
    for name in tree.listdir(_HWMON + hwmon, r"temp\d+_input"):
        sensor = name[:-len("_input")]
        value = tree.read_int("%s%s/%s" % (_HWMON, hwmon, name))
        if value is not None:
            label = tree.read("%s%s/%s_label" % (_HWMON, hwmon, sensor)) or sensor
            readings[label] = value / 1000.0
    return readings


def package_temperatures(tree):
    """``{processor id: °C}``, the hottest package-level reading of each socket."""
    found = {}
    sockets_seen = 0
    for hwmon in tree.listdir(_HWMON, r"hwmon\d+"):
        readings = _temperatures(tree, hwmon)
        preferred = _PER_SOCKET.get(tree.read(_HWMON + hwmon + "/name"))
        if preferred:
            value = next((readings[label] for label in preferred if label in readings), None)
            pairs = [(sockets_seen, value)] if value is not None else []
            sockets_seen += 1
        else:
            matches = ((_PACKAGE_LABEL.match(label), value) for label, value in readings.items())
            pairs = [(int(match.group(1)), value) for match, value in matches if match]
        for processor, value in pairs:
            found[processor] = max(value, found.get(processor, value))
    return found


def _zone_name(tree, zone):
    return tree.read(_POWERCAP + zone + "/name") or ""


def rapl_zones(tree):
    """``[(zone, processor id, data key)]`` of the RAPL package and DRAM zones."""
    zones = []
    for zone in tree.listdir(_POWERCAP, r"intel-rapl:\d+(:\d+)?"):
        package = re.fullmatch(r"package-(\d+)", _zone_name(tree, ":".join(zone.split(":")[:2])))
        key = _RAPL_KEYS.get(_zone_name(tree, zone).split("-")[0])
        if package and key:
            zones.append((zone, int(package.group(1)), key))
    return zones


class EnvironmentalItem(Item):
    """Temperatures, power and memory of the node; power needs two calls (energy deltas)."""

    def __init__(self, root="/", clock=time.monotonic):
        super().__init__()
        self.tree = SysTree(root)
        self.clock = clock
        self.energy = {}  # zone -> (energy_uj, clock)

    def collect(self):
        processors = {}
        temperatures = package_temperatures(self.tree)
        if not temperatures:
            self.once("temperature", "env: no CPU package temperature sensors under {root}",
                      root=self.tree.root)
        for processor, value in temperatures.items():
            processors.setdefault(processor, {})["processor_temp"] = value
        self._power(processors)
        records = [record("csm-processor-env", dict(processor_id=processor, **data))
                   for processor, data in sorted(processors.items())]
        return records + self._memory()

    def _power(self, processors):
        zones = rapl_zones(self.tree)
        if not zones:
            self.once("rapl", "env: no RAPL energy counters under {root}", root=self.tree.root)
        for zone, processor, key in zones:
            watts = self._watts(zone)
            if watts is not None:
                processors.setdefault(processor, {})[key] = watts

    def _watts(self, zone):
        energy = self.tree.read_int(_POWERCAP + zone + "/energy_uj")
        if energy is None:
            self.once(("energy", zone), "env: RAPL zone {zone} has no readable energy_uj",
                      zone=zone)
            return None
        now = self.clock()
        previous = self.energy.get(zone)
        self.energy[zone] = (energy, now)
        if previous is None or now <= previous[1]:
            return None
        used = energy - previous[0]
        if used < 0:  # the counter wrapped
            used += self.tree.read_int(_POWERCAP + zone + "/max_energy_range_uj") or 0
        if used < 0:
            return None
        return round(used / (now - previous[1]) / 1e6, 3)

    def _memory(self):
        info = meminfo(self.tree)
        total = info.get("MemTotal")
        if total is None:
            self.once("meminfo", "env: no readable /proc/meminfo under {root}", root=self.tree.root)
            return []
        available = info.get("MemAvailable", info.get("MemFree", 0) + info.get("Buffers", 0)
                             + info.get("Cached", 0))
        return [record("csm-node-env", {"memory_total": total, "memory_used": total - available,
                                        "memory_available": available})]
