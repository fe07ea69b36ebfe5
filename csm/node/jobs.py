"""A compute's own job services: who owns which allocation here, step cgroups, logins,
the job launcher (JSM) and the burst buffer command.

``JobServices.observe`` watches the allocation multicasts the node answers: a
prolog that succeeded makes the allocation's owner a user of this node (CAST's
``/etc/pam.d/csm/activelist``), its epilog ends that. Blocking work (cgroup
files) runs on a thread; programs are started with ``spawnProcess``.
"""

import os
import re
import sys

from twisted.internet import defer, protocol, threads

from csm import logs
from csm.errors import CSMError, ErrorCode
from csm.node.scripts import run_script
from csm.node.stepcgroup import LAUNCHER_LEAF, StepCgroups

log = logs.logger("csmapi")

PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KV_PAIRS = re.compile(r"^[A-Za-z0-9_,=]*$")
BB_ARGUMENTS = re.compile(r"^[A-Za-z0-9 _=,./:-]*$")


class _Ready(protocol.ProcessProtocol):
    """Fires with the pid once the launcher says ``ready``; fails with its last words."""

    def __init__(self):
        self.done = defer.Deferred()
        self.output = b""

    def outReceived(self, data):
        self.output += data
        if b"ready\n" in self.output and not self.done.called:
            self.done.callback(self.transport.pid)

    errReceived = outReceived

    def processEnded(self, reason):
        if not self.done.called:
            lines = self.output.decode("utf-8", "replace").strip().splitlines()
            self.done.errback(CSMError(ErrorCode.CSMERR_JSRUN_CMD_ERROR,
                                       lines[-1] if lines else "the launcher ended before it was ready"))


class JobServices:
    """The node side of the step cgroup, login, jsrun and burst buffer APIs."""

    def __init__(self, reactor, node_name, cgroup_root, jsrun_cmd="", bb_cmd=""):
        self.reactor = reactor
        self.node_name = node_name
        self.cgroups = StepCgroups(cgroup_root)
        self.jsrun_program = jsrun_cmd
        self.bb_program = bb_cmd
        self.owners = {}  # allocation_id -> user name
        self.asked = set()  # allocations found in the cgroup tree whose owner the master was asked for

    # -- who owns what here --------------------------------------------------------------
    def observe(self, body, answer):
        """Follow an allocation multicast this node answers (``answer``: its Deferred or value)."""
        if not isinstance(body, dict) or body.get("kind", "allocation") != "allocation" or "allocation_id" not in body:
            return answer
        allocation_id = int(body["allocation_id"])
        if body.get("script") == "epilog":
            self.owners.pop(allocation_id, None)
        elif body.get("script") == "prolog" and body.get("user_name"):
            def started(result):
                self.owners[allocation_id] = body["user_name"]
                return result

            def failed(reason):
                self.owners.pop(allocation_id, None)  # learnt meanwhile (recover), but no prolog ran
                return reason
            if isinstance(answer, defer.Deferred):
                return answer.addCallbacks(started, failed)
            started(answer)
        return answer

    def _unknown(self):
        """Allocations with a cgroup here whose prolog this daemon did not see (it was restarted)."""
        cgroups = self.cgroups.allocations
        try:
            names = os.listdir(cgroups.root) if cgroups.available else []
        except OSError:
            names = []
        found = (int(name[11:]) for name in names if name.startswith("allocation_") and name[11:].isdigit())
        return sorted(a for a in found if a not in self.owners and a not in self.asked)

    @defer.inlineCallbacks
    def recover(self, ask):
        """Learn the owners of the allocations found in the cgroup tree; ``ask(allocation_id)`` fires
        with the owner of an active allocation, None for one that is not, or fails (asked again later)."""
        for allocation_id in (yield threads.deferToThread(self._unknown)):
            self.asked.add(allocation_id)
            try:
                owner = yield ask(allocation_id)
            except CSMError as exc:
                self.asked.discard(allocation_id)
                log.warn("owner of allocation {allocation} unknown: {error}", allocation=allocation_id,
                         error=exc.errmsg)
                continue
            if owner:
                self.owners.setdefault(allocation_id, owner)
                log.info("allocation {allocation} of {user} found in the cgroup tree", allocation=allocation_id,
                         user=owner)

    def allocations_of(self, user_name):
        return sorted(a for a, owner in self.owners.items() if owner == user_name)

    def _owned(self, allocation_id, user_name):
        if self.owners.get(allocation_id) is None:
            raise CSMError(ErrorCode.CSMERR_ALLOC_MISSING, "allocation %d is not active on %s"
                           % (allocation_id, self.node_name))
        if user_name is not None and self.owners[allocation_id] != user_name:
            raise CSMError(ErrorCode.CSMERR_PERM, "allocation %d on %s belongs to %s, not to %s"
                           % (allocation_id, self.node_name, self.owners[allocation_id], user_name))

    # -- step cgroups --------------------------------------------------------------------
    def step_create(self, body, user_name=None, uid=None):
        """``user_name``/``uid``: an unprivileged caller, who must own the allocation and the pid."""
        self._owned(body["allocation_id"], user_name)
        if uid is not None and body.get("pid"):
            _check_pid_owner(body["pid"], uid)
        return threads.deferToThread(self.cgroups.create, body["allocation_id"], body["cgroup_name"],
                                     body.get("components"), body.get("pid") or 0)

    def step_delete(self, body, user_name=None):
        self._owned(body["allocation_id"], user_name)
        return threads.deferToThread(self.cgroups.delete, body["allocation_id"], body["cgroup_name"],
                                     body.get("controller_types") or ())

    # -- logins --------------------------------------------------------------------------
    def login(self, body):
        """The user's allocation here (the one asked for, else their newest); moves the pid with migrate_pid."""
        owned = self.allocations_of(body["user_name"])
        wanted = body.get("allocation_id", -1)
        if wanted is not None and wanted > 0:
            if wanted not in owned:
                raise CSMError(ErrorCode.CSMERR_CGROUP_FAIL, "user %s owns no allocation %d on %s"
                               % (body["user_name"], wanted, self.node_name))
            owned = [wanted]
        if not owned:
            raise CSMError(ErrorCode.CSMERR_CGROUP_FAIL, "user %s owns no allocation on %s"
                           % (body["user_name"], self.node_name))
        allocation_id = owned[-1]
        if not body.get("migrate_pid"):
            return defer.succeed({"allocation_id": allocation_id})
        d = threads.deferToThread(self.cgroups.join, allocation_id, body.get("pid") or 0)
        return d.addCallback(lambda path: {"allocation_id": allocation_id, "cgroup": path})

    # -- the job launcher ----------------------------------------------------------------
    @defer.inlineCallbacks
    def jsrun(self, body):
        """Start the launcher as the allocation's user in its cgroup; fires once it runs."""
        allocation_id = int(body["allocation_id"])
        self._owned(allocation_id, body.get("user_name"))
        program = body.get("jsm_path") or self.jsrun_program
        if not program:
            raise CSMError(ErrorCode.CSMERR_JSRUN_CMD_ERROR, "%s: no jsrun_cmd configured" % self.node_name)
        cgroup = ""
        if self.cgroups.allocations.available:
            cgroup = yield threads.deferToThread(self.cgroups.leaf, allocation_id, LAUNCHER_LEAF)
        nodes = list(body.get("compute_nodes") or ())
        argv = [sys.executable, "-c", "import sys; sys.path.insert(0, %r); from csm.node.launch import main; main()"
                % PACKAGE_PARENT, "--user", body["user_name"], "--cgroup", cgroup, "--", program,
                "--type", str(body.get("type_index", 0)), "--launch_node", body.get("launch_node") or "BAD_NODE",
                "--num_hosts", str(len(nodes)), "--hosts", " ".join(nodes)]
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
               "CSM_ALLOCATION_ID": str(allocation_id), "CSM_JSM_ARGS": body.get("kv_pairs") or ""}
        ready = _Ready()
        self.reactor.spawnProcess(ready, argv[0], argv, env=env, path="/")
        try:
            pid = yield ready.done
        except CSMError as exc:
            raise CSMError(exc.errcode, "%s: %s" % (self.node_name, exc.errmsg)) from None
        log.info("jsrun: {program} started for allocation {allocation} (pid {pid})", program=program,
                 allocation=allocation_id, pid=pid)
        return {"node": self.node_name, "pid": pid}

    # -- burst buffer --------------------------------------------------------------------
    @defer.inlineCallbacks
    def bb_cmd(self, body, timeout):
        """Run the burst buffer command with the caller's arguments; fires with its output."""
        if not self.bb_program:
            raise CSMError(ErrorCode.CSMERR_BB_CMD_ERROR, "%s: no bb_cmd configured" % self.node_name)
        arguments = body.get("command_arguments") or ""
        if not BB_ARGUMENTS.match(arguments):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "command_arguments: only letters, digits, space "
                                                            "and _ = , . / : -")
        user_id = int(body.get("user_id", 0))
        env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CSM_NODE_NAME": self.node_name,
               "CSM_USER_ID": str(user_id)}
        program, argv = self.bb_program, arguments.split()
        if user_id != os.geteuid():  # as CAST: the caller's command runs as the caller, with the caller's groups
            program, argv = "/usr/bin/setpriv", as_user(user_id, self.node_name) + [program] + argv
        code, output = yield run_script(self.reactor, program, argv, timeout, env=env, group=True)
        if code != 0:
            raise CSMError(ErrorCode.CSMERR_BB_CMD_ERROR, "%s: %s exited %d: %s"
                           % (self.node_name, os.path.basename(self.bb_program), code, output.strip()[-300:]))
        return {"node": self.node_name, "command_output": output}


def as_user(user_id, node_name):
    """setpriv's options that run a program as ``user_id`` with the user's groups."""
    import pwd
    try:
        entry = pwd.getpwuid(user_id)
    except KeyError:
        raise CSMError(ErrorCode.CSMERR_BB_CMD_ERROR, "%s: no user with id %d" % (node_name, user_id)) from None
    return ["--reuid=%d" % user_id, "--regid=%d" % entry.pw_gid, "--init-groups", "--"]


def _check_pid_owner(pid, uid):
    try:
        owner = os.stat("/proc/%d" % pid).st_uid
    except OSError:
        raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "pid %d is not a running process" % pid) from None
    if owner != uid:
        raise CSMError(ErrorCode.CSMERR_PERM, "pid %d is not a process of uid %d" % (pid, uid))
