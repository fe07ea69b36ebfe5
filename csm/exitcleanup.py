"""Cleanup that runs at exit and also when the process is told to stop by SIGTERM, SIGINT or SIGHUP.

``atexit`` does not run when a signal ends a process: a test worker killed by CI's timeout or a
developer's Ctrl-C left its PostgreSQL, Slurm, twistd daemons and temporary folders behind. What
starts processes or makes folders registers its stop here; on one of those signals the handler
runs every registered call (newest first) and the process then dies of the same signal.

A signal is taken only where its handler is Python's default (or a reactor's): a program's own (a benchmark's
``stop_on_signals``, the demo's SIGTERM) is left alone and the calls run at its exit. On SIGINT the
calls run and then ``KeyboardInterrupt`` is raised as before (a program that catches it goes on
with its own stop). The handlers are installed at the first ``register`` and the previous ones are
put back once nothing is registered any more. Twisted's reactor takes SIGTERM again each time it starts
running (trial runs it once a test), and its handler only queues a stop: one that is imported
when a call is registered gets ours as its ``sigTerm`` meanwhile, so a trial worker killed in
the middle of a blocking wait cleans up too.
"""

import atexit
import os
import signal
import sys
import threading
import time

SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

_calls = []
_previous = {}


def register(function, *args):
    """Run ``function(*args)`` at exit or on one of ``SIGNALS``, whichever comes first (once, however
    often it is registered)."""
    if (function, args) not in _calls:
        _calls.append((function, args))
        atexit.register(function, *args)
    if threading.current_thread() is not threading.main_thread():
        return  # only the main thread may set handlers; a call from another runs at the main thread's
    reactor = sys.modules.get("twisted.internet.reactor")
    for signum in SIGNALS:
        handler = signal.getsignal(signum)
        if handler in (signal.SIG_DFL, signal.default_int_handler) or (
                reactor is not None and getattr(handler, "__self__", None) is reactor):
            _previous[signum] = handler
            signal.signal(signum, _on_signal)
    if reactor is not None and "sigTerm" not in vars(reactor):
        reactor.sigTerm = _on_signal  # bound into the handlers at its next start


def unregister(function):
    """Forget ``function`` (its owner cleaned up itself); the previous handlers return with the last."""
    _calls[:] = [call for call in _calls if call[0] != function]
    atexit.unregister(function)
    if not _calls:
        restore()


def restore():
    """Put back the handlers found at the first ``register`` (where ours are still in place)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum, handler in list(_previous.items()):
        if signal.getsignal(signum) is _on_signal:
            signal.signal(signum, handler)
        del _previous[signum]
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is not None and vars(reactor).get("sigTerm") is _on_signal:
        del reactor.sigTerm


def run_all():
    """Run and forget every registered call, newest first; a failing call does not stop the rest."""
    while _calls:
        function, args = _calls.pop()
        atexit.unregister(function)
        try:
            function(*args)
        except Exception:
            pass


def _on_signal(signum, frame):
    previous = _previous.get(signum, signal.SIG_DFL)
    run_all()
    restore()
    if previous is signal.default_int_handler:
        raise KeyboardInterrupt
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def marked_processes(variable, value):
    """The pids (ours excluded) whose environment holds ``variable=value``: everything a run started
    with that mark, whatever became of its parent."""
    mark = ("%s=%s" % (variable, value)).encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                if mark in f.read().split(b"\0"):
                    found.append(int(name))
        except OSError:  # gone, or not ours to read
            pass
    return found


def kill_groups(pids, grace=3.0):
    """SIGTERM the process group of each of ``pids`` (the process alone where the group is ours),
    SIGKILL what is left after ``grace`` seconds; the pids that were alive."""
    targets = []
    for pid in pids:
        try:
            targets.append((pid, os.getpgid(pid)))
        except ProcessLookupError:
            pass
    for pid, group in targets:
        _send(pid, group, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid, group) for pid, group in targets):
        time.sleep(0.1)
    for pid, group in targets:
        if _alive(pid, group):  # (a member that ignores SIGTERM, though the marked one went)
            _send(pid, group, signal.SIGKILL)
    return [pid for pid, _ in targets]


def group_members(pgid):
    """The live pids (zombies are not) of process group ``pgid``."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open("/proc/%s/stat" % name) as f:
                    fields = f.read().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(name))
    return found


def _alive(pid, group):
    """Whether what ``_send`` signals still runs: ``pid``, or any of its group where that is not ours."""
    return _exists(pid) if group == os.getpgrp() else bool(group_members(group))


def _send(pid, group, signum):
    try:
        if group == os.getpgrp():
            os.kill(pid, signum)
        else:
            os.killpg(group, signum)
    except ProcessLookupError:
        pass


def _exists(pid):
    """Whether ``pid`` still runs (a zombie does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False
