"""Run a node script (recovery, prolog, epilog) off the reactor, killed at its timeout."""

import os
import signal

from twisted.internet import defer, protocol


class _Collect(protocol.ProcessProtocol):
    def __init__(self, done):
        self.done = done
        self.output = []

    def outReceived(self, data):
        if sum(len(chunk) for chunk in self.output) < 65536:
            self.output.append(data)

    errReceived = outReceived

    def processEnded(self, reason):
        value = reason.value
        code = value.exitCode if value.exitCode is not None else 128 + (value.signal or 0)
        self.done.callback((code, b"".join(self.output).decode("utf-8", "replace")))


def run_script(reactor, path, args=(), timeout=30.0, env=None):
    """Fires with (exit status, output); a script still running at ``timeout`` is killed (status 137)."""
    if not os.access(path, os.X_OK):
        return defer.succeed((127, "%s is missing or not executable" % path))
    done = defer.Deferred()
    process = reactor.spawnProcess(_Collect(done), path, [path] + list(args), env=env or os.environ.copy())
    timer = reactor.callLater(timeout, lambda: process.signalProcess(signal.SIGKILL))

    def finished(result):
        if timer.active():
            timer.cancel()
        return result
    return done.addBoth(finished)
