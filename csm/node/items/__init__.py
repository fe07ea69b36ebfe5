"""Per-node environmental items, each an object with a blocking ``collect()``.

``node_items`` gives them by their CAST bucket item names; ``GpuXidWatcher`` polls XID
events for RAS.
"""

from csm.node.items.cpu import CpuItem
from csm.node.items.environmental import EnvironmentalItem
from csm.node.items.gpu import GpuItem, GpuXidWatcher
from csm.node.items.ssd import SsdItem

__all__ = ["CpuItem", "EnvironmentalItem", "GpuItem", "GpuXidWatcher", "SsdItem", "node_items"]


def node_items(root="/", nvml=None, run=None):
    """``{"gpu", "environmental", "cpu", "ssd": item}`` over the tree at ``root``."""
    return {
        "gpu": GpuItem(nvml),
        "environmental": EnvironmentalItem(root),
        "cpu": CpuItem(root),
        "ssd": SsdItem(root, run),
    }
