"""The master's database pool as a child service of the master.

Started with the master (or, with ``csm.ha``, by the election: ``Standby``). Added to the
master before its listeners, it stops after them (``Daemon.stopService`` stops children one
at a time, last added first), so the RAS events of the links closed at stop are queued
before the last writes are flushed, the pool closed, and the lease given up.
"""

from twisted.application import service
from twisted.internet import defer

from csm import logs

log = logs.logger("csmd")


def _queue_written(cursor):
    """The marker write of ``flush``: it runs once every write queued before it has."""


_queue_written.safe_in_batch = True


class DatabaseService(service.MultiService):
    """The pool's start and stop; its heartbeat is a child."""

    name = "database"

    def __init__(self, master, flush_timeout=3.0):
        super().__init__()
        self.master = master
        self.flush_timeout = flush_timeout
        master.db.heartbeat_service().setServiceParent(self)

    def startService(self):
        super().startService()
        master = self.master
        if master.standby is not None:
            master.standby.start()
        else:
            master.db.start().addErrback(self._failed)

    def _failed(self, failure):
        log.critical("cannot use the database: {error}", error=failure.getErrorMessage())
        self.master.reactor.stop()

    @defer.inlineCallbacks
    def stopService(self):
        yield super().stopService()
        master = self.master
        yield self.flush()
        master.db.close()
        master.ras.settle()  # the follow-ups of the last events written (event log lines, actions)
        if master.ras.event_log is not None:
            master.ras.event_log.close()
        if master.standby is not None:
            master.standby.stop()  # the lease last: the writes queued here went out first

    @defer.inlineCallbacks
    def flush(self):
        """Let queued writes (RAS events first of all) reach the database before exiting: a
        last write, queued behind them, fires when they are written (or an outage begins)."""
        db = self.master.db
        if db.queue and db.state == "connected":
            written = db.enqueue_write("ras", _queue_written, want_result=True)
            written = db.unless_outage(written, None).addTimeout(self.flush_timeout, self.master.clock)
            yield written.addErrback(lambda _: None)
        left = sum(1 for write in db.queue if write.function is not _queue_written)
        if left:
            log.error("exiting with {n} writes not in the database", n=left)
