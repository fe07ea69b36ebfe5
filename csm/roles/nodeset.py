"""The master's view of the computes: which aggregators reach each one, and which is primary.

Aggregators report their compute links with NODESET_UPDATE. The master counts,
per compute, the aggregators that reach it (at most two) and raises CAST's
events on each change: 0->1 ``csm.status.up``, 1->2 ``csm.status.full_redundancy``,
2->1 ``csm.status.lost_redundancy``, 1->0 ``csm.status.down``. An aggregator's
link loss takes all its computes with it.
"""

import attrs
from twisted.internet import defer

STATUS_UP = "csm.status.up"
STATUS_DOWN = "csm.status.down"
FULL_REDUNDANCY = "csm.status.full_redundancy"
LOST_REDUNDANCY = "csm.status.lost_redundancy"


@attrs.define
class ComputeView:
    node: str
    #: aggregator node -> True when that aggregator is this compute's primary
    aggregators: dict = attrs.field(factory=dict)

    @property
    def primary(self):
        for aggregator, primary in self.aggregators.items():
            if primary:
                return aggregator
        return None

    @property
    def secondary(self):
        for aggregator, primary in self.aggregators.items():
            if not primary:
                return aggregator
        return None


class NodeSet:
    """Compute reachability on the master; ``on_event(msg_id, node, detail)`` gets the RAS events."""

    def __init__(self, on_event, on_change=None):
        self.computes = {}
        self.on_event = on_event
        #: called with the ComputeView when its primary or secondary aggregator changes
        self.on_change = on_change
        self._waiters = []

    def when_changed(self):
        """A Deferred that fires (with None) after the next report or aggregator loss."""
        d = defer.Deferred(lambda d: self._waiters.remove(d))
        self._waiters.append(d)
        return d

    def _changed(self):
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(None)

    def update(self, aggregator, entries, full=False):
        """Apply an aggregator's report: ``[{"node", "up": bool, "primary": bool}]``.

        With ``full`` the report is that aggregator's whole set: computes it no
        longer lists are taken as down on it.
        """
        if full:
            listed = {entry["node"] for entry in entries}
            for view in list(self.computes.values()):
                if aggregator in view.aggregators and view.node not in listed:
                    self._set(view.node, aggregator, None)
        for entry in entries:
            self._set(entry["node"], aggregator, bool(entry.get("primary")) if entry.get("up") else None)
        self._changed()

    def aggregator_lost(self, aggregator):
        for view in list(self.computes.values()):
            if aggregator in view.aggregators:
                self._set(view.node, aggregator, None)
        self._changed()

    def primary_of(self, node):
        view = self.computes.get(node)
        return view.primary if view else None

    def by_primary(self, nodes):
        """Split ``nodes`` by their primary aggregator; unreachable ones under None."""
        groups = {}
        for node in nodes:
            groups.setdefault(self.primary_of(node), []).append(node)
        return groups

    def _set(self, node, aggregator, primary):
        view = self.computes.get(node)
        if view is None:
            if primary is None:
                return
            view = self.computes[node] = ComputeView(node)
        before = len(view.aggregators)
        old = (view.primary, view.secondary)
        if primary is None:
            view.aggregators.pop(aggregator, None)
        else:
            if primary:
                for other in view.aggregators:
                    view.aggregators[other] = False
            view.aggregators[aggregator] = primary
        after = len(view.aggregators)
        if after == 0:
            del self.computes[node]
        event = {(0, 1): STATUS_UP, (1, 2): FULL_REDUNDANCY, (2, 1): LOST_REDUNDANCY,
                 (1, 0): STATUS_DOWN}.get((before, after))
        if event is not None:
            self.on_event(event, node, aggregator)
        if self.on_change is not None and (view.primary, view.secondary) != old:
            self.on_change(view)
