"""InfiniBand HCAs from ``/sys/class/infiniband`` and their PCI VPD."""

from csm.node.sysfs import decode, meaningful

_CLASS = "sys/class/infiniband"
_ID_STRING, _VPD_R, _VPD_W, _END = 0x02, 0x10, 0x11, 0x0F


def _vpd_keywords(body, fields):
    position = 0
    while position + 3 <= len(body):
        length = body[position + 2]
        keyword = body[position:position + 2].decode("ascii", "replace")
        fields[keyword] = decode(body[position + 3:position + 3 + length])
        position += 3 + length


def parse_vpd(data):
    """PCI VPD bytes as ``{"name": id string, "PN": ..., "SN": ..., ...}`` (PCI 3.0 §6.3)."""
    fields = {}
    position = 0
    while data and position < len(data):
        tag = data[position]
        if not tag & 0x80:  # small resource: 0b0nnnnlll
            if (tag >> 3) & 0x0F == _END:
                break
            position += 1 + (tag & 0x07)
            continue
        length = int.from_bytes(data[position + 1:position + 3], "little")
        body = data[position + 3:position + 3 + length]
        position += 3 + length
        if tag & 0x7F == _ID_STRING:
            fields["name"] = decode(body)
        elif tag & 0x7F in (_VPD_R, _VPD_W):
            _vpd_keywords(body, fields)
    return fields


def _hca(tree, name):
    base = "%s/%s/" % (_CLASS, name)
    vpd = parse_vpd(tree.read_bytes(base + "device/vpd", limit=32768))
    return {
        "serial_number": meaningful(vpd.get("SN")),
        "device_name": meaningful(vpd.get("name")) or name,
        "pci_bus_id": tree.pci_address(base + "device"),
        "guid": tree.read(base + "node_guid"),
        "part_number": meaningful(vpd.get("PN")),
        "fw_ver": tree.read(base + "fw_ver"),
        "hw_rev": tree.read(base + "hw_rev"),
        "board_id": tree.read(base + "board_id"),
        "switch_guid_port_1": None,
        "switch_guid_port_2": None,
    }


def hcas(tree):
    """One record per adapter card.

    The functions of a multi-port card share one VPD serial and are reported once, with
    the first function's PCI address and GUID.  The switch GUIDs need a fabric query
    (SMP), which sysfs cannot give: they stay None.
    """
    records, seen = [], set()
    for name in tree.listdir(_CLASS):
        record = _hca(tree, name)
        serial = record["serial_number"]
        if serial is None or serial not in seen:
            seen.add(serial)
            records.append(record)
    return records
