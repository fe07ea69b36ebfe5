"""Admission control for a listening port: a bounded number of handshakes at a time.

A busy daemon that accepted every connection of a reconnect storm would run
thousands of TLS handshakes at once, each one slower than the hello deadline, and
drop them all. ``HandshakeLimit`` accepts while fewer than ``limit`` accepted
connections are still shaking hands (TLS and the hello), and stops reading the
listening socket otherwise: the rest wait in the kernel's listen backlog, their
deadlines not yet running, until a handshake finishes.
"""

from twisted.internet.protocol import Factory

from csm import logs

log = logs.logger("csmnet")

#: Connections between accept and their hello, at most (about: see ``HandshakeLimit``).
MAX_HANDSHAKES = 32


class HandshakeLimit(Factory):
    """Wraps the factory of ``LinkProtocol``s behind a port; give it the port with ``listening``.

    The reactor accepts up to ``port.numberAccepts`` connections per wake-up; that is kept
    to the free slots, so a burst passes ``limit`` by less than ``limit`` at worst.
    """

    def __init__(self, factory, limit=MAX_HANDSHAKES):
        self.factory = factory
        self.limit = limit
        self.shaking = 0
        self.port = None
        self.paused = False
        self.pauses = 0

    def listening(self, port):
        """``port`` (an ``IListeningPort`` with ``stopReading``/``startReading``) serves this factory."""
        self.port = port
        self.paused = False
        self._update()
        return port

    def startFactory(self):
        self.factory.doStart()

    def stopFactory(self):
        self.factory.doStop()
        self.port = None

    def buildProtocol(self, addr):
        protocol = self.factory.buildProtocol(addr)
        if protocol is None:
            return None
        self.shaking += 1
        protocol.when_ready().addBoth(self._done)
        self._update()
        return protocol

    def _done(self, _):
        self.shaking -= 1
        self._update()

    def _update(self):
        port = self.port
        if port is None:
            return
        free = self.limit - self.shaking
        if free <= 0:
            if not self.paused:
                self.paused = True
                self.pauses += 1
                port.stopReading()
                log.debug("{n} handshakes in progress: new connections wait in the backlog", n=self.shaking)
            return
        if hasattr(port, "numberAccepts"):
            port.numberAccepts = free
        if self.paused:
            self.paused = False
            port.startReading()
