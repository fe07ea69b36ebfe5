"""Python clients of a daemon's local socket.

``Client`` is blocking (plain sockets; what the csm_* commands use), and
``connect`` gives a Deferred API on a reactor. Both speak the same frames as
the daemons: hello first (the daemon answers with its API timeouts), then
requests; heartbeats from the daemon are answered.
"""

import _socket
import posix
import sys
import time

from csm import __version__
from csm.errors import CSMError, ErrorCode
from csm.wire import Flags, FrameDecoder, FrameError, InternalCommand, Message, Priority

DEFAULT_SOCKET = "/run/csmd.sock"
#: A client waits this much longer than the API timeout: the daemon answers first.
CLIENT_MARGIN = 1.0


def getenv(name):
    """An environment variable, read without importing os where nothing has (a csm_* command:
    os and the abstract classes it brings are a fifth of an interpreter's start)."""
    os = sys.modules.get("os")
    if os is not None:  # os.environ may have been changed in this process
        return os.environ.get(name)
    value = posix.environ.get(name.encode())
    return None if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def default_socket():
    """``CSM_SOCKET`` (or CAST's ``CSM_SSOCKET``) from the environment, else /run/csmd.sock."""
    return getenv("CSM_SOCKET") or getenv("CSM_SSOCKET") or DEFAULT_SOCKET


def _registry(registry):
    """``registry``, or the registry of every API (built on first use: a csm_* command passes
    its own command alone)."""
    if registry is None:
        from csm.api.commands import REGISTRY
        return REGISTRY
    return registry


def _command(name, registry):
    command = registry.get(name)
    if command is None:
        raise CSMError(ErrorCode.CSMERR_CMD_UNKNOWN, "unknown API %r" % (name,))
    return command


def _result(reply):
    if reply.is_error:
        raise reply.error()
    try:
        return reply.body()
    except ValueError:
        raise CSMError(ErrorCode.CSMERR_MSG_UNPACK_ERROR, "reply is not valid JSON") from None


class Client:
    """A blocking connection to a daemon's local socket.

    Connected by ``call`` itself (not by ``connect`` or ``with``), the hello and the first
    request go out together: one round trip to the daemon less. The daemon reads them in
    order, and a refused hello closes the connection before the request is read."""

    def __init__(self, path=None, timeout=None, registry=None):
        self.path = path or default_socket()
        self.registry = _registry(registry)
        self.timeouts = {}
        self.daemon = {}
        self._timeout_override = timeout
        self._sock = None
        self._decoder = FrameDecoder()
        self._inbox = []  # replies read with an earlier one, not yet taken
        self._hello = None  # the hello sent, its answer not yet read
        self._next_id = int.from_bytes(posix.urandom(4), "big") >> 1

    def connect(self, attempts=3, wait=True):
        """Connect and send the hello; ``wait``: read its answer now (else with the first reply)."""
        for attempt in range(attempts):
            # the C module: socket.py's wrapper and its enums cost each csm_* command ~2 ms to import
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                break
            except OSError as exc:
                sock.close()
                if attempt == attempts - 1:
                    raise CSMError(ErrorCode.CSMERR_INIT_LIB_FAILED, "Can not connect to daemon at %s: %s"
                                   % (self.path, exc.strerror or exc)) from None
                time.sleep(0.25 * (attempt + 1))
        self._sock = sock
        self._decoder = FrameDecoder()
        self._inbox = []
        self._hello = Message.make(InternalCommand.STATUS, {"version": __version__, "role": "client"},
                                   flags=Flags.INT)
        self._send(self._hello)
        if wait:
            self._hello_answered()
        return self

    def _hello_answered(self):
        """Read the daemon's answer to the hello: its version and API timeouts, or its refusal.
        Refused (or not answered) the connection is closed: the next call connects afresh,
        as CAST's library does after a failed connect."""
        hello, self._hello = self._hello, None
        try:
            reply = self._receive(hello, 10.0)
        except CSMError:
            self.close()
            raise
        if reply.is_error:
            self.close()
            raise CSMError(ErrorCode.CSMERR_INIT_LIB_FAILED, reply.error().errmsg)
        self.daemon = reply.body() or {}
        self.timeouts = self.daemon.get("timeouts") or {}

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._hello = None

    def __enter__(self):
        return self.connect() if self._sock is None else self

    def __exit__(self, *exc):
        self.close()

    def timeout_for(self, command):
        if self._timeout_override:
            return self._timeout_override
        return float(self.timeouts.get(command.api_name, command.timeout))

    def call(self, name, body=None, flags=Flags.NONE):
        """Run one API; returns its output body or raises ``CSMError``."""
        command = _command(name, self.registry)
        self._next_id += 1
        message = Message.make(command.cmd_id, body, flags=flags, message_id=self._next_id)
        if self._sock is None:
            self.connect(wait=False)
        try:
            try:
                self._send(message)
            finally:
                if self._hello is not None:  # its refusal, if any, says more than a failed send
                    self._hello_answered()
            reply = self._receive(message, self.timeout_for(command) + CLIENT_MARGIN)
        except CSMError as exc:
            if exc.errcode != ErrorCode.CSMERR_TIMEOUT:
                self.close()  # the connection is gone or out of step: the next call connects afresh
            raise
        return _result(reply)

    def _send(self, message):
        try:
            self._sock.sendall(message.encode())
        except OSError as exc:
            raise CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "sending to the daemon failed: %s"
                           % (exc.strerror or exc)) from None

    def _receive(self, message, timeout):
        """The daemon's reply to ``message``; heartbeats are answered, other replies dropped."""
        deadline = time.monotonic() + timeout
        while True:
            messages, self._inbox = self._inbox, []
            if not messages:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CSMError(ErrorCode.CSMERR_TIMEOUT, "no reply from the daemon within %gs" % timeout)
                self._sock.settimeout(left)
                try:
                    data = self._sock.recv(1 << 16)
                except _socket.timeout:
                    continue
                except OSError as exc:
                    raise CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "reading from the daemon failed: %s"
                                   % (exc.strerror or exc)) from None
                if not data:
                    raise CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "the daemon closed the connection")
                try:
                    messages = self._decoder.feed(data)
                except FrameError as exc:
                    raise CSMError(ErrorCode.CSMERR_MSG_UNPACK_ERROR, str(exc)) from None
            for index, reply in enumerate(messages):
                if reply.command == InternalCommand.HEARTBEAT:
                    if not reply.flags & Flags.RESP:
                        self._send(Message(InternalCommand.HEARTBEAT, flags=reply.flags | Flags.RESP,
                                           message_id=reply.message_id, priority=Priority.NO_ACK))
                    continue
                if reply.message_id == message.message_id and reply.flags & Flags.RESP:
                    self._inbox = messages[index + 1:]
                    return reply


class DeferredClient:
    """A local-socket client on a reactor: ``call()`` returns a Deferred."""

    def __init__(self, link, registry=None):
        self.link = link
        self.registry = _registry(registry)

    @property
    def timeouts(self):
        return self.link.peer.get("timeouts") or {}

    def call(self, name, body=None, flags=Flags.NONE):
        command = _command(name, self.registry)
        timeout = float(self.timeouts.get(command.api_name, command.timeout)) + CLIENT_MARGIN
        d = self.link.request(Message.make(command.cmd_id, body, flags=flags), timeout)
        return d.addCallback(_result)

    def close(self):
        self.link.close()


def connect(reactor, path=None, registry=None):
    """Connect to a daemon's socket; fires with a ``DeferredClient`` after the hello."""
    from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol

    from csm.net.link import LinkOwner, LinkProtocol

    class ClientOwner(LinkOwner):
        def hello(self, link):
            return {"version": __version__, "role": "client"}

    endpoint = UNIXClientEndpoint(reactor, path or default_socket())
    link = LinkProtocol(ClientOwner(), reactor, initiator=True, heartbeat_interval=15)
    d = connectProtocol(endpoint, link)
    d.addCallback(lambda proto: proto.when_ready())
    d.addCallback(DeferredClient, registry)
    return d


__all__ = ["Client", "DeferredClient", "connect", "default_socket"]
