"""GPU XID errors become ``gpu.xid.<n>`` RAS events.

The watcher's NVML event set is polled with a zero wait every ``interval``
seconds, off the reactor thread. Where NVML or XID events are not supported the
service does nothing (one log line).
"""

from twisted.application import service
from twisted.internet import task, threads

from csm import logs

log = logs.logger("csmenv")


class XidService(service.Service):
    def __init__(self, clock, watcher, raise_event, interval=5.0, run_blocking=None):
        self.clock = clock
        self.watcher = watcher
        self.raise_event = raise_event
        self.interval = interval
        self.run_blocking = run_blocking or threads.deferToThread
        self._loop = None

    def startService(self):
        super().startService()
        self.run_blocking(self.watcher.start).addCallback(self._started)

    def _started(self, supported):
        if not supported or not self.running:
            log.info("GPU XID events are not available on this node")
            return
        self._loop = task.LoopingCall(self.poll)
        self._loop.clock = self.clock
        self._loop.start(self.interval, now=True).addErrback(lambda f: log.failure("XID polling stopped", f))

    def poll(self):
        return self.run_blocking(self.watcher.poll).addCallback(self._raise)

    def _raise(self, events):
        for gpu, xid, uuid in events:
            log.warn("GPU {gpu} ({uuid}): XID {xid}", gpu=gpu, uuid=uuid, xid=xid)
            self.raise_event("gpu.xid.%d" % xid, kvcsv="gpu_id=%s,uuid=%s,xid=%d" % (gpu, uuid, xid))

    def stopService(self):
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        return self.run_blocking(self.watcher.stop).addErrback(lambda f: None) if self.running else None
