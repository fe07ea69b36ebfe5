"""Environmental buckets: each bucket's items collected every ``execution_interval``.

Each bucket is a ``TimerService`` on the daemon's clock whose first run is at the
next wall-clock multiple of its interval (a 10-minute bucket fires at :00, :10,
..., as CAST). Items run off the reactor thread (``deferToThread`` by default);
one item failing never stops its bucket, and its error is logged once, not on
every run. Records go to ``send(records)``.
"""

import time

from twisted.application import service
from twisted.application.internet import TimerService
from twisted.internet import defer, threads

from csm import logs

log = logs.logger("csmenv")


def first_delay(now, interval):
    """Seconds until the next multiple of ``interval`` since the epoch."""
    return interval - (now % interval) if interval > 0 else 0.0


class BucketService(service.MultiService):
    """Runs the configured buckets; ``items`` maps an item name to an object with ``collect()``.
    Each bucket is a child ``TimerService``, added at its first aligned run."""

    def __init__(self, clock, buckets, items, send, run_blocking=None, source=""):
        super().__init__()
        self.clock = clock
        self.buckets = [b for b in buckets if any(name in items for name in b.item_list)]
        self.items = items
        self.send = send
        self.source = source
        self.run_blocking = run_blocking or threads.deferToThread
        self.runs = {}
        self._starts = []
        self._failing = set()

    def startService(self):
        super().startService()
        now = self.clock.seconds()
        self._starts = [self.clock.callLater(first_delay(now, bucket.execution_interval), self._start, bucket)
                        for bucket in self.buckets]

    def _start(self, bucket):
        timer = TimerService(bucket.execution_interval, self.collect, bucket)
        timer.clock = self.clock
        timer.setServiceParent(self)  # runs at once (this service runs), then every interval

    def stopService(self):
        for call in self._starts:
            if call.active():
                call.cancel()
        self._starts = []
        d = defer.maybeDeferred(super().stopService)
        return d.addCallback(lambda _: [child.disownServiceParent() for child in list(self)])

    def collect(self, bucket):
        """Collect every item of one bucket; fires when the records were handed on."""
        names = [name for name in bucket.item_list if name in self.items]
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.clock.seconds())) + \
            ".%06d" % int((self.clock.seconds() % 1) * 1e6)
        calls = [self.run_blocking(self.items[name].collect).addCallbacks(
            self._collected, self._failed, callbackArgs=(name,), errbackArgs=(name,)) for name in names]
        d = defer.gatherResults(calls)

        def hand_on(results):
            records = []
            for name, found in zip(names, results):
                self.runs[name] = self.runs.get(name, 0) + 1
                for record in found:
                    records.append(dict(record, source=self.source, timestamp=stamp))
            if records:
                self.send(records)
            return records
        return d.addCallback(hand_on)

    def _collected(self, records, name):
        self._failing.discard(name)
        return list(records or [])

    def _failed(self, failure, name):
        if name not in self._failing:
            self._failing.add(name)
            log.warn("environmental item {name} failed: {error} (not repeated until it recovers)",
                     name=name, error=failure.getErrorMessage())
        return []
