"""``LinkProtocol``: one protocol for every link (daemon to daemon, client to daemon).

It frames messages, runs the hello handshake (version check), the heartbeat, and
request/response correlation by message id. What a message means is the owner's
business: the owner gets ``link_ready``, ``message_received`` and ``link_lost``.
"""

import random

from twisted.internet import defer
from twisted.internet.interfaces import IHandshakeListener, INegotiated
from twisted.internet.protocol import Protocol
from zope.interface import implementer

from csm import __version__, logs
from csm.errors import CSMError, ErrorCode
from csm.net.heartbeat import Heartbeat, HeartbeatState
from csm.wire import DEFAULT_MAX_PAYLOAD, Flags, FrameDecoder, FrameError, InternalCommand, Message, Priority

log = logs.logger("csmnet")

#: Seconds from a connection (its TLS handshake done) to the peer's hello.
HELLO_TIMEOUT = 10.0
#: Seconds a TLS handshake may take; the hello deadline starts when it is done, so time
#: spent queued behind other handshakes at a busy peer is not counted against the hello.
TLS_HANDSHAKE_TIMEOUT = 30.0
#: Seconds the initiator waits for the answer to its hello once TLS is up: the peer is alive (it
#: did its side of the handshake) but may be busy with a reconnect storm. At HELLO_TIMEOUT the
#: computes gave up links their aggregators had accepted and counted (an 11,136-node master
#: restart at load 21: 946 of them, hundreds of stray csm.status.down events).
HELLO_ANSWER_TIMEOUT = 30.0
_HELLO_FLAGS = Flags.INT
_HEARTBEAT_FLAGS = Flags.INT | Flags.CBK


def parse_version(text):
    """``"1.8.5"`` -> ``(1, 8, 5)``; anything unparsable -> ``None``."""
    try:
        parts = tuple(int(p) for p in str(text).split("."))
    except ValueError:
        return None
    return parts if len(parts) >= 2 else None


def version_acceptable(local, peer, exact=False):
    """CAST's rule: same major, and the peer's fix level is ours or one below."""
    if exact:
        return str(local) == str(peer)
    mine, theirs = parse_version(local), parse_version(peer)
    if mine is None or theirs is None:
        return False
    return mine[0] == theirs[0] and mine[1] - 1 <= theirs[1] <= mine[1]


def _is_tls_error(reason):
    try:
        from OpenSSL.SSL import Error
    except ImportError:
        return False
    return reason is not None and reason.check(Error) is not None


def _answer(callback, result):
    """Call a request's ``on_reply``/``on_error``: what it raises is logged, and never reaches
    the protocol (an exception out of ``dataReceived`` would drop the connection)."""
    try:
        callback(result)
    except Exception:
        log.failure("answering a request failed")


class LinkOwner:
    """What a link reports to. Roles subclass this; every method is optional."""

    def hello(self, link):
        """The body this side sends (or answers) in the handshake."""
        return {"version": __version__}

    def accept_hello(self, link, hello):
        """Listener side: raise ``CSMError`` to refuse the peer."""

    def hello_refused(self, link, error):
        """Initiator side: the peer refused this daemon's hello (``CSMError``)."""

    def link_ready(self, link):
        pass

    def link_lost(self, link, reason):
        pass

    def message_received(self, link, message):
        pass


@implementer(IHandshakeListener)
class LinkProtocol(Protocol):
    """Framing, handshake, heartbeat and request correlation for one connection."""

    @staticmethod
    def heartbeat_phase():
        """When the first heartbeat check (a probe) comes, in intervals: random in [0.1, 1]."""
        return random.uniform(0.1, 1.0)

    def __init__(self, owner, clock, initiator, max_payload=DEFAULT_MAX_PAYLOAD,
                 heartbeat_interval=15, exact_version=False, name=None):
        self.owner = owner
        self.clock = clock
        self.initiator = initiator
        self.max_payload = max_payload
        self.heartbeat_interval = heartbeat_interval
        self.exact_version = exact_version
        self.name = name  # what the owner calls this link (e.g. "aggregatorA")
        self.peer = {}  # the peer's hello body
        self.verified = False
        self.connected = False
        self.pending = {}
        self.heartbeat = None
        self._decoder = None
        self._next_id = random.getrandbits(32) << 16
        self._hello_timer = None
        self._closing = False
        self._waiters = []
        #: one timer for every pending request's deadline (``_expire``), and when it fires
        self._sweep = None
        self._sweep_at = 0.0

    # -- what the owner and callers use ---------------------------------------------------

    @property
    def peer_node(self):
        return self.peer.get("node", "")

    @property
    def peer_role(self):
        return self.peer.get("role", "")

    @property
    def state(self):
        """The heartbeat state name, or DISCONNECTED."""
        if not self.connected:
            return "DISCONNECTED"
        return self.heartbeat.state.value if self.heartbeat else HeartbeatState.HAPPY.value

    @property
    def usable(self):
        """Requests can go out on this link now."""
        return bool(self.connected and self.verified and not self._closing)

    def when_ready(self):
        """A Deferred that fires with this link once the handshake is done."""
        if self.verified:
            return defer.succeed(self)
        d = defer.Deferred()
        self._waiters.append(d)
        return d

    def send(self, message):
        """Write one message (no reply expected or a reply to the peer)."""
        if self.connected and not self._closing:
            self.transport.write(message.encode())
            return True
        return False

    def request(self, message, timeout):
        """Send ``message`` as a request; the Deferred fires with the response ``Message``.

        Error replies are returned, not raised. A timeout or a lost link fails the
        Deferred with ``CSMError`` (CSMERR_TIMEOUT / CSMERR_SENDRCV_ERROR).
        """
        if not self.usable:
            return defer.fail(self._unusable())
        mid = self._new_id()
        d = defer.Deferred(lambda _: self.forget(mid))
        self._send_request(mid, message, timeout, d.callback, d.errback)
        return d

    def relay(self, message, timeout, on_reply, on_error):
        """``request`` without a Deferred, for the router's forwarding (every relayed frame):
        exactly one of ``on_reply(response Message)`` and ``on_error(CSMError)`` is called,
        unless ``forget`` is given the id returned (None: not sent)."""
        if not self.usable:
            on_error(self._unusable())
            return None
        mid = self._new_id()
        self._send_request(mid, message, timeout, on_reply, on_error)
        return mid

    def _new_id(self):
        self._next_id = (self._next_id + 1) & 0xFFFFFFFFFFFFFFFF
        return self._next_id

    def _unusable(self):
        return CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "no connection to %s" % self.describe())

    def _send_request(self, mid, message, timeout, on_reply, on_error):
        deadline = self.clock.seconds() + timeout
        self.pending[mid] = (on_reply, on_error, deadline, timeout)
        if self._sweep is None or deadline < self._sweep_at:
            self._arm(deadline)
        self.transport.write(message.encode(message_id=mid))

    def _arm(self, when):
        """Set the one timer of the pending requests to ``when`` (the earliest deadline): a
        timer per request cost about a tenth of a relay hop's CPU."""
        self._disarm()
        self._sweep_at = when
        self._sweep = self.clock.callLater(max(0.0, when - self.clock.seconds()), self._expire)

    def _disarm(self):
        if self._sweep is not None:
            if self._sweep.active():
                self._sweep.cancel()
            self._sweep = None

    def _expire(self):
        """Answer CSMERR_TIMEOUT to the requests past their deadline; wait for the next one."""
        self._sweep = None
        now = self.clock.seconds()
        for mid in [mid for mid, entry in self.pending.items() if entry[2] <= now]:
            entry = self.pending.pop(mid, None)
            if entry is not None:
                _answer(entry[1], CSMError(ErrorCode.CSMERR_TIMEOUT, "no response from %s within %gs"
                                           % (self.describe(), entry[3])))
        if self.pending:  # (a request sent by an answer above may have armed a later time)
            self._arm(min(entry[2] for entry in self.pending.values()))

    def describe(self):
        who = self.peer_node or self.name or "peer"
        role = self.peer_role
        return "%s %s" % (role, who) if role else who

    def close(self, reason=""):
        if reason:
            log.info("closing link to {peer}: {reason}", peer=self.describe(), reason=reason)
        self._closing = True
        if self.transport is not None:
            self.transport.loseConnection()

    # -- Protocol -------------------------------------------------------------------------

    def connectionMade(self):
        self.connected = True
        self._decoder = FrameDecoder(self.max_payload)
        if self.heartbeat_interval:
            self.heartbeat = Heartbeat(self.clock, self.heartbeat_interval, self._send_heartbeat,
                                       self._peer_dead)
            self.heartbeat.start(self.heartbeat_phase())
        if INegotiated.providedBy(self.transport):  # TLS (Twisted's TLSMemoryBIOProtocol alone says so)
            self._hello_timer = self.clock.callLater(TLS_HANDSHAKE_TIMEOUT, self._handshake_timed_out)
        else:
            self._hello_timer = self.clock.callLater(HELLO_TIMEOUT, self._hello_timed_out, HELLO_TIMEOUT)
        if self.initiator:
            self._send_hello(Flags.NONE, self.owner.hello(self))

    def handshakeCompleted(self):
        """TLS is up: the peer has ``HELLO_TIMEOUT`` from now to say hello (to answer ours:
        ``HELLO_ANSWER_TIMEOUT``)."""
        self._cancel_hello_timer()
        if self.connected and not self.verified and not self._closing:
            wait = HELLO_ANSWER_TIMEOUT if self.initiator else HELLO_TIMEOUT
            self._hello_timer = self.clock.callLater(wait, self._hello_timed_out, wait)

    def dataReceived(self, data):
        try:
            messages = self._decoder.feed(data)
        except FrameError as exc:
            self._protocol_error(str(exc))
            return
        if self.heartbeat is not None:  # (a chunk ending in a request or reply is traffic)
            self.heartbeat.received(bool(messages) and messages[-1].command != InternalCommand.HEARTBEAT)
        for message in messages:
            if self._closing:
                return
            self._receive(message)

    def connectionLost(self, reason):
        self.connected = False
        if self.heartbeat is not None:
            self.heartbeat.stop()
        self._cancel_hello_timer()
        self._disarm()
        pending, self.pending = self.pending, {}
        error = CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "connection to %s lost" % self.describe())
        for entry in pending.values():
            _answer(entry[1], error)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.errback(error)
        if self.verified:
            self.owner.link_lost(self, reason)
        elif _is_tls_error(reason):
            log.warn("TLS handshake with {peer} failed: {reason}", peer=self._peer_address(),
                     reason=reason.getErrorMessage())

    # -- inside ---------------------------------------------------------------------------

    def _receive(self, message):
        if message.command == InternalCommand.HEARTBEAT:
            self._heartbeat_received(message)
        elif not self.verified:
            self._handshake(message)
        elif message.flags & Flags.RESP:
            self._response(message)
        else:
            self.owner.message_received(self, message)

    def _response(self, message):
        entry = self.pending.pop(message.message_id, None)
        if entry is None:
            log.debug("late or unknown response id {mid} from {peer}", mid=message.message_id,
                      peer=self.describe())
            return
        if not self.pending:
            self._disarm()  # nothing left to time out: no timer outlives the requests
        _answer(entry[0], message)

    def forget(self, mid):
        """Drop the pending request ``mid`` (cancelled): nothing answers it, a late reply is ignored."""
        if self.pending.pop(mid, None) is not None and not self.pending:
            self._disarm()

    def _send_hello(self, flags, body, message_id=0):
        self.send(Message.make(InternalCommand.STATUS, body, flags=_HELLO_FLAGS | flags, message_id=message_id,
                               reserved=int(self.heartbeat_interval or 0)))

    def _handshake(self, message):
        if message.command != InternalCommand.STATUS or not message.flags & Flags.INT:
            self._protocol_error("first message is command %d, not the hello" % message.command)
            return
        try:
            hello = message.body()
        except ValueError:
            hello = None
        if not isinstance(hello, dict):
            self._protocol_error("malformed hello")
            return
        if self.initiator:
            if not message.flags & Flags.RESP:
                self._protocol_error("expected the hello answer")
            elif message.flags & Flags.ERR:
                error = message.error()
                log.error("{peer} refused this daemon: {msg}", peer=self.name or "peer", msg=error.errmsg)
                self.owner.hello_refused(self, error)
                self.close()
            else:
                self._verified(hello, message.reserved)
            return
        peer_version = hello.get("version")
        mine = self.owner.hello(self).get("version", __version__)
        try:
            if not version_acceptable(mine, peer_version, self.exact_version):
                raise CSMError(ErrorCode.CSMERR_GENERIC, "VERSION MISMATCH. Required: %s" % mine)
            self.owner.accept_hello(self, hello)
        except CSMError as exc:
            log.warn("refusing {peer} ({version}): {reason}", peer=hello.get("node", "peer"),
                     version=peer_version, reason=exc.errmsg)
            self.send(message.error_reply(exc).evolve(flags=int(_HELLO_FLAGS | Flags.RESP | Flags.ERR)))
            self.close()
            return
        self._send_hello(Flags.RESP, self.owner.hello(self), message.message_id)
        self._verified(hello, message.reserved)

    def _verified(self, hello, interval):
        self._cancel_hello_timer()
        self.peer = hello
        self.verified = True
        if self.heartbeat is not None and interval:
            self.heartbeat.peer_interval(interval)
        log.debug("link to {peer} ready", peer=self.describe())
        self.owner.link_ready(self)
        waiters, self._waiters = self._waiters, []
        for d in waiters:
            d.callback(self)

    def _heartbeat_received(self, message):
        if self.heartbeat is not None and message.reserved:
            self.heartbeat.peer_interval(message.reserved)
        if not message.flags & Flags.RESP:
            self.send(Message(command=InternalCommand.HEARTBEAT, flags=_HEARTBEAT_FLAGS | Flags.RESP,
                              message_id=message.message_id, priority=Priority.NO_ACK,
                              reserved=int(self._interval())))

    def _interval(self):
        return self.heartbeat.interval if self.heartbeat is not None else self.heartbeat_interval

    def _send_heartbeat(self):
        self.send(Message(command=InternalCommand.HEARTBEAT, flags=_HEARTBEAT_FLAGS,
                          message_id=random.getrandbits(32), priority=Priority.NO_ACK,
                          reserved=int(self._interval())))

    def _peer_dead(self):
        log.warn("{peer} missed its heartbeats ({interval}s interval): link is DEAD",
                 peer=self.describe(), interval=self._interval())
        self._abort()

    def _hello_timed_out(self, seconds):
        self._hello_timer = None
        if not self.verified:
            self._protocol_error("no hello within %gs" % seconds)

    def _handshake_timed_out(self):
        self._hello_timer = None
        if not self.verified:
            self._protocol_error("no TLS handshake within %gs" % TLS_HANDSHAKE_TIMEOUT)

    def _cancel_hello_timer(self):
        if self._hello_timer is not None and self._hello_timer.active():
            self._hello_timer.cancel()
        self._hello_timer = None

    def _protocol_error(self, reason):
        log.warn("dropping connection from {peer}: {reason}", peer=self._peer_address(), reason=reason)
        self._abort()

    def _abort(self):
        self._closing = True
        if self.transport is not None:
            abort = getattr(self.transport, "abortConnection", None)
            (abort or self.transport.loseConnection)()

    def _peer_address(self):
        if self.peer:
            return self.describe()
        try:
            return str(self.transport.getPeer())
        except Exception:
            return "peer"
