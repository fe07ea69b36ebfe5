"""What runs on a node: inventory collection and environmental items.

- ``inventory.collect_inventory(node_name, node_type, root="/", nvml=None, run=None)``:
  the node's full inventory as a JSON-able dict (blocking);
  ``inventory.collect_inventory_in_thread(...)`` runs it on the reactor's thread pool.
- ``items.node_items(root="/", nvml=None, run=None)``: the ``gpu``, ``environmental``,
  ``cpu`` and ``ssd`` items (objects with a blocking ``collect()``) by bucket item name;
  ``items.GpuXidWatcher(nvml)`` polls critical XID events.

Every reader is rooted at ``root`` (a fixture tree in tests), NVML is injectable (the
pynvml module or a stand-in) and privileged tools go through ``run(argv) -> bytes|None``.
A missing source gives None or an empty list and a log line (namespace ``csmd``).
"""
