"""Solid-state disks from ``/sys/block`` and NVMe wear from ``nvme smart-log``."""

import json
import re

from csm.node.sysfs import decode, meaningful

_BLOCK = "sys/block"
_SKIP = re.compile(r"^(loop|ram|zram|dm-|md|sr|fd|nbd|nvme\d+c\d+n)")
_NVME_DATA_UNIT = 512 * 1000  # a "data unit" of the NVMe SMART log
WEAR_FIELDS = ("wear_lifespan_used", "wear_total_bytes_written", "wear_total_bytes_read",
               "wear_percent_spares_remaining")


def _vpd_serial(data):
    """The unit serial number of a SCSI VPD page 0x80."""
    if not data or len(data) < 4:
        return None
    return decode(data[4:4 + int.from_bytes(data[2:4], "big")])


def _number(log, *keys):
    for key in keys:
        value = log.get(key)
        if value is not None:
            try:
                return float(str(value).rstrip("%").replace(",", ""))
            except ValueError:
                return None
    return None


def nvme_wear(run, name):
    """Wear of an NVMe namespace (``nvme0n1``) from nvme-cli's JSON SMART log, or Nones."""
    raw = run(["nvme", "smart-log", "/dev/" + name, "--output-format=json"])
    try:
        log = json.loads(decode(raw) or "{}")
    except ValueError:
        log = {}
    log = log if isinstance(log, dict) else {}
    written = _number(log, "data_units_written")
    read = _number(log, "data_units_read")
    return {
        "wear_lifespan_used": _number(log, "percent_used", "percentage_used"),
        "wear_total_bytes_written": int(written * _NVME_DATA_UNIT) if written is not None else None,
        "wear_total_bytes_read": int(read * _NVME_DATA_UNIT) if read is not None else None,
        "wear_percent_spares_remaining": _number(log, "avail_spare", "available_spare"),
    }


def _is_ssd(tree, name):
    return not _SKIP.match(name) and tree.read_int("%s/%s/queue/rotational" % (_BLOCK, name)) != 1


def ssds(tree, run):
    """``[{serial_number, device_name, pci_bus_id, fw_ver, size (bytes), wear_*}]``.

    Skips loop, ram, device-mapper, md, optical and rotating disks.  Wear comes only from
    NVMe SMART logs; other disks report None.
    """
    records = []
    for name in (n for n in tree.listdir(_BLOCK) if _is_ssd(tree, n)):
        device = "%s/%s/device/" % (_BLOCK, name)
        sectors = tree.read_int("%s/%s/size" % (_BLOCK, name))
        record = {
            "serial_number": meaningful(tree.read(device + "serial")
                                        or _vpd_serial(tree.read_bytes(device + "vpd_pg80", 256))),
            "device_name": meaningful(tree.read(device + "model")),
            "pci_bus_id": tree.pci_address("%s/%s" % (_BLOCK, name)),
            "fw_ver": tree.read(device + "firmware_rev") or tree.read(device + "rev"),
            "size": sectors * 512 if sectors is not None else None,
        }
        wear = nvme_wear(run, name) if name.startswith("nvme") else {}
        record.update((field, wear.get(field)) for field in WEAR_FIELDS)
        records.append(record)
    return records
