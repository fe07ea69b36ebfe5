"""``csm_infrastructure_health_check``: walk the tree and report who answers.

The request climbs to the master like any other. The master probes each
aggregator and utility (an INT-flagged request); each aggregator probes its
computes; every daemon answers a probe with its own ``info()``. The entry daemon
adds itself as ``local_daemon`` on the way back.
"""

from twisted.internet import defer

from csm.api.commands import INFRASTRUCTURE_HEALTH_CHECK as COMMAND
from csm.wire import Flags, Message

#: A probe waits at most this long for one daemon, however long the API timeout.
MAX_PROBE_TIMEOUT = 10.0


def handle(ctx, body):
    """A probe (any daemon) or a caller's request (the master: the others pass it up)."""
    if ctx.message.flags & Flags.INT:
        return ctx.daemon.probe_report(ctx, body)
    return ctx.daemon.cluster_report(ctx, body)


def probe_timeout(ctx, body):
    """How long the next level down may take: below what our caller gives us."""
    given = body.get("timeout") if isinstance(body, dict) else None
    budget = float(given) if given else ctx.remaining() - 1.0
    return max(0.5, min(MAX_PROBE_TIMEOUT, budget))


def probe(link, timeout, verbose=False):
    """Ask one daemon for its report; fires with the body, or None if it did not answer."""
    if link is None:
        return defer.succeed(None)
    message = Message.make(COMMAND.cmd_id, {"timeout": timeout * 0.8, "verbose_health": verbose},
                           flags=Flags.INT)
    d = link.request(message, timeout)
    d.addCallbacks(lambda reply: None if reply.is_error else reply.body(), lambda _f: None)
    return d


def probe_all(peers, timeout, verbose=False):
    """Probe every peer at once; fires with ``[(peer, report or None)]``."""
    peers = list(peers)
    d = defer.gatherResults([probe(peer.link, timeout, verbose) for peer in peers])
    return d.addCallback(lambda reports: list(zip(peers, reports)))


def peer_entry(peer, report, **extra):
    """One downstream daemon as the health check lists it."""
    entry = {"node": peer.node, "role": peer.role, "bounced": peer.bounced,
             "version": peer.version if report is not None else "n/a",
             "responding": report is not None}
    if report is not None:
        entry.update({k: v for k, v in report.items() if k not in entry})
    entry.update(extra)
    return entry
