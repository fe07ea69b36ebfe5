"""Memory figures from ``/proc/meminfo`` and DIMMs from SMBIOS (``dmidecode -t 17``)."""

import re

from csm.node.commands import dmidecode
from csm.node.sysfs import meaningful

_SIZE = re.compile(r"^(\d+)\s*(kB|KB|MB|GB|TB)$")
_MIB = {"kB": 1.0 / 1024, "KB": 1.0 / 1024, "MB": 1, "GB": 1024, "TB": 1024 * 1024}


def meminfo(tree):
    """``/proc/meminfo`` as ``{name: KiB}``; entries that are not numbers are left out."""
    values = {}
    for name, value in tree.fields("proc/meminfo", ":").items():
        number = value.split()[0] if value else ""
        if number.isdigit():
            values[name] = int(number)
    return values


def dimm_size_mib(text):
    """``"32 GB"`` -> 32768; None for an empty slot or an unknown size."""
    match = _SIZE.match((text or "").strip())
    return int(int(match.group(1)) * _MIB[match.group(2)]) if match else None


def dimms(run):
    """Installed DIMMs: ``[{serial_number, size (MiB), physical_location}]``."""
    records = []
    for device in dmidecode(run, 17):
        size = dimm_size_mib(device.get("Size"))
        if size:
            records.append({"serial_number": meaningful(device.get("Serial Number")),
                            "size": size,
                            "physical_location": meaningful(device.get("Locator"))})
    return records
