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

from csm import logs
from csm.errors import CSMError, ErrorCode
from csm.wire import Flags

log = logs.logger("csmapi")

#: Seconds each forwarding hop keeps back from the API timeout, so the hop nearer
#: the caller always answers with CSMERR_TIMEOUT before the caller gives up.
HOP_MARGIN = {"compute": 0.5, "utility": 0.5, "aggregator": 1.0, "master": 1.5}

#: where a request goes (``Router.route``)
HERE, UP, UNKNOWN = "here", "up", "unknown"


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

    def timeout(self, command):
        return self.daemon.api_timeouts.timeout(command.api_name) if command else 30.0

    def handle(self, message, link=None):
        """Process one request; the Deferred fires with the reply ``Message``."""
        command = self.registry.get(message.command)
        handler = self.handlers.get(message.command)
        route = self.route(command, handler is not None, message)
        if route == HERE:
            d = self._call(handler, command, message, link)
        elif route == UP:
            d = self.forward(message)
        else:
            name = command.api_name if command else "command id %d" % message.command
            d = defer.succeed(message.error_reply(
                CSMError(ErrorCode.CSMERR_CMD_UNKNOWN, "%s is not handled by the %s daemon"
                         % (name, self.daemon.role))))
        if command is not None and command.adds_local_daemon and getattr(link, "is_local", False):
            d.addCallback(self._with_local_daemon)
        if self.stats is not None and not message.flags & Flags.INT:
            started = time.perf_counter()
            api = command.api_name if command else str(message.command)
            d.addCallback(self._observe, api, started)
        return d

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

    def _with_local_daemon(self, reply):
        """The entry daemon adds itself to the reply (``Command.adds_local_daemon``)."""
        if reply.is_error:
            return reply
        body = dict(reply.body() or {}, local_daemon=self.daemon.info())
        return reply.evolve(payload=self.daemon.encode_body(body))

    def _observe(self, reply, api, started):
        self.stats.observe(api, time.perf_counter() - started, not reply.is_error)
        return reply

    def forward(self, message):
        """Send ``message`` on upstream; fires with the reply re-addressed to its id."""
        command = self.registry.get(message.command)
        link = self.upstream() if self.upstream else None
        if link is None:
            hold = getattr(self.daemon, "hold_upstream", None)
            if message.flags & Flags.NOREPLY and hold is not None and hold(message):
                return defer.succeed(message.reply())  # sent when the link is back
            error = CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, "%s daemon has no connection upstream"
                             % self.daemon.role)
            return defer.succeed(message.error_reply(error))
        if message.flags & Flags.NOREPLY:
            link.send(message)  # fire and forget: nothing will come back
            return defer.succeed(message.reply())
        timeout = max(1.0, self.timeout(command) - HOP_MARGIN.get(self.daemon.role, 1.0))
        d = link.request(message, timeout)
        original = message.message_id
        d.addCallbacks(lambda reply: reply.evolve(message_id=original),
                       lambda failure: message.error_reply(_as_csm_error(failure)))
        return d

    def _call(self, handler, command, message, link):
        try:
            body = message.body()
            if command is not None and not message.flags & Flags.INT:
                body = command.validate(body)  # daemon-internal messages carry their own bodies
        except ValueError:
            return defer.succeed(message.error_reply(
                CSMError(ErrorCode.CSMERR_MSG_UNPACK_ERROR, "payload is not valid JSON")))
        except CSMError as exc:
            return defer.succeed(message.error_reply(exc))
        ctx = Context(daemon=self.daemon, command=command, message=message, link=link,
                      uid=message.uid, gid=message.gid,
                      private_check=bool(message.flags & Flags.PCK),
                      deadline=self.daemon.clock.seconds() + self.timeout(command),
                      pool=getattr(self.daemon, "db", None))
        d = defer.maybeDeferred(handler, ctx, body)
        d.addCallback(lambda result: _ensure_deferred(result))
        d.addCallbacks(lambda result: message.reply(result),
                       lambda failure: message.error_reply(_as_csm_error(failure, command)))
        return d


def _names_any(message, fields):
    """Whether the request's body gives any of ``fields`` (a body that cannot be read is
    handled here, where it gets its error)."""
    try:
        body = message.body()
    except ValueError:
        return False
    return isinstance(body, dict) and any(body.get(name) for name in fields)


def _ensure_deferred(result):
    if hasattr(result, "__await__") and not isinstance(result, defer.Deferred):
        return defer.ensureDeferred(result)
    return result


def _as_csm_error(failure, command=None):
    if failure.check(CSMError):
        return failure.value
    if failure.check(defer.CancelledError):
        return CSMError(ErrorCode.CSMERR_TIMEOUT, "request cancelled at its timeout")
    log.failure("handler for {api} failed", failure, api=command.api_name if command else "?")
    return CSMError(ErrorCode.CSMERR_GENERIC, "internal error: %s" % failure.getErrorMessage())
