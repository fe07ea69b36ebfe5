"""The router: handle a request here, or forward it upstream.

A role gives the router its handlers (command id -> callable). A request whose
command has a handler here is handled; one the registry places on another role
is forwarded on the upstream link; anything else is ``CSMERR_CMD_UNKNOWN``.
Every path ends in one reply ``Message`` (errors included): handlers never see
sockets, and callers never see exceptions.
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

    @property
    def clock(self):
        return self.daemon.clock

    def remaining(self):
        return max(0.0, self.deadline - self.daemon.clock.seconds())

    def forward(self, body=None):
        """Send this request on upstream; the Deferred fires with the reply body."""
        message = self.message if body is None else self.message.evolve(
            payload=self.daemon.encode_body(body))
        d = self.daemon.router.forward(message)
        return d.addCallback(reply_body)


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
        if handler is not None:
            d = self._call(handler, command, message, link)
        elif command is not None and self.daemon.role not in command.handled_on:
            d = self.forward(message)
        else:
            name = command.api_name if command else "command id %d" % message.command
            d = defer.succeed(message.error_reply(
                CSMError(ErrorCode.CSMERR_CMD_UNKNOWN, "%s is not handled by the %s daemon"
                         % (name, self.daemon.role))))
        if self.stats is not None and not message.flags & Flags.INT:
            started = time.perf_counter()
            api = command.api_name if command else str(message.command)
            d.addCallback(self._observe, api, started)
        return d

    def _observe(self, reply, api, started):
        self.stats.observe(api, time.perf_counter() - started, not reply.is_error)
        return reply

    def forward(self, message):
        """Send ``message`` on upstream; fires with the reply re-addressed to its id."""
        command = self.registry.get(message.command)
        link = self.upstream() if self.upstream else None
        if link is None:
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
                      deadline=self.daemon.clock.seconds() + self.timeout(command))
        d = defer.maybeDeferred(handler, ctx, body)
        d.addCallback(lambda result: _ensure_deferred(result))
        d.addCallbacks(lambda result: message.reply(result),
                       lambda failure: message.error_reply(_as_csm_error(failure, command)))
        return d


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
