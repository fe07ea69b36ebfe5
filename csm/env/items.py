"""Which environmental items a node runs, by the bucket item names of the config."""


def build_items(root="/", nvml=None):
    """``{item name: object with collect()}`` for the items this node can run."""
    return {}
