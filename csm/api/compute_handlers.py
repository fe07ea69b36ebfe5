"""The handlers a compute runs itself: the node's side of the step cgroup, cgroup login,
jsrun, bb_cmd, diagnostics check and soft failure recovery APIs.

Their master sides (``cgroup.py``, ``bb.py``, ``diag.py``, ``recovery.py``) read the
database; this module imports none of it, so a compute loads no master code.
"""

import os
import sys
import tempfile

from twisted.internet import defer

from csm.api import multicast
from csm.api.bb_commands import BB_CMD
from csm.api.cgroup_commands import CGROUP_LOGIN, JSRUN_CMD, STEP_CGROUP_CREATE, STEP_CGROUP_DELETE
from csm.api.commands import SOFT_FAILURE_RECOVERY
from csm.api.diag_commands import DIAG_CHECK
from csm.api.wm_commands import ALLOCATION_QUERY
from csm.errors import CSMError, ErrorCode
from csm.node.scripts import run_script
from csm.users import user_name_of
from csm.wire import Flags, Message

#: diag_check: the last bytes of a check's output sent back
OUTPUT_LIMIT = 4096
#: states of an allocation whose prolog has run on its nodes
PROLOG_DONE = ("running", "to-staging-out", "staging-out")
STEP_FIELDS = {"allocation_id", "cgroup_name", "pid", "components", "compute_nodes"}


def _caller(ctx):
    """(user name, uid) of a caller who is not privileged; (None, None) for a privileged one
    or the master's multicast (it checked the caller)."""
    if ctx.message.flags & Flags.INT or getattr(ctx.link, "privileged", True):
        return None, None
    return user_name_of(ctx.uid), ctx.uid


def step_body(ctx, body, command):
    """The step cgroup request as the compute handles it."""
    if ctx.message.flags & Flags.INT:
        return {key: value for key, value in body.items() if key != "timeout"}
    unknown = sorted(set(body) - STEP_FIELDS)
    if unknown:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "%s: unknown field %r" % (command.api_name, unknown[0]))
    return body


def step_cgroup_create(ctx, body):
    """On the compute (CAST's way), or through the master when ``compute_nodes`` names the step's nodes."""
    body = step_body(ctx, body, STEP_CGROUP_CREATE)
    if not isinstance(body.get("components"), list):
        raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "%s: components must be a list of {type, params, values}"
                       % STEP_CGROUP_CREATE.api_name)
    user_name, uid = _caller(ctx)
    return _known(ctx, body["allocation_id"]).addCallback(lambda _: ctx.daemon.jobs.step_create(body, user_name, uid))


def step_cgroup_delete(ctx, body):
    body = step_body(ctx, body, STEP_CGROUP_DELETE)
    user_name, _ = _caller(ctx)
    return _known(ctx, body["allocation_id"]).addCallback(lambda _: ctx.daemon.jobs.step_delete(body, user_name))


def _ask_master(ctx):
    """``ask(allocation_id)`` for ``JobServices.recover``: the owner of an active allocation, from the master."""
    def ask(allocation_id):
        message = Message.make(ALLOCATION_QUERY.cmd_id, {"allocation_id": allocation_id})

        def owner(reply):
            if reply.is_error:
                error = reply.error()
                if error.errcode in (ErrorCode.CSMERR_SENDRCV_ERROR, ErrorCode.CSMERR_TIMEOUT):
                    raise error  # not an answer: ask again next time
                return None
            rows = (reply.body() or {}).get("allocations") or []
            live = rows and rows[0].get("history") is None and rows[0].get("state") in PROLOG_DONE
            return rows[0]["user_name"] if live else None
        return ctx.daemon.router.forward(message).addCallback(owner)
    return ask


def _known(ctx, allocation_id):
    """Fires once the owner of ``allocation_id`` is known here, if the master knows it."""
    if allocation_id in ctx.daemon.jobs.owners:
        return defer.succeed(None)
    return ctx.daemon.jobs.recover(_ask_master(ctx))


@defer.inlineCallbacks
def cgroup_login(ctx, body):
    """The user's allocation on this node; after a restart of this daemon, the owners of the
    allocations still in the cgroup tree are asked of the master first."""
    jobs = ctx.daemon.jobs
    if not jobs.allocations_of(body["user_name"]):
        yield jobs.recover(_ask_master(ctx))
    return (yield jobs.login(body))


def jsrun_compute(ctx, body):
    """The master's multicast starts the launcher here; a compute may not ask for it (CAST)."""
    if not ctx.message.flags & Flags.INT:
        raise CSMError(ErrorCode.CSMERR_BAD_ADDR_TYPE, "%s may not be called from a compute node"
                       % JSRUN_CMD.api_name)
    return _known(ctx, int(body["allocation_id"])).addCallback(lambda _: ctx.daemon.jobs.jsrun(body))


def bb_cmd_compute(ctx, body):
    """The master's multicast runs the command here."""
    return ctx.daemon.jobs.bb_cmd(body, max(1.0, float(body.get("timeout") or ctx.remaining()) - 1.0))


def check_compute(ctx, body):
    """The master's multicast, from the aggregator: run the check here."""
    daemon = ctx.daemon
    script = body.get("script")
    if not isinstance(script, str) or not script:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "diag_check without a script")
    handle, path = tempfile.mkstemp(prefix="csm-diag-", suffix="-" + os.path.basename(str(body.get("test_name"))))
    with os.fdopen(handle, "w") as f:
        f.write(script)
    os.chmod(path, 0o700)
    env = dict(os.environ, CSM_NODE_NAME=daemon.node_name, CSM_DIAG_TEST=str(body.get("test_name", "")),
               CSM_DIAG_RUN_ID=str(body.get("run_id", "")), CSM_SOCKET=daemon.config.net.local_client_listen.socket,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"))
    timeout = max(1.0, min(float(body.get("check_timeout") or 60), float(body.get("timeout") or 60)))

    def done(result):
        code, output = result
        return {"exit_status": code, "output": output[-OUTPUT_LIMIT:]}

    def remove(result):
        try:
            os.unlink(path)
        except OSError:
            pass
        return result
    return run_script(daemon.reactor, path, (), timeout, env=env, group=True).addCallback(done).addBoth(remove)


def soft_failure_recovery(ctx, body):
    """The master's multicast, from the aggregator: run the recovery script."""
    daemon = ctx.daemon
    script = daemon.config.recovery_script
    if not os.path.exists(script):
        return {"node": daemon.node_name, "ran": False}  # CAST ships a script that does nothing
    timeout = max(1.0, float(body.get("timeout") or 30) - multicast.LEVEL_MARGIN)

    def done(result):
        code, output = result
        if code:
            raise CSMError(ErrorCode.CSMERR_SOFT_FAIL_RECOVERY_AGENT, "%s: recovery script exited %d: %s"
                           % (daemon.node_name, code, output.strip()[-200:]))
        return {"node": daemon.node_name, "ran": True}
    env = dict(os.environ, CSM_NODE_NAME=daemon.node_name)
    return run_script(daemon.reactor, script, (), timeout, env=env, group=True).addCallback(done)


HANDLERS = {STEP_CGROUP_CREATE.cmd_id: step_cgroup_create, STEP_CGROUP_DELETE.cmd_id: step_cgroup_delete,
            CGROUP_LOGIN.cmd_id: cgroup_login, JSRUN_CMD.cmd_id: jsrun_compute, BB_CMD.cmd_id: bb_cmd_compute,
            DIAG_CHECK.cmd_id: check_compute, SOFT_FAILURE_RECOVERY.cmd_id: soft_failure_recovery}
