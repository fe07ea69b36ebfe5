"""The router: handle a request here, or forward it upstream.

A role gives the router its handlers (command id -> callable); the registry says
where each API runs (``Router.route``): a caller's request is handled on the roles
in the command's ``handled_on`` and climbs from the others; the daemons' own
messages (``Flags.INT``: a multicast from above, a compute's inventory) are for the
daemon they reach. Nothing else is ``CSMERR_CMD_UNKNOWN``. Handlers never hand a
request back. Every path ends in one reply ``Message`` (errors included): handlers
never see sockets, and callers never see exceptions.
"""

import time

import attrs
from twisted.internet import defer
from twisted.python.failure import Failure

from csm import logs
from csm.errors import CSMError, ErrorCode
from csm.wire import Flags, Message

log = logs.logger("csmapi")

#: Seconds each forwarding hop keeps back from the API timeout, so the hop nearer
#: the caller always answers with CSMERR_TIMEOUT before the caller gives up.
HOP_MARGIN = {"compute": 0.5, "utility": 0.5, "aggregator": 1.0, "master": 1.5}

#: where a request goes (``Router.route``)
HERE, UP, UNKNOWN = "here", "up", "unknown"

#: the answer to a fire-and-forget message: nobody reads it, so one serves them all (a reply
#: built and encoded for each event of a RAS flood was thrown away)
UNSENT = Message(0, Flags.RESP)


@attrs.define
class Context:
    """What a handler gets besides its input."""

    daemon: object
    command: object
    message: object
    link: object
    uid: int
    gid: int
    #: True when the caller is not privileged and the API is private: the
    #: handler must check that the caller owns what it touches.
    private_check: bool
    deadline: float
    #: the master's database pool (None elsewhere, or on a master run without a database)
    pool: object = None

    @property
    def clock(self):
        return self.daemon.clock

    def remaining(self):
        return max(0.0, self.deadline - self.daemon.clock.seconds())

    @property
    def db(self):
        """The database pool; ``CSMERR_DAEMON_DB_ERR`` where there is none, or on a standby
        master for a caller's request (its own fire-and-forget events are queued)."""
        if self.pool is None:
            raise CSMError(ErrorCode.CSMERR_DAEMON_DB_ERR, "this master runs without a database")
        standby = getattr(self.daemon, "standby", None)
        if standby is not None and not self.message.flags & Flags.NOREPLY:
            standby.check_request()
        return self.pool


def reply_body(reply):
    """The body of a reply ``Message``; an error reply raises its ``CSMError``."""
    if reply.is_error:
        raise reply.error()
    return reply.body()


class Router:
    """Routes requests by the registry; one per daemon."""

    def __init__(self, daemon, registry, handlers, upstream, stats=None):
        self.daemon = daemon
        self.stats = stats
        self.registry = registry
        self.handlers = dict(handlers)
        #: A callable returning the link requests climb to, or None (master).
        self.upstream = upstream
        self._timeouts_of, self._timeouts = None, {}

    def timeout(self, command):
        """The API timeout of ``command`` (30 s without one), looked up once per command."""
        if command is None:
            return 30.0
        timeouts = self.daemon.api_timeouts
        if timeouts is not self._timeouts_of:
            self._timeouts_of, self._timeouts = timeouts, {}
        seconds = self._timeouts.get(command.cmd_id)
        if seconds is None:
            seconds = self._timeouts[command.cmd_id] = timeouts.timeout(command.api_name)
        return seconds

    def handle(self, message, link=None):
        """Process one request; the Deferred fires with the reply ``Message``. Cancelled, a
        request forwarded upstream is forgotten there (its late reply ignored)."""
        sent = None
        d = defer.Deferred(lambda _: _forget(sent))
        sent = self.respond(message, link, lambda reply: d.called or d.callback(reply))  # called: cancelled
        return d

    def respond(self, message, link, answer, timeout=None):
        """Process one request and call ``answer`` once with its reply ``Message``; returns
        (link, message id) of a request forwarded upstream and waiting there, for ``_forget``.

        A request forwarded upstream and a handler that answers at once take no Deferred
        (the path of every relayed frame). ``timeout``: the entry daemon's API timeout; a
        handler still running then is answered CSMERR_TIMEOUT, and a forwarded request
        waits no longer upstream.
        """
        command = self.registry.get(message.command)
        handler = self.handlers.get(message.command)
        if self.stats is not None and not message.flags & Flags.INT:
            answer = self._observer(answer, command.api_name if command else str(message.command))
        if command is not None and command.adds_local_daemon and getattr(link, "is_local", False):
            answer = self._adding_local_daemon(answer)
        try:
            route = self.route(command, handler is not None, message)
            if route == HERE:
                self._call(handler, command, message, link, answer, timeout)
            elif route == UP:
                return self._forward(message, answer, timeout, command)
            else:
                name = command.api_name if command else "command id %d" % message.command
                answer(_error_reply(message, CSMError(ErrorCode.CSMERR_CMD_UNKNOWN, "%s is not handled by the %s "
                                                      "daemon" % (name, self.daemon.role)), command))
        except Exception:  # from answer (a reply written at once): never out into the link's read
            log.failure("routing {api} failed", api=command.api_name if command else message.command)

    def route(self, command, handled_here, message):
        """``HERE``, ``UP`` or ``UNKNOWN`` for ``message``, from the registry."""
        role = self.daemon.role
        if not handled_here:
            return UP if command is not None and role not in command.handled_on else UNKNOWN
        if command is None or message.flags & Flags.INT:
            return HERE  # a daemon's own message, for the daemon it reaches
        if role not in command.handled_on:
            return UP
        if command.master_with and role != "master" and _names_any(message, command.master_with):
            return UP
        return HERE

    def _adding_local_daemon(self, answer):
        """The entry daemon adds itself to the reply (``Command.adds_local_daemon``)."""
        def add(reply):
            if not reply.is_error:
                body = dict(reply.body() or {}, local_daemon=self.daemon.info())
                reply = reply.evolve(payload=self.daemon.encode_body(body))
            answer(reply)
        return add

    def _observer(self, answer, api):
        started = time.perf_counter()

        def observe(reply):
            self.stats.observe(api, time.perf_counter() - started, not reply.is_error)
            answer(reply)
        return observe

    def forward(self, message):
        """Send ``message`` on upstream; fires with the reply re-addressed to its id. Cancelled,
        the request is forgotten upstream."""
        sent = None
        d = defer.Deferred(lambda _: _forget(sent))
        sent = self._forward(message, lambda reply: d.called or d.callback(reply))  # called: cancelled
        return d

    def _forward(self, message, answer, timeout=None, command=None):
        if command is None:
            command = self.registry.get(message.command)
        link = self.upstream() if self.upstream else None
        if link is None:
            hold = getattr(self.daemon, "hold_upstream", None)
            if message.flags & Flags.NOREPLY and hold is not None and hold(message):
                answer(UNSENT)  # sent when the link is back
                return
            error = CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "%s daemon has no connection upstream"
                             % self.daemon.role)
            answer(_error_reply(message, error, command))
            return
        if message.flags & Flags.NOREPLY:
            link.send(message)  # fire and forget: nothing will come back
            answer(UNSENT)
            return
        hop = max(1.0, self.timeout(command) - HOP_MARGIN.get(self.daemon.role, 1.0))
        original = message.message_id

        def replied(reply):
            reply.message_id = original  # this hop's own copy, fresh from its decoder
            answer(reply)
        return link, link.relay(message, hop if timeout is None else min(hop, timeout), replied,
                                lambda error: answer(message.error_reply(error)))

    def _call(self, handler, command, message, link, answer, timeout):
        try:
            body = message.body()
            if command is not None and not message.flags & Flags.INT:
                body = command.validate(body)  # daemon-internal messages carry their own bodies
        except ValueError:
            answer(_error_reply(message, CSMError(ErrorCode.CSMERR_MSG_UNPACK_ERROR, "payload is not valid JSON"),
                                command))
            return
        except CSMError as exc:
            answer(_error_reply(message, exc, command))
            return
        ctx = Context(daemon=self.daemon, command=command, message=message, link=link,
                      uid=message.uid, gid=message.gid,
                      private_check=bool(message.flags & Flags.PCK),
                      deadline=self.daemon.clock.seconds() + self.timeout(command),
                      pool=getattr(self.daemon, "db", None))
        try:
            result = handler(ctx, body)
        except Exception:
            answer(_error_reply(message, _as_csm_error(Failure(), command), command))
            return
        if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
            result = defer.ensureDeferred(result)
        if not isinstance(result, defer.Deferred):
            answer(_reply(message, result, command))  # answered at once: no Deferred
            return
        result.addCallbacks(lambda value: _reply(message, value, command),
                            lambda failure: _error_reply(message, _as_csm_error(failure, command), command))
        if timeout is not None:
            name = command.api_name if command else "request"
            result.addTimeout(timeout, self.daemon.clock, onTimeoutCancel=lambda *_: _error_reply(
                message, CSMError(ErrorCode.CSMERR_TIMEOUT, "%s timed out after %gs" % (name, timeout)), command))
        result.addCallback(answer)
        result.addErrback(lambda failure: log.failure("answering {api} failed", failure,
                                                      api=command.api_name if command else "?"))


def _error_reply(message, error, command):
    """``message``'s error reply; nobody reads a fire-and-forget message's, so its error is
    logged (a daemon's RAS event of bad input went without a line)."""
    if message.flags & Flags.NOREPLY:
        log.warn("fire-and-forget {api} refused: {error} (body {body})",
                 api=command.api_name if command else "command id %d" % message.command, error=error.errmsg,
                 body=bytes(message.payload[:300]).decode("utf-8", "replace"))
    return message.error_reply(error)


def _forget(sent):
    """A cancelled request forwarded upstream leaves the link's pending table (``respond``)."""
    if sent is not None:
        link, mid = sent
        link.forget(mid)


def _reply(message, result, command):
    """The reply carrying a handler's result (``UNSENT`` for a fire-and-forget message: nobody
    reads it); one that is not JSON is an internal error."""
    if message.flags & Flags.NOREPLY:
        return UNSENT
    try:
        return message.reply(result)
    except (TypeError, ValueError) as exc:
        return message.error_reply(_as_csm_error(Failure(exc), command))


def _names_any(message, fields):
    """Whether the request's body gives any of ``fields`` (a body that cannot be read is
    handled here, where it gets its error)."""
    try:
        body = message.body()
    except ValueError:
        return False
    return isinstance(body, dict) and any(body.get(name) for name in fields)


def _as_csm_error(failure, command=None):
    if failure.check(CSMError):
        return failure.value
    if failure.check(defer.CancelledError):
        return CSMError(ErrorCode.CSMERR_TIMEOUT, "request cancelled at its timeout")
    log.failure("handler for {api} failed", failure, api=command.api_name if command else "?")
    return CSMError(ErrorCode.CSMERR_GENERIC, "internal error: %s" % failure.getErrorMessage())
