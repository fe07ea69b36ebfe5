"""The master's write queue: writes nobody waits on (RAS events, inventory, environmental
data), run in order, up to ``BATCH`` a transaction, kept through a database outage.

Over the bound the oldest environmental entries waiting go first, then inventory (daemons
resend it); RAS events are never dropped, nor a write of the transaction running (or left
unsure): its outcome is the transaction's. The pool (``csm.db.pool``) owns one queue,
tells it when the database is back (``drain``) and settles a transaction left unsure
(``unsure``) before it drains again.
"""

import collections
import itertools

from twisted.internet import defer

from csm import logs
from csm.db.writes import BATCH, Attempt, BatchAborted, Write, run_batch
from csm.errors import CSMError, ErrorCode

log = logs.logger("csmdb")

DROP_ORDER = ("env", "inventory")


class WriteQueue:
    """Queued writes of one pool, written in order whenever the pool is connected."""

    def __init__(self, pool, max_queue=100000, on_overflow=None):
        self.pool = pool
        self.max_queue = max_queue
        self.on_overflow = on_overflow
        self.queue = collections.deque()
        self.dropped = collections.Counter()
        self.written = 0
        #: the Attempt whose connection went after its COMMIT was sent (the pool asks, once
        #: the database is back, whether it committed: ``Attempt.committed``)
        self.unsure = None
        self._numbers = itertools.count(1)
        self._backlog_until = 0  # the number of the last write queued while not connected
        #: writes at the head of the queue in the transaction running or left unsure: never dropped
        self._in_flight = 0
        self._draining = False

    def enqueue(self, kind, function, args, want_result=False):
        """Queue ``function(cursor, *args)``; with ``want_result`` the returned Deferred
        fires with its result once written (or fails with its error, or if dropped)."""
        write = Write(kind, function, args, defer.Deferred() if want_result else None, next(self._numbers))
        if not self.pool.connected:
            self._backlog_until = write.number
        self.queue.append(write)
        if len(self.queue) > self.max_queue:
            self._overflow()
        self.drain()
        return write.done

    @property
    def prompt(self):
        """A write queued now goes to the database at once: the pool is connected and has
        written what was queued during the last outage."""
        return self.pool.connected and not (self.queue and self.queue[0].number <= self._backlog_until)

    def _overflow(self):
        for kind in DROP_ORDER:
            for index, write in itertools.islice(enumerate(self.queue), self._in_flight, None):
                if write.kind == kind:
                    del self.queue[index]
                    write.finish(error=CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "dropped: write queue full"))
                    self.dropped[kind] += 1
                    if self.dropped[kind] == 1 or self.dropped[kind] % 1000 == 0:
                        log.warn("database write queue full ({max}): dropped {n} {kind} writes so far",
                                 max=self.max_queue, n=self.dropped[kind], kind=kind)
                    if self.on_overflow is not None:
                        self.on_overflow(kind, self.dropped[kind])
                    return
        # only RAS events left: they are kept, the bound is exceeded

    @defer.inlineCallbacks
    def drain(self):
        """Write the queue in order, up to ``BATCH`` writes a transaction (one savepoint each).

        A transaction whose connection went after its COMMIT was sent is looked up by the
        pool when the database is back: if it committed, its writes are not run again."""
        if self._draining:
            return
        self._draining = True
        try:
            while self.queue and self.pool.connected:
                attempt, self.unsure = self.unsure, None
                if attempt is not None and attempt.committed:
                    outcomes = attempt.outcomes  # asked when the connection came back
                else:
                    attempt = Attempt(list(itertools.islice(self.queue, BATCH)))
                    self._in_flight = len(attempt.batch)
                    try:
                        outcomes = yield self.pool.runInteraction(run_batch, attempt)
                    except BatchAborted as aborted:
                        # it fails alone; the writes before it were rolled back and run again next round
                        failed = attempt.batch[aborted.index]
                        self._in_flight = 0  # rolled back: the others wait again
                        self.queue.remove(failed)
                        log.error("queued {kind} write failed and is dropped: {error}", kind=failed.kind,
                                  error=aborted.error.errmsg)
                        failed.finish(error=aborted.error)
                        continue
                    except CSMError as exc:
                        if exc.errcode == ErrorCode.CSMERR_DAEMON_DB_ERR:
                            if attempt.outcomes is not None:
                                self.unsure = attempt
                            else:
                                self._in_flight = 0  # rolled back: its writes wait again
                            continue  # outage or no free connection: the batch stays at the head
                        outcomes = [(False, exc)] * len(attempt.batch)
                    except Exception as exc:  # a bug must not block the queue
                        outcomes = [(False, exc)] * len(attempt.batch)
                self._finish(attempt.batch, outcomes)
        finally:
            self._draining = False

    def _finish(self, batch, outcomes):
        self._in_flight = 0
        for write, (ok, value) in zip(batch, outcomes):
            if self.queue and self.queue[0] is write:
                self.queue.popleft()
            if ok:
                self.written += 1
                write.finish(value)
                continue
            if write.done is None:
                log.error("queued {kind} write failed and is dropped: {error}", kind=write.kind,
                          error=getattr(value, "errmsg", value))
            write.finish(error=value)

    def status(self):
        return {"db_queued_writes": len(self.queue), "db_dropped_writes": dict(self.dropped)}
