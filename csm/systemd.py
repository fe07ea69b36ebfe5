"""Readiness and stopping told to systemd (``Type=notify`` units in ``conf/systemd/``).

systemd names its notification socket in ``$NOTIFY_SOCKET``; without it (a daemon started by
hand, the tests, csm-sim) nothing is sent. ``READY=1`` goes once the daemon listens,
``STOPPING=1`` when it begins to stop.
"""

import os

from twisted.application import service
from twisted.internet import defer

from csm import logs

log = logs.logger("csmd")


def notifier_from_environment():
    """An ``sdnotify.SystemdNotifier`` on ``$NOTIFY_SOCKET``, or None where systemd gave none.

    The variable is taken out of the environment, so that prologs, epilogs and RAS actions the
    daemon starts do not speak for it."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return None
    import sdnotify
    notifier = sdnotify.SystemdNotifier()
    os.environ.pop("NOTIFY_SOCKET", None)
    if notifier.socket is None:
        log.warn("cannot reach systemd's notification socket: readiness will not be told")
        return None
    return notifier


class SystemdNotify(service.Service):
    """Tells systemd ``READY=1`` once the reactor runs and ``daemon.listening()`` has fired,
    ``STOPPING=1`` when stopped.

    Put after the daemon and the SIGTERM handler in the process's service tree: its readiness
    waits for the handlers installed when the reactor runs (a stop asked for at READY=1 is then
    a clean one), and it is stopped before the daemon, so STOPPING=1 goes out first."""

    def __init__(self, daemon, notifier, reactor):
        self.daemon = daemon
        self.notifier = notifier
        self.reactor = reactor
        self._ready = None

    def startService(self):
        super().startService()
        self.reactor.callWhenRunning(self._running)

    def _running(self):
        if self.running:
            self._ready = defer.maybeDeferred(self.daemon.listening)
            self._ready.addCallbacks(self._listening, self._failed)

    def _listening(self, _):
        self.notifier.notify("READY=1\nSTATUS=%s daemon %s listening\nMAINPID=%d"
                             % (self.daemon.role, self.daemon.node_name, os.getpid()))

    def _failed(self, failure):
        if not failure.check(defer.CancelledError):  # stopped before it listened
            log.error("not ready: {error}", error=failure.getErrorMessage())

    def stopService(self):
        super().stopService()
        if self._ready is not None and not self._ready.called:
            self._ready.cancel()
        self.notifier.notify("STOPPING=1")
