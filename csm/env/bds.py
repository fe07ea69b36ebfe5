"""The aggregator's stream to the Big Data Store: JSON lines to Logstash's TCP input.

Records are queued with the time they were added. While Logstash is connected
and keeping up, they are written at once; while it is down or slow (the TCP
transport pauses us), they wait in the queue, and entries older than
``data_cache_expiration`` seconds are dropped with a count in the log. The
connection is retried 1 s after a failure, one second longer after each further
failure, up to ``reconnect_interval_max`` (CAST's schedule). Nothing here ever
blocks the aggregator.
"""

import collections
import json

from twisted.application.internet import ClientService
from twisted.internet import endpoints
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer
from twisted.internet.interfaces import IPushProducer

from csm import logs

log = logs.logger("csmenv")


def bds_line(record):
    """One record as the JSON line Logstash gets."""
    return json.dumps(record, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"


@implementer(IPushProducer)
class _BdsProtocol(Protocol):
    def __init__(self, sink):
        self.sink = sink
        self.paused = False

    def connectionMade(self):
        self.transport.registerProducer(self, True)
        self.sink._connected(self)

    def connectionLost(self, reason):
        self.sink._disconnected(self, reason)

    def dataReceived(self, data):
        pass  # Logstash says nothing

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        self.sink._flush()

    def stopProducing(self):
        self.paused = True


class BdsSink:
    """The queue and the reconnecting link to Logstash."""

    def __init__(self, reactor, config, clock=None, max_queue=1_000_000):
        self.clock = clock or reactor
        self.expiration = config.data_cache_expiration
        self.max_queue = max_queue
        self.queue = collections.deque()
        self.protocol = None
        self.sent = 0
        self.dropped = 0
        maximum = max(1, config.reconnect_interval_max)
        endpoint = endpoints.TCP4ClientEndpoint(reactor, config.host, config.port, timeout=1)
        self.service = ClientService(endpoint, Factory.forProtocol(lambda: _BdsProtocol(self)),
                                     retryPolicy=lambda attempt: min(1 + attempt, maximum), clock=self.clock)

    def add(self, records):
        """Queue records (dicts) for Logstash; written now if the link is free."""
        now = self.clock.seconds()
        for record in records:
            self.queue.append((now, bds_line(record)))
        self._expire(now)
        self._flush()

    def _expire(self, now):
        dropped = 0
        limit = now - self.expiration if self.expiration > 0 else None
        while self.queue and (len(self.queue) > self.max_queue or
                              (self.protocol is None or self.protocol.paused) and limit is not None
                              and self.queue[0][0] < limit):
            self.queue.popleft()
            dropped += 1
        if self.expiration <= 0 and self.protocol is None:
            dropped += len(self.queue)  # no caching: what cannot be sent now is gone
            self.queue.clear()
        if dropped:
            self.dropped += dropped
            log.warn("BDS unavailable: dropped {n} environmental records older than {s}s ({total} in all)",
                     n=dropped, s=self.expiration, total=self.dropped)

    def _flush(self):
        protocol = self.protocol
        if protocol is None:
            return
        lines = []
        while self.queue and not protocol.paused and len(lines) < 10000:
            lines.append(self.queue.popleft()[1])
        if lines:
            protocol.transport.write(b"".join(lines))
            self.sent += len(lines)
            if self.queue and not protocol.paused:
                self.clock.callLater(0, self._flush)

    def _connected(self, protocol):
        log.info("connected to the BDS; {n} records waiting", n=len(self.queue))
        self.protocol = protocol
        self._flush()

    def _disconnected(self, protocol, reason):
        if self.protocol is protocol:
            self.protocol = None
            log.warn("BDS connection lost: {reason}", reason=reason.getErrorMessage())

    def status(self):
        return {"connected": self.protocol is not None, "queued": len(self.queue), "sent": self.sent,
                "dropped": self.dropped}
