"""The aggregator's port for computes: a child service that listens only while the master is
reached (computes connect only to an aggregator that can serve them), behind admission
control, and tries again when the port is refused."""

from twisted.application import service
from twisted.internet import defer

from csm import logs
from csm.net.admission import HandshakeLimit
from csm.net.endpoints import server_endpoint

log = logs.logger("csmnet")

#: Seconds between attempts to open the compute port when it is refused.
LISTEN_RETRY = 1.0


class ComputePort(service.Service):
    """``open()`` when the master link is ready, ``close()`` when it is lost; a new listening
    port each time. ``wanted()`` says whether the port should be open (the master is up)."""

    name = "compute-port"

    def __init__(self, reactor, clock, endpoint, tls, factory, wanted):
        self.reactor = reactor
        self.clock = clock
        self.endpoint = endpoint
        self.tls = tls
        self.factory = factory
        self.wanted = wanted
        self.listener = None
        #: the admission control of the open port (None while closed)
        self.admission = None
        self.retry = None

    def open(self):
        self.retry = None
        if self.listener is not None or not self.wanted() or not self.running:
            return
        admission = HandshakeLimit(self.factory)
        listening = server_endpoint(self.reactor, self.endpoint, self.tls).listen(admission)
        listening.addCallbacks(lambda port: self._listening(port, admission), self._failed)

    def _listening(self, port, admission):
        self.listener = admission.listening(port)
        self.admission = admission
        log.info("accepting computes on {port}", port=self.endpoint.port)

    def _failed(self, failure):
        """E.g. the port is still held: try again shortly."""
        log.error("cannot listen for computes on {port}: {exc}; retrying in {s}s",
                  port=self.endpoint.port, exc=failure.getErrorMessage(), s=LISTEN_RETRY)
        self.retry = self.clock.callLater(LISTEN_RETRY, self.open)

    def close(self):
        if self.retry is not None and self.retry.active():
            self.retry.cancel()
        self.retry = None
        listener, self.listener = self.listener, None
        if self.admission is not None:
            self.admission.listening(None)
            self.admission = None
        return defer.maybeDeferred(listener.stopListening) if listener is not None else defer.succeed(None)

    def stopService(self):
        super().stopService()
        return self.close()
