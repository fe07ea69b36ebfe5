"""The compute's side of allocations and steps: prolog, epilog, cgroup, counters.

The master's multicast reaches ``AllocationAgent.handle`` with a body naming the
script (``prolog`` or ``epilog``), the kind (``allocation`` or ``step``) and the
allocation. A prolog creates the allocation's cgroup, runs the privileged prolog
(``--type allocation --user_flags .. --sys_flags ..`` with the ``CSM_*``
environment) and answers with the baseline counters, read once the script has started, while it
runs; an epilog reads the final counters once the privileged epilog has started (while it runs) and
then removes the cgroup. A script that
exits non-zero fails the node (``CSMERR_SCRIPT_FAILURE``), one still running at
the timeout is killed with its process group (``CSMERR_TIMEOUT``). An epilog
arriving while the prolog of the same allocation (or step) runs, or the other
way round, is refused with CAST's collision codes (52, 53); the same script
sent again (the master resends after a failover) joins the running one instead
of colliding (CAST's 51 and 54), and a prolog sent again after it finished
answers with the same baseline.
"""

import os
import time

from twisted.internet import defer, task, threads
from twisted.python.failure import Failure

from csm import logs
from csm.errors import CSMError, ErrorCode
from csm.node import usage
from csm.node.cgroup import AllocationCgroups, CgroupError
from csm.node.scripts import run_script

log = logs.logger("csmapi")

#: (arriving script, running script) -> error code
COLLISIONS = {
    ("epilog", "epilog"): ErrorCode.CSMERR_EPILOG_EPILOG_COLLISION,
    ("epilog", "prolog"): ErrorCode.CSMERR_EPILOG_PROLOG_COLLISION,
    ("prolog", "epilog"): ErrorCode.CSMERR_PROLOG_EPILOG_COLLISION,
    ("prolog", "prolog"): ErrorCode.CSMERR_PROLOG_PROLOG_COLLISION,
}
#: seconds kept back from the multicast timeout for the counters and the answer
SCRIPT_MARGIN = 1.5
GPU_SAMPLE_INTERVAL = 1.0


def script_environment(body, node_name):
    """The CSM_* variables a prolog or epilog gets (allocation scripts get the job and user too)."""
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
           "CSM_ALLOCATION_ID": str(body["allocation_id"]), "CSM_NODE_NAME": node_name}
    if body.get("kind") == "step":
        env["CSM_STEP_ID"] = str(body.get("step_id", ""))
    else:
        env.update(CSM_PRIMARY_JOB_ID=str(body.get("primary_job_id", "")),
                   CSM_SECONDARY_JOB_ID=str(body.get("secondary_job_id", 0)),
                   CSM_USER_NAME=str(body.get("user_name", "")))
    return env


class AllocationAgent:
    """Runs the scripts and keeps the per-allocation state of one compute."""

    def __init__(self, reactor, node_name, prolog, epilog, cgroup_root, nvml=None, root="/"):
        self.reactor = reactor
        self.node_name = node_name
        self.scripts = {"prolog": prolog, "epilog": epilog}
        self.cgroups = AllocationCgroups(cgroup_root)
        if not self.cgroups.available and cgroup_root:
            log.info("allocation cgroups skipped: {why}", why=self.cgroups.why_not)
        self.gpus = usage.GpuUsageMeter(nvml)
        self.root = root
        self.sources = usage.Sources(root)
        self.running = {}  # (allocation_id, step_id or None) -> "prolog" | "epilog"
        self.active = {}  # allocation_id -> per-CPU and per-GPU baselines
        self._sampler = None
        self.has_gpus = False
        self.readings_block = True  # until a reading (on a thread) has found no NVML and no InfiniBand

    def off_reactor(self, function, *args):
        """Blocking work (file systems, NVML) goes to a thread."""
        return threads.deferToThread(function, *args)

    # -- counters ----------------------------------------------------------------------
    def read_counters(self, allocation_id):
        """The counters now (blocking where the node has GPUs or InfiniBand ports)."""
        cpus = usage.cpu_times(self.root)
        gpus = self.gpus.indices()
        self.has_gpus = bool(gpus)
        sources = self.sources.refresh(self.reactor.seconds())
        values = usage.counters(self.cgroups.usage(allocation_id), self.gpus if self.has_gpus else None, self.root,
                                node_cpu=cpus.get("cpu"), sources=sources)
        self.readings_block = not self.gpus.nvml.absent or bool(sources.ib)
        return {"counters": values, "cpus": cpus, "gpus": self.gpus.per_gpu(gpus)}

    def _read(self, allocation_id):
        """Fires with ``read_counters``: on a thread while a reading may block (NVML, the
        InfiniBand ports' counters are device queries), on the reactor once the last reading
        found neither (/proc, cgroup and RAPL files are memory reads, ~50 us in all): a
        thread's hand-over cost more CPU than the reading itself. Ports found by the minute's
        search send the reading that finds them to a thread too."""
        if self.readings_block or self.sources.refresh(self.reactor.seconds()).ib:
            return self.off_reactor(self.read_counters, allocation_id)
        return defer.maybeDeferred(self.read_counters, allocation_id)

    def _sample_gpus(self):
        return self.off_reactor(self.gpus.sample, time.monotonic()).addErrback(
            lambda f: log.warn("GPU usage sample failed: {error}", error=f.getErrorMessage()))

    def _start_sampling(self):
        if self._sampler is None and self.has_gpus:
            self._sampler = task.LoopingCall(self._sample_gpus)
            self._sampler.clock = self.reactor
            self._sampler.start(GPU_SAMPLE_INTERVAL, now=True)

    def _stop_sampling(self):
        if self._sampler is not None and not self.active:
            if self._sampler.running:
                self._sampler.stop()
            self._sampler = None
            self.gpus.pause()

    def stop(self):
        self.active.clear()
        self._stop_sampling()

    # -- the multicast ------------------------------------------------------------------
    def handle(self, body):
        """Fires with this node's answer; fails with a ``CSMError``."""
        script, kind = body.get("script"), body.get("kind", "allocation")
        if script not in ("prolog", "epilog") or "allocation_id" not in body:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "%s: bad allocation request" % self.node_name)
        key = (int(body["allocation_id"]), body.get("step_id") if kind == "step" else None)
        running = self.running.get(key)
        if running is not None:
            if running[0] == script:  # the master sent it again (e.g. after a failover): share the answer
                log.info("{script} of {kind} {name} sent again: joining the running one", script=script,
                         kind=kind, name=_name(key))
                return _share(running[1])
            raise CSMError(COLLISIONS[(script, running[0])], "%s: %s of %s %s arrived while its %s runs"
                           % (self.node_name, script, kind, _name(key), running[0]))
        if kind == "allocation" and script == "prolog" and key[0] in self.active:
            return {"node": self.node_name, "counters": self.active[key[0]]["counters"], "again": True}
        timeout = max(1.0, float(body.get("timeout") or 30.0) - SCRIPT_MARGIN)
        if kind == "step":
            d = self._run(script, body, timeout).addCallback(lambda _: {"node": self.node_name})
        elif script == "prolog":
            d = self._prolog(key[0], body, timeout)
        else:
            d = self._epilog(key[0], body, timeout)
        if d.called:
            return d
        self.running[key] = (script, d)

        def finished(result):
            self.running.pop(key, None)
            return result
        return d.addBoth(finished)

    def _run(self, script, body, timeout):
        path = self.scripts[script]
        if not path:
            return defer.succeed(None)  # prolog/epilog "none": nothing to run
        args = ["--type", body.get("kind", "allocation")]
        if body.get("kind") != "step":
            args += ["--user_flags", body.get("user_flags") or "", "--sys_flags", body.get("system_flags") or ""]
        elif body.get("user_flags"):
            args += ["--user_flags", body["user_flags"]]
        started = self.reactor.seconds()

        def done(result):
            code, output = result
            if code == 0:
                if output:
                    log.debug("{script} on {node}: {output}", script=script, node=self.node_name,
                              output=output.strip()[-300:])
                return None
            if code == 137 and self.reactor.seconds() - started >= timeout - 0.5:
                raise CSMError(ErrorCode.CSMERR_TIMEOUT, "%s: %s killed after %.0f s" % (self.node_name, script,
                                                                                         timeout))
            raise CSMError(ErrorCode.CSMERR_SCRIPT_FAILURE, "%s: %s exited %d: %s"
                           % (self.node_name, script, code, output.strip()[-300:]))
        env = script_environment(body, self.node_name)
        return run_script(self.reactor, path, args, timeout, env=env, group=True).addCallback(done)

    @defer.inlineCallbacks
    def _prolog(self, allocation_id, body, timeout):
        try:
            made = {}
            if self.cgroups.available:
                made = yield self.off_reactor(self.cgroups.create, allocation_id, body.get("isolated_cores") or 0)
        except CgroupError as exc:
            raise CSMError(ErrorCode.CSMERR_CGROUP_FAIL, "%s: %s" % (self.node_name, exc)) from None
        # the baseline is read while the prolog runs (NVML and /sys reads can take as long as
        # the script): the answer waits for the longer of the two, not for both in turn
        script = self._run("prolog", body, timeout)
        reading = self._read(allocation_id)
        try:
            yield script
        except CSMError:
            yield reading.addErrback(lambda _: None)
            yield self._remove_cgroup(allocation_id)  # no epilog will come for a failed prolog
            raise
        baseline = yield reading
        self.active[allocation_id] = baseline
        self._start_sampling()
        return {"node": self.node_name, "counters": baseline["counters"], "cgroup": made}

    @defer.inlineCallbacks
    def _epilog(self, allocation_id, body, timeout):
        # the final readings are taken as the epilog starts, while it runs (as the prolog's
        # baseline): the answer waits for the longer of the two, not for both in turn
        script = self._run("epilog", body, timeout)
        reading = self._read(allocation_id)
        script_error = None
        try:
            yield script
        except CSMError as exc:
            script_error = exc
        final = yield reading
        baseline = self.active.pop(allocation_id, None)
        self._stop_sampling()
        removed = yield self._remove_cgroup(allocation_id)
        if script_error is not None:
            raise script_error
        if isinstance(removed, CSMError):
            raise removed
        return {"node": self.node_name, "counters": final["counters"], "cpus": _deltas(baseline, final, "cpus"),
                "gpus": _gpu_deltas(baseline, final)}

    def _remove_cgroup(self, allocation_id):
        if not self.cgroups.available:
            return defer.succeed(False)

        def failed(reason):
            reason.trap(CgroupError)
            return CSMError(ErrorCode.CSMERR_CGROUP_DEL_ERROR, "%s: %s" % (self.node_name, reason.value))
        return self.off_reactor(self.cgroups.remove, allocation_id).addErrback(failed)


def _share(d):
    """A Deferred firing with ``d``'s result, leaving ``d``'s own chain as it is."""
    copy = defer.Deferred()

    def fire(result):
        if isinstance(result, Failure):
            copy.errback(result)
        else:
            copy.callback(result)
        return result
    d.addBoth(fire)
    return copy


def _name(key):
    return str(key[0]) if key[1] is None else "%s step %s" % key


def _deltas(baseline, final, key):
    """Per-CPU busy ns during the allocation (empty without a baseline, e.g. after a restart)."""
    if not baseline:
        return {}
    before = baseline.get(key) or {}
    return {name: value - before[name] for name, value in (final.get(key) or {}).items()
            if name != "cpu" and name in before and value >= before[name]}


def _gpu_deltas(baseline, final):
    before = {g["gpu_id"]: g["gpu_usage"] for g in (baseline or {}).get("gpus") or ()}
    return [dict(g, gpu_usage=g["gpu_usage"] - before.get(g["gpu_id"], 0)) for g in final.get("gpus") or ()]
