"""Run a node script (recovery, prolog, epilog) off the reactor, killed at its timeout."""

import os
import shutil
import signal

from twisted.internet import defer, error, protocol

SETSID = shutil.which("setsid")


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


def run_script(reactor, path, args=(), timeout=30.0, env=None, group=False):
    """Fires with (exit status, output); a script still running at ``timeout`` is killed (status 137).

    With ``group`` the script leads its own process group (``setsid``), and the
    kill reaches everything it started, so a child holding the output pipe open
    cannot outlive the timeout.
    """
    if not os.access(path, os.X_OK):
        return defer.succeed((127, "%s is missing or not executable" % path))
    done = defer.Deferred()
    argv = [path] + list(args)
    if group and SETSID:
        argv = [SETSID] + argv  # execs in place: the process we spawn becomes the group leader
    process = reactor.spawnProcess(_Collect(done), argv[0], argv, env=env or os.environ.copy())

    def kill():
        try:
            if group and SETSID:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.signalProcess(signal.SIGKILL)
        except (OSError, error.ProcessExitedAlready):
            pass  # it ended meanwhile
    timer = reactor.callLater(timeout, kill)

    def finished(result):
        if timer.active():
            timer.cancel()
        return result
    return done.addBoth(finished)
