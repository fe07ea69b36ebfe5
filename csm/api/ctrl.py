"""``csm_ctrl_cmd``: control the local daemon (log levels, status, memory, agg reset)."""

import gc
import resource
import sys

from twisted.internet import threads

from csm import logs
from csm.api.commands import CTRL_CMD as COMMAND  # noqa: F401 (the command this module handles)
from csm.errors import CSMError, ErrorCode


def handle(ctx, body):
    """The command's answer; with ``dump_mem`` a Deferred (the object census runs in a thread)."""
    daemon = ctx.daemon
    result = {}
    changed = {}
    for sub in logs.SUBCOMPONENTS:
        level = body.get("log." + sub)
        if level:
            logs.set_level(sub, level)
            changed[sub] = level
    if changed:
        logs.logger("csmd").info("log levels changed: {changed}", changed=changed)
        result["log_levels"] = logs.levels()
    if body.get("agg_reset"):
        reset = getattr(daemon, "agg_reset", None)
        if reset is None:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "--agg.reset is for compute daemons")
        result["agg_reset"] = reset()
    memory = None
    if body.get("dump_mem"):
        reactor = daemon.reactor
        memory = threads.deferToThreadPool(reactor, reactor.getThreadPool(), memory_stats)
        result["memory"] = None
    if body.get("dump_perf"):
        stats = getattr(getattr(daemon, "router", None), "stats", None)
        result["perf_data"] = stats.perf_data() if stats is not None else {}
    if body.get("status") or not result:
        result["status"] = daemon.status()
    if memory is not None:
        return memory.addCallback(lambda stats: dict(result, memory=stats))
    return result


def memory_stats():
    """Process memory and the largest object populations (walks every object: run in a thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    counts = {}
    for obj in gc.get_objects():
        name = type(obj).__name__
        counts[name] = counts.get(name, 0) + 1
    top = sorted(counts.items(), key=lambda item: -item[1])[:15]
    return {"max_rss_kib": usage.ru_maxrss, "gc_objects": sum(counts.values()),
            "gc_counts": list(gc.get_count()), "top_types": dict(top),
            "python": sys.version.split()[0]}
