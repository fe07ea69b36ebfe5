"""Which environmental items a node runs, by the bucket item names of the config."""

import itertools

from csm.node.items import node_items


class DebugItem:
    """CAST's DEBUG item: a ``csm-test-env`` record with a sequence number (tests, demos)."""

    def __init__(self):
        self._seq = itertools.count(1)

    def collect(self):
        return [{"type": "csm-test-env", "data": {"seq": next(self._seq)}}]


def build_items(root="/", nvml=None):
    """``{item name: object with collect()}``: gpu, environmental, cpu, ssd and debug."""
    items = node_items(root=root, nvml=nvml)
    items["debug"] = DebugItem()
    return items
