"""Short garbage collections in long-running processes: ``gc.freeze`` the settled heap.

A daemon under load promotes the objects of its requests in flight into the
oldest generation, so CPython runs a full collection about twice a second, and
each one walks every long-lived object (the master's: links, node tables,
modules): tens of milliseconds during which every request waits. Frozen
objects are left out of collections; objects that die are still freed by
their reference counts. ``HeapFreezer`` freezes the heap once the daemon has
settled (one full collection, then freeze) and refreshes it at twice the last
delay while the daemon's state builds up (30 s, 60 s, 120 s, ...), then every
``period``. A refresh while the state builds up freezes the survivors of a
young collection, not a full one: a full collection of an aggregator or the
master at 4,608 nodes takes 40-110 ms of CPU (0.1-0.6 s of wall time on a busy
machine), and those of 18-26 daemons on one machine, three each in their first
five minutes, were the slowest moments of ``bench/scale.py``'s queries; a
refresh at ``period`` unfreezes and collects everything once, so cyclic
garbage among frozen objects is reclaimed within the build-up and one period.
Each delay is stretched by a random factor of up to ``SPREAD``: daemons started
together would otherwise all collect in the same moment.

Between freezes a burst leaves its requests in flight alive (a master behind on
20,000 RAS events holds each one's Deferred and dicts): CPython then runs a full
collection every 10 young-generation collections while the backlog grows, each
walking the whole backlog (~0.1 s for 40,000 events). The freezer lets a full
collection come only every ``FULL_AFTER`` of them: cyclic garbage that reaches the
oldest generation waits longer to be freed (and the refresh frees it anyway).
"""

import gc
import random

from twisted.application import service

#: seconds after start before the first freeze (links up, nodes registered)
SETTLE = 30.0
#: seconds between refreshes: one full collection each
PERIOD = 600.0
#: each delay is stretched by a random factor between 1 and 1 + SPREAD
SPREAD = 0.5
#: middle-generation collections between two full ones (CPython's default: 10); in
#: ``bench/ras.py``'s flood the master's CPU per event went from 62 to 41 us
FULL_AFTER = 100


def freeze():
    """Collect once, then keep every live object out of later collections."""
    gc.collect()
    gc.freeze()


def freeze_survivors():
    """Collect the young generations, then freeze everything: no full collection, so no
    stall however large the heap; cyclic garbage already in the oldest generation stays."""
    gc.collect(1)
    gc.freeze()


def refreeze():
    """Put the frozen objects back, collect everything once, freeze what lives."""
    gc.unfreeze()
    freeze()


class HeapFreezer(service.Service):
    """Freezes the heap ``settle`` seconds after start, then after twice that delay each
    time up to ``period`` (each stretched by up to ``spread``); with ``full``, the first
    freeze and those at ``period`` collect in full, the others the young generations only."""

    def __init__(self, clock, settle=SETTLE, period=PERIOD, spread=SPREAD, random=random.random, full=True):
        self.clock = clock
        #: refresh with a full collection (``refreeze``), or freeze the survivors only
        self.full = full
        self.settle = settle
        self.period = period
        self.spread = spread
        self._random = random
        self.freezes = 0
        self._delay = settle
        self._call = None
        self._thresholds = None  # the collector's thresholds before startService

    def startService(self):
        super().startService()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], FULL_AFTER)
        self._delay = self.settle
        self._call = self.clock.callLater(self._stretched(), self._freeze)

    def stopService(self):
        super().stopService()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        if self._thresholds is not None:  # the process's collector as it was (tests run many daemons in one)
            gc.set_threshold(*self._thresholds)
            self._thresholds = None

    def _freeze(self):
        if gc.isenabled():
            full = self.full and (self.freezes == 0 or self._delay >= self.period)
            (refreeze if full else freeze_survivors)()
            self.freezes += 1
        self._delay = min(self.period, self._delay * 2)
        self._call = self.clock.callLater(self._stretched(), self._freeze)

    def _stretched(self):
        return self._delay * (1.0 + self.spread * self._random())
