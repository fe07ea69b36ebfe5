"""Control action scripts for RAS events (``csm.ras.action``).

A fired event whose type names a ``control_action`` runs
``<scriptdir>/<action> '<event as JSON>'`` with its output appended to
``<logdir>/<action>.log``. A script still running after ``timeout`` seconds is
killed. At most ``maxactions`` scripts wait or run at once; more are dropped
with a warning. FATAL events also run the ``fatal_event`` script (CAST reads
that setting but never calls it).
"""

import collections
import json
import os
import signal

from twisted.internet import defer, protocol

from csm import logs

log = logs.logger("csmras")


class _ScriptProtocol(protocol.ProcessProtocol):
    def __init__(self, output, done):
        self.output = output
        self.done = done

    def outReceived(self, data):
        self.output.write(data)

    errReceived = outReceived

    def processEnded(self, reason):
        self.output.close()
        self.done.callback(getattr(reason.value, "exitCode", None) or
                           (128 + reason.value.signal if getattr(reason.value, "signal", None) else 0))


class ActionRunner:
    """Runs control actions with a bound on how many and how long."""

    def __init__(self, reactor, config):
        self.reactor = reactor
        self.scriptdir = config.scriptdir
        self.logdir = config.logdir
        self.fatal_event = config.fatal_event
        self.maxactions = max(1, config.maxactions)
        self.timeout = config.timeout
        self.running = 0
        self.waiting = collections.deque()
        self.dropped = 0
        self.finished = []  # (action, exit status), the latest 100
        self.concurrency = 4

    def script_path(self, action):
        return action if os.path.isabs(action) else os.path.join(self.scriptdir, action)

    def run_for(self, event, control_action, severity):
        """Queue the actions an event calls for."""
        if control_action and control_action.upper() != "NONE":
            self.submit(control_action, event)
        if severity == "FATAL" and self.fatal_event and os.path.exists(self.script_path(self.fatal_event)):
            self.submit(self.fatal_event, event)

    def submit(self, action, event):
        if self.running + len(self.waiting) >= self.maxactions:
            self.dropped += 1
            log.warn("RAS action {action} dropped: {n} actions already queued (maxactions)",
                     action=action, n=self.maxactions)
            return
        self.waiting.append((action, event))
        self._next()

    def _next(self):
        while self.waiting and self.running < self.concurrency:
            action, event = self.waiting.popleft()
            self.running += 1
            d = self._run(action, event)
            d.addBoth(self._finished, action)

    def _finished(self, status, action):
        self.running -= 1
        self.finished = (self.finished + [(action, status)])[-100:]
        self._next()
        return status

    def _run(self, action, event):
        path = self.script_path(action)
        if not os.access(path, os.X_OK):
            log.error("RAS action {path} is missing or not executable", path=path)
            return defer.succeed(None)
        os.makedirs(self.logdir, exist_ok=True)
        output = open(os.path.join(self.logdir, os.path.basename(action) + ".log"), "ab")
        done = defer.Deferred()
        process = self.reactor.spawnProcess(_ScriptProtocol(output, done), path,
                                            [path, json.dumps(event, default=str)], env=os.environ.copy())
        timer = self.reactor.callLater(self.timeout, self._kill, process, action)

        def ended(status):
            if timer.active():
                timer.cancel()
            if status:
                log.warn("RAS action {action} exited with {status}", action=action, status=status)
            return status
        return done.addBoth(ended)

    def _kill(self, process, action):
        log.error("RAS action {action} still running after {timeout}s: killed", action=action,
                  timeout=self.timeout)
        try:
            process.signalProcess(signal.SIGKILL)
        except Exception:
            pass
