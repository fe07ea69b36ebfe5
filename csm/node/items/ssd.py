"""SSD wear (type ``csm-ssd-wear``), sent by the aggregator to the master's ssd_wear_update."""

from csm.node.commands import CommandRunner
from csm.node.items.base import Item, record
from csm.node.storage import WEAR_FIELDS, ssds
from csm.node.sysfs import SysTree


class SsdItem(Item):
    """One record per SSD with a serial number and some wear figure."""

    def __init__(self, root="/", run=None):
        super().__init__()
        self.tree = SysTree(root)
        self.run = run or CommandRunner()

    def collect(self):
        disks = ssds(self.tree, self.run)
        if not disks:
            self.once("none", "env ssd: no SSDs under {root}", root=self.tree.root)
        records = []
        for disk in disks:
            wear = {field: disk[field] for field in WEAR_FIELDS}
            if disk["serial_number"] is None or all(value is None for value in wear.values()):
                self.once(("wear", disk["serial_number"], disk["device_name"]),
                          "env ssd: no wear data for {name} ({serial})",
                          name=disk["device_name"], serial=disk["serial_number"])
                continue
            wear["serial_number"] = disk["serial_number"]
            records.append(record("csm-ssd-wear", wear))
        return records
