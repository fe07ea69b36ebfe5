"""Run a node script (recovery, prolog, epilog) off the reactor, killed at its timeout.

A script is started with ``posix_spawn`` (one vfork and one exec; with ``group``
in a session of its own, so no ``setsid`` program is exec'd first), its output
read by the reactor from a pipe and its end seen on a pidfd (Linux 5.3): a
script costs the daemon one process start and little CPU, as it runs for every
job. Where pidfds are missing: Twisted's ``spawnProcess`` through ``setsid``.
"""

import os
import shutil
import signal

from twisted.internet import defer, error, protocol
from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

SETSID = shutil.which("setsid")
#: the most output kept of a script (the rest is read and dropped)
OUTPUT_LIMIT = 65536
#: reset to their default action in the script (the daemon ignores SIGPIPE, for one)
DEFAULT_SIGNALS = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def _pidfds():
    """Whether this Python and kernel give pidfds (``pidfd_open``: Python 3.9, Linux 5.3)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True


PIDFD = _pidfds()


class _Collect(protocol.ProcessProtocol):
    def __init__(self, done):
        self.done = done
        self.output = []

    def outReceived(self, data):
        if sum(len(chunk) for chunk in self.output) < OUTPUT_LIMIT:
            self.output.append(data)

    errReceived = outReceived

    def processEnded(self, reason):
        value = reason.value
        code = value.exitCode if value.exitCode is not None else 128 + (value.signal or 0)
        self.done.callback((code, b"".join(self.output).decode("utf-8", "replace")))


@implementer(IReadDescriptor)
class _Watch:
    """One file descriptor the reactor reads until ``read`` says it is done; then closed."""

    def __init__(self, reactor, fd, read):
        self.reactor, self.fd, self.read = reactor, fd, read
        self.ended = defer.Deferred()
        reactor.addReader(self)

    def fileno(self):
        return self.fd

    def logPrefix(self):
        return "script"

    def doRead(self):
        return self.read(self.fd)

    def connectionLost(self, reason):
        self.reactor.removeReader(self)
        os.close(self.fd)
        self.fd = -1
        self.ended.callback(None)


class _Script:
    """A spawned script: its output (stdout and stderr together) and its exit status."""

    def __init__(self, reactor, argv, env, group):
        read_end, write_end = os.pipe()
        actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_DUP2, write_end, 1), (os.POSIX_SPAWN_DUP2, write_end, 2)]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inheritable() if fd > 2]
        try:
            self.pid = os.posix_spawn(argv[0], argv, env, file_actions=actions, setsid=group,
                                      setsigdef=DEFAULT_SIGNALS, setsigmask=())
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.group, self.status, self.output = group, None, []
        self.kept = 0
        try:
            pidfd = os.pidfd_open(self.pid)
        except OSError:  # out of descriptors, say: the script must not run unwatched
            os.close(read_end)
            self.kill()
            os.waitpid(self.pid, 0)
            raise
        os.set_blocking(read_end, False)
        ends = [_Watch(reactor, read_end, self._read).ended, _Watch(reactor, pidfd, self._reap).ended]
        self.done = defer.gatherResults(ends).addCallback(lambda _: self.result(argv[0]))

    def _read(self, fd):
        try:
            data = os.read(fd, OUTPUT_LIMIT)
        except BlockingIOError:
            return None
        except OSError:
            return error.ConnectionLost()
        if not data:
            return error.ConnectionDone()
        if self.kept < OUTPUT_LIMIT:
            self.output.append(data)
            self.kept += len(data)
        return None

    def _reap(self, _):
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by someone else: its status is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return None
        self.status = status
        return error.ConnectionDone()

    def result(self, path):
        """(status, output); 255 for a script whose end was not seen (the reactor stopping, at the
        daemon's shutdown, closes the descriptors it watched)."""
        if self.status is None:
            return 255, "%s was still running when the daemon stopped" % path
        output = b"".join(self.output).decode("utf-8", "replace")
        if os.WIFSIGNALED(self.status):
            return 128 + os.WTERMSIG(self.status), output
        return os.WEXITSTATUS(self.status), output

    def kill(self):
        if self.group:
            os.killpg(self.pid, signal.SIGKILL)  # the group outlives its leader while a member lives
        elif self.status is None:
            os.kill(self.pid, signal.SIGKILL)


def _inheritable():
    """This process's descriptors that a child would inherit (Python's own are not)."""
    found = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.get_inheritable(int(name)):
                found.append(int(name))
        except OSError:
            pass  # the listing's own descriptor, closed by now
    return found


def run_script(reactor, path, args=(), timeout=30.0, env=None, group=False):
    """Fires with (exit status, output); a script still running at ``timeout`` is killed (status 137).

    With ``group`` the script leads its own process group (a new session), and
    the kill reaches everything it started, so a child holding the output pipe
    open cannot outlive the timeout.
    """
    argv = [path] + list(args)
    env = env or os.environ.copy()
    if PIDFD:
        try:
            script = _Script(reactor, argv, env, group)
        except OSError as exc:
            return defer.succeed(_not_started(path, exc))
        done, kill = script.done, script.kill
    elif not os.access(path, os.X_OK):
        return defer.succeed(_missing(path))
    else:
        done, kill = _spawn_with_twisted(reactor, argv, env, group)
    timer = reactor.callLater(timeout, _quietly, kill)

    def finished(result):
        if timer.active():
            timer.cancel()
        return result
    return done.addBoth(finished)


def _missing(path):
    return 127, "%s is missing or not executable" % path


def _not_started(path, exc):
    """(status, why) of a script the spawn refused: its ENOENT/EACCES say what access() would
    have, so none is called before it; on this error path only, access() tells a script that
    is there from its missing #! interpreter."""
    if not isinstance(exc, (FileNotFoundError, PermissionError)):
        return 126, "cannot run %s: %s" % (path, exc.strerror)
    if os.access(path, os.X_OK):
        return 126, "cannot run %s: its interpreter (#!) is missing or not executable" % path
    return _missing(path)


def _spawn_with_twisted(reactor, argv, env, group):
    """(Deferred of (status, output), kill) by ``spawnProcess``, the group made by ``setsid``."""
    done = defer.Deferred()
    if group and SETSID:
        argv = [SETSID] + argv  # execs in place: the process we spawn becomes the group leader
    process = reactor.spawnProcess(_Collect(done), argv[0], argv, env=env)

    def kill():
        if group and SETSID:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.signalProcess(signal.SIGKILL)
    return done, kill


def _quietly(kill):
    try:
        kill()
    except (OSError, error.ProcessExitedAlready):
        pass  # it ended meanwhile
