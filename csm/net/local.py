"""The local API: a unix socket per daemon for the csm_* commands and clients.

The caller's uid/gid come from the kernel (SO_PEERCRED), never from the header.
The entry daemon applies the ACL (privileged / private / public), stamps the
caller's credentials into the request, and answers every request within its
API timeout: a reply, an error, or CSMERR_TIMEOUT.
"""

from csm import __version__, logs
from csm.errors import CSMError, ErrorCode
from csm.net.factory import LinkFactory
from csm.net.link import LinkOwner, LinkProtocol
from csm.net.listen import SocketInUse, UnixListenService, check_unix_free, socket_credentials  # noqa: F401
from csm.wire import Flags, FrameDecoder, FrameError, InternalCommand, Message

log = logs.logger("csmapi")
_DEBUG = logs.LogLevel.debug

#: Flags a client may not set: the daemon drops a client that does (as CAST).
_CLIENT_FORBIDDEN = Flags.INT | Flags.MTC | Flags.RESP


def peer_credentials(transport):
    """(pid, uid, gid) of the process at the other end of a unix socket's transport."""
    return socket_credentials(transport.getHandle())


def check_socket_free(path, timeout=2.0):
    """Raise ``SocketInUse`` naming the daemon that answers on the local API socket ``path``;
    a socket file nobody listens on (left by a killed daemon) is free and may be replaced."""
    check_unix_free(path, _describe_listener, timeout)


def _describe_listener(sock):
    """``pid N, <role> <node>`` of the daemon on a connected local socket (what it says of itself)."""
    pid = socket_credentials(sock)[0]
    hello = {}
    try:
        sock.sendall(Message.make(InternalCommand.STATUS, {"version": __version__, "role": "client"},
                                  flags=Flags.INT).encode())
        decoder, messages = FrameDecoder(1 << 20), []
        while not messages:
            data = sock.recv(65536)
            if not data:
                break
            messages = decoder.feed(data)
        body = messages[0].body() if messages else None
        hello = body if isinstance(body, dict) else {}
    except (OSError, FrameError, ValueError):
        pass
    name = " ".join(str(hello[key]) for key in ("role", "node") if hello.get(key))
    return "pid %d, %s" % (pid, name) if name else "pid %d" % pid


class LocalLinkProtocol(LinkProtocol):
    """A client connection on the local socket; knows who the caller is."""

    is_local = True
    peer_cred = (0, 0, 0)
    privileged = False

    def connectionMade(self):
        self.peer_cred = peer_credentials(self.transport)
        super().connectionMade()


class LocalAPI(LinkOwner):
    """Owner of the client links of one daemon: ACL, credentials, timeouts, routing."""

    def __init__(self, daemon):
        self.daemon = daemon
        self.clients = set()

    def hello(self, link):
        d = self.daemon
        return {"version": __version__, "node": d.node_name, "role": d.role,
                "timeouts": d.api_timeouts.as_dict()}

    def link_ready(self, link):
        _pid, uid, gid = link.peer_cred
        link.privileged = self.daemon.acl.is_privileged(uid, gid)
        self.clients.add(link)

    def link_lost(self, link, reason):
        self.clients.discard(link)

    def message_received(self, link, message):
        if message.flags & _CLIENT_FORBIDDEN:
            link.close("client sent a message with internal flags 0x%x" % message.flags)
            return
        if message.flags & Flags.ERR:
            link.send(message.error_reply(CSMError(ErrorCode.CSMERR_SENDRCV_ERROR,
                                                   "an error is not a request")))
            return
        daemon = self.daemon
        command = daemon.registry.get(message.command)
        _pid, uid, gid = link.peer_cred
        flags = message.flags & ~Flags.PCK
        if not link.privileged:
            access = daemon.acl.access_class(command.api_name) if command else "privileged"
            if access == "privileged":
                log.info("{api}: permission denied for uid {uid}", api=command.api_name if command
                         else message.command, uid=uid)
                link.send(message.error_reply(CSMError(
                    ErrorCode.CSMERR_PERM, "CSMI permission denied: %s needs a privileged user"
                    % (command.api_name if command else "this command"))))
                return
            if access == "private":
                flags |= Flags.PCK
        # the caller's credentials, from the kernel, in place: the message is this link's own copy
        message.uid, message.gid, message.flags = uid, gid, flags
        if log.enabled(_DEBUG):  # (a filtered call still builds its arguments)
            log.debug("{api}[{mid}]; Client Recv; uid {uid}", api=command.api_name if command
                      else message.command, mid=message.message_id, uid=uid)
        daemon.router.respond(message, link, _ignore if flags & Flags.NOREPLY else link.send,
                              timeout=daemon.router.timeout(command))


def _ignore(reply):
    """The answer to a fire-and-forget request: nobody waits for it."""


class LocalSocketService(UnixListenService):
    """Listens on the daemon's unix socket with the configured mode and group."""

    name = "local-api"

    def __init__(self, reactor, daemon, listen_config):
        self.daemon = daemon
        self.api = LocalAPI(daemon)
        factory = LinkFactory(self.api, daemon.clock, initiator=False, max_payload=daemon.max_payload,
                              heartbeat_interval=daemon.heartbeat_interval)
        factory.protocol = LocalLinkProtocol
        super().__init__(reactor, listen_config.socket, factory, listen_config.permissions or 0o777,
                         group=listen_config.group, describe=_describe_listener)

    def listening(self, port):
        super().listening(port)
        log.info("local API listening on {path}", path=self.path)

    def stopService(self):
        for link in list(self.api.clients):
            link.close()
        return super().stopService()
