"""The link heartbeat: HAPPY -> UNSURE -> MISSING_RECV -> DEAD.

With interval I, a link that hears nothing is probed at I and again 1.25 I later,
and declared dead 1.25 I after that: about 3.5 I after the last message, as CAST.
Receiving costs one attribute store; the timer reschedules itself lazily, to a
random point within ``JITTER``/2 I of the interval, so links do not stay in step,
and rounded up to a ``GRAIN`` grid, so a process with thousands of links wakes
for their checks in batches instead of once per link. Each process's grid is
shifted by a random share of a grain (``OFFSET``): on one grid for all, csm-sim
and the aggregators (17 processes at 4,608 nodes) all woke in the same instant
ten times a second, and answering each other's probes kept them busy for 30 ms
of every 100 (0.25 cores then, under 0.05 the rest), the master's and the
utility's queries waiting meanwhile.

A check that finds traffic other than heartbeats (``received(traffic=True)``)
sets the next one between ``1 - SPREAD`` and 1 interval after it, not at the
interval: a request to every node (a health check, a multicast) is heard by all
their links in the same moment, and with the next check at I after it they all
probed within 1.5 s of each other every interval after, for hours (the jitter
moves a link's phase by 0.4 s an interval). At 4,608 nodes those waves took a
whole core of the two for 2-3 s every 15 s. A dead peer is still declared at
most 3.55 I (and the grid) after the last message, sooner after traffic.
"""

import enum
import math
import random


class HeartbeatState(enum.Enum):
    HAPPY = "HAPPY"
    UNSURE = "UNSURE"
    MISSING_RECV = "MISSING_RECV"
    DEAD = "DEAD"


MIN_INTERVAL = 3
MAX_INTERVAL = 3600
_GRACE = 1.25
#: After traffic the next check comes between (1 - JITTER/2) I and (1 + JITTER/2) I. Links that one
#: busy process answered together (an aggregator with its 288 computes, after a burst)
#: would otherwise keep the same period and phase, and the bursts absorb the links
#: behind them: heartbeats go out in a few large clumps per interval.
JITTER = 0.1
#: After traffic other than heartbeats the next check comes between (1 - SPREAD) I and I.
SPREAD = 0.5
#: Checks fall on a grid of this many seconds: a process wakes for its checks at most this often
#: (0.02 s cost csm-sim and each aggregator a third more CPU at idle).
GRAIN = 0.1
#: This process's grid starts this share of a grain after the clock's: processes do not line up.
OFFSET = random.random()


class Heartbeat:
    """The per-link timer.

    ``send_probe()`` is called when a probe heartbeat should go out and
    ``on_dead()`` once when the peer is declared dead.
    """

    def __init__(self, clock, interval, send_probe, on_dead, jitter=JITTER, random=random.random, grain=GRAIN,
                 offset=None):
        self.clock = clock
        self.interval = interval
        self.jitter = jitter
        self.grain = grain
        #: seconds from the clock's grid to this one (the process's ``OFFSET`` unless given)
        self.offset = grain * OFFSET if offset is None else offset
        self._random = random
        self.state = HeartbeatState.HAPPY
        self._send_probe = send_probe
        self._on_dead = on_dead
        self._last = None
        self._fresh = False
        self._traffic = False
        self._probe_next = False
        self._call = None

    def start(self, phase=1.0):
        """Start timing; the first check comes after ``phase`` intervals (0 < phase <= 1) and
        probes even if the peer's hello came meanwhile: its answer sets the link's phase.

        Links made in one burst (a reconnect storm) would otherwise probe in step
        for ever: a random phase spreads their heartbeats over the interval.
        """
        self._last = self.clock.seconds()
        self._probe_next = True
        self._schedule(self._last + self.interval * phase)

    def stop(self):
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def received(self, traffic=False):
        """Anything came from the peer (``traffic``: more than heartbeats)."""
        self._last = self.clock.seconds()
        self._fresh = True
        if traffic:
            self._traffic = True
        if self.state is not HeartbeatState.HAPPY and self.state is not HeartbeatState.DEAD:
            self.state = HeartbeatState.HAPPY

    def peer_interval(self, interval):
        """The pair uses the smaller of the two intervals."""
        if MIN_INTERVAL <= interval < self.interval:
            old, self.interval = self.interval, interval
            if self._probe_next and self._call is not None:  # keep the first probe's phase
                now = self.clock.seconds()
                self._schedule(now + (self._call.getTime() - now) * interval / old)
            elif self.state is HeartbeatState.HAPPY and self._last is not None:
                self._schedule(self._last + interval)

    def _schedule(self, when):
        self.stop()
        if self.grain:
            when = math.ceil((when - self.offset) / self.grain) * self.grain + self.offset
        self._call = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._fire)

    def _fire(self):
        self._call = None
        now = self.clock.seconds()
        if self._fresh and not self._probe_next:
            self._fresh = False
            self.state = HeartbeatState.HAPPY
            if self._traffic:
                self._traffic = False
                share = 1.0 - SPREAD * self._random()
            else:
                share = 1.0 + self.jitter * (self._random() - 0.5)
            self._schedule(max(now, self._last + self.interval * share))
            return
        self._fresh = self._probe_next = self._traffic = False
        if self.state is HeartbeatState.HAPPY:
            self.state = HeartbeatState.UNSURE
        elif self.state is HeartbeatState.UNSURE:
            self.state = HeartbeatState.MISSING_RECV
        else:
            self.state = HeartbeatState.DEAD
            self._on_dead()
            return
        self._send_probe()
        self._schedule(now + self.interval * _GRACE)
