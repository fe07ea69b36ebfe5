"""GPU XID errors become ``gpu.xid.<n>`` RAS events.

The watcher's NVML event set is polled with a zero wait every ``interval``
seconds, off the reactor thread. Where NVML or XID events are not supported the
service does nothing (one log line).
"""

from twisted.application import service
from twisted.application.internet import TimerService
from twisted.internet import defer, threads

from csm import logs

log = logs.logger("csmenv")


class XidService(service.MultiService):
    """Starts the watcher off the reactor thread; where it is supported, a child
    ``TimerService`` polls it every ``interval`` seconds."""

    name = "gpu-xid"

    def __init__(self, clock, watcher, raise_event, interval=5.0, run_blocking=None):
        super().__init__()
        self.clock = clock
        self.watcher = watcher
        self.raise_event = raise_event
        self.interval = interval
        self.run_blocking = run_blocking or threads.deferToThread

    def startService(self):
        super().startService()
        self.run_blocking(self.watcher.start).addCallback(self._started)

    def _started(self, supported):
        if not supported or not self.running:
            log.info("GPU XID events are not available on this node")
            return
        polling = TimerService(self.interval, self.poll)
        polling.clock = self.clock
        polling.setName("poll")
        polling.setServiceParent(self)  # started at once: this service runs

    def poll(self):
        return self.run_blocking(self.watcher.poll).addCallback(self._raise)

    def _raise(self, events):
        for gpu, xid, uuid in events:
            log.warn("GPU {gpu} ({uuid}): XID {xid}", gpu=gpu, uuid=uuid, xid=xid)
            self.raise_event("gpu.xid.%d" % xid, kvcsv="gpu_id=%s,uuid=%s,xid=%d" % (gpu, uuid, xid))

    def stopService(self):
        if not self.running:
            return None
        d = defer.maybeDeferred(super().stopService)
        d.addCallback(lambda _: [child.disownServiceParent() for child in list(self)])  # a new one at the next start
        return d.addCallback(lambda _: self.run_blocking(self.watcher.stop)).addErrback(lambda f: None)
