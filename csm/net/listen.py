"""Listening services: a port held while the service runs, and the unix sockets of a daemon
(the local API and the admin shell) made with their mode and owner."""

import errno
import fcntl
import grp
import os
import socket
import struct

from twisted.application import service
from twisted.internet import defer, endpoints
from twisted.internet.error import CannotListenError

from csm.config.errors import ConfigError

_CRED = struct.Struct("3i")


class ListeningService(service.Service):
    """Listens on ``endpoint`` while running.

    A port that cannot be opened at start (in use, no permission) raises from
    ``startService``, so a daemon stops at start with that one error rather than
    running without the port. Given ``config_key`` (the config file's path and the key
    that names the port), the error is a ``ConfigError`` naming them (one line at start,
    csm.tap.common); else the endpoint's own error.
    """

    def __init__(self, endpoint, factory, config_key=None):
        self.endpoint = endpoint
        self.factory = factory
        self.config_key = config_key
        self.port = None

    def startService(self):
        super().startService()
        failed = []
        self.endpoint.listen(self.factory).addCallbacks(self._listening, failed.append)
        if failed:
            self.running = 0
            if self.config_key is not None and failed[0].check(CannotListenError):
                error = failed[0].value
                reason = getattr(error.socketError, "strerror", None) or error.socketError
                port = os.fsdecode(error.port) if isinstance(error.port, bytes) else error.port  # a unix path
                where = port if error.interface is None else "%s:%s" % (error.interface or "*", port)
                raise ConfigError(*self.config_key, "cannot listen on %s: %s" % (where, reason)) from None
            failed[0].raiseException()

    def _listening(self, port):
        self.port = port
        self.listening(port)

    def listening(self, port):
        """Called once the port is open."""

    def stopService(self):
        super().stopService()
        port, self.port = self.port, None
        return defer.maybeDeferred(port.stopListening) if port is not None else None


class SocketInUse(Exception):
    """A live process is listening on this unix socket."""


def check_unix_free(path, describe=None, timeout=2.0):
    """Raise ``SocketInUse`` when a process answers on the unix socket ``path`` (named by
    ``describe(connected socket)`` where given); a socket file nobody listens on (left by a
    killed daemon) is free and may be replaced."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except socket.timeout:
            who = "a process that does not accept connections"
        except OSError as exc:
            if exc.errno in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
                return
            raise SocketInUse("%s: %s" % (path, exc.strerror or exc)) from None
        else:
            who = describe(sock) if describe is not None else "pid %d" % socket_credentials(sock)[0]
    finally:
        sock.close()
    raise SocketInUse("%s is in use by a running daemon (%s): stop it first, or give this daemon "
                      "another socket" % (path, who))


def socket_credentials(sock):
    """(pid, uid, gid) of the process at the other end of a connected unix socket."""
    return _CRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))


class UnixListenService(ListeningService):
    """Listens on the unix socket ``path`` with ``mode``, owned by ``group`` (a name) or, with
    ``root_owned``, by root. A socket file left at ``path`` is replaced unless a live process
    answers there (``check_unix_free``, naming it by ``describe``): then the start fails with
    ``SocketInUse``, or a ``ConfigError`` naming ``config_key``."""

    def __init__(self, reactor, path, factory, mode, group=None, root_owned=False, describe=None, backlog=128,
                 config_key=None):
        description = "unix:%s:mode=%o:backlog=%d:lockfile=0" % (endpoints.quoteStringArgument(path), mode, backlog)
        super().__init__(endpoints.serverFromString(reactor, description), factory, config_key)
        self.path = path
        self.mode = mode
        self.group = group
        self.root_owned = root_owned
        self.describe = describe

    def startService(self):
        folder = os.path.dirname(self.path) or "."
        os.makedirs(folder, exist_ok=True)
        # the look, the unlink and the bind under the folder's lock: two daemons starting on one
        # path at once would each find it free, and the second would unlink the first's socket
        try:
            lock = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except PermissionError:  # a folder it may write but not read: no lock to take
            lock = None
        try:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            self._remove_stale()
            super().startService()
        finally:
            if lock is not None:
                os.close(lock)

    def _remove_stale(self):
        """Unlink a socket file of a previous run; raise if a live process answers there."""
        if os.path.exists(self.path):
            try:
                check_unix_free(self.path, self.describe)
            except SocketInUse as exc:
                if self.config_key is None:
                    raise
                raise ConfigError(*self.config_key, str(exc)) from None
            os.unlink(self.path)

    def listening(self, port):
        os.chmod(self.path, self.mode)  # listenUNIX's mode is subject to the umask
        if self.group:
            os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
        elif self.root_owned and os.geteuid() == 0:
            os.chown(self.path, 0, 0)
