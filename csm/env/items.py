"""Which environmental items a node runs, by the bucket item names of the config."""

import itertools


class DebugItem:
    """CAST's DEBUG item: a ``csm-test-env`` record with a sequence number (tests, demos)."""

    def __init__(self):
        self._seq = itertools.count(1)

    def collect(self):
        return [{"type": "csm-test-env", "data": {"seq": next(self._seq)}}]


def build_items(root="/", nvml=None):
    """``{item name: object with collect()}`` for the items this node can run."""
    return {"debug": DebugItem()}
