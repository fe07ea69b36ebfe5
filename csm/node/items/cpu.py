"""CPU utilisation from successive ``/proc/stat`` snapshots (type ``csm-cpu-util``)."""

from csm.node.items.base import Item, record
from csm.node.sysfs import SysTree

# /proc/stat columns of the "cpu" line; guest time is already counted in user and nice.
_COLUMNS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def cpu_times(tree):
    """The aggregate ``cpu`` line of ``/proc/stat`` as ``{column: ticks}``, or None."""
    for line in (tree.read("proc/stat") or "").splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            try:
                return dict(zip(_COLUMNS, map(int, fields[1:1 + len(_COLUMNS)])))
            except ValueError:
                return None
    return None


class CpuItem(Item):
    """Percent of CPU time busy (and per state) since the previous ``collect``.

    The first call only takes the baseline and returns no record.
    """

    def __init__(self, root="/"):
        super().__init__()
        self.tree = SysTree(root)
        self.previous = None

    def collect(self):
        times = cpu_times(self.tree)
        if times is None:
            self.once("stat", "env cpu: no readable /proc/stat under {root}", root=self.tree.root)
            return []
        previous, self.previous = self.previous, times
        if previous is None:
            return []
        delta = {column: times.get(column, 0) - previous.get(column, 0) for column in times}
        total = sum(delta.values())
        if total <= 0:
            return []
        share = {column: round(100.0 * delta[column] / total, 2) for column in delta}
        idle = delta.get("idle", 0) + delta.get("iowait", 0)
        data = {"cpu_utilization": round(100.0 * (total - idle) / total, 2)}
        data.update(("%s_percent" % column, share.get(column, 0.0))
                    for column in ("user", "system", "iowait", "idle"))
        return [record("csm-cpu-util", data)]
