"""Cgroups inside an allocation's cgroup (v2): job steps, login sessions, the job launcher.

``StepCgroups(root)`` works under the allocation cgroups of ``AllocationCgroups``
(``<root>/allocation_<id>``):

* a step cgroup ``<root>/allocation_<id>/<cgroup_name>`` with its CPU set and
  memory limits (``csm_allocation_step_cgroup_create``); CAST's v1 parameter
  names are taken too (``memory.limit_in_bytes`` is ``memory.max``,
  ``memory.soft_limit_in_bytes`` is ``memory.high``, -1 is ``max``);
* the leaf ``login`` that ssh sessions of the allocation's owner join
  (``csm_cgroup_login``) and the leaf ``jsm`` of the job launcher: cgroup v2
  keeps processes in leaves only, so that steps can still get controllers.

Everything is checked before the first directory is made, and a failure after
it removes what this call made: nothing is left half-made. All calls block;
the caller runs them on a thread.
"""

import os
import re

from csm.errors import CSMError, ErrorCode
from csm.node.cgroup import AllocationCgroups, CgroupError, parse_cpus, read_value, remove_tree, write_value
from csm.node.controllers import CONTROLLERS
#: parameters a step may set, by controller; v1 names map to their v2 file
PARAMETERS = {
    "cpuset": {"cpuset.cpus": "cpuset.cpus", "cpuset.mems": "cpuset.mems"},
    "memory": {"memory.max": "memory.max", "memory.high": "memory.high", "memory.low": "memory.low",
               "memory.min": "memory.min", "memory.swap.max": "memory.swap.max",
               "memory.limit_in_bytes": "memory.max", "memory.soft_limit_in_bytes": "memory.high"},
    "devices": {},  # v2 controls devices with eBPF programs: no files to write
    "cpuacct": {},  # v2 accounts CPU time in every cgroup (cpu.stat)
}
#: the v2 controller a CAST controller needs enabled (None: nothing to enable)
V2_CONTROLLER = {"cpuset": "cpuset", "memory": "memory", "devices": None, "cpuacct": None}
LOGIN_LEAF = "login"
LAUNCHER_LEAF = "jsm"
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


def _error(code, text):
    return CSMError(code, text)


class StepCgroups:
    """Step, login and launcher cgroups of the allocations under ``root``."""

    def __init__(self, root):
        self.allocations = AllocationCgroups(root)

    def allocation_path(self, allocation_id):
        """The allocation's cgroup, which must exist (``CSMError`` otherwise)."""
        if not self.allocations.available:
            raise _error(ErrorCode.CSMERR_CGROUP_FAIL, self.allocations.why_not)
        path = self.allocations.path(allocation_id)
        if not os.path.isdir(path):
            raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "allocation %d has no cgroup on this node" % allocation_id)
        return path

    def step_path(self, allocation_id, cgroup_name):
        if not isinstance(cgroup_name, str) or not NAME.match(cgroup_name) or cgroup_name.startswith("cgroup.") \
                or cgroup_name in (LOGIN_LEAF, LAUNCHER_LEAF):
            raise _error(ErrorCode.CSMERR_INVALID_PARAM, "invalid cgroup_name %r (letters, digits, _ . -; not %s "
                         "or %s)" % (cgroup_name, LOGIN_LEAF, LAUNCHER_LEAF))
        return os.path.join(self.allocation_path(allocation_id), cgroup_name)

    # -- steps ----------------------------------------------------------------------------
    def create(self, allocation_id, cgroup_name, components, pid=0):
        """Make (or update) a step cgroup; returns what was written, by file."""
        path = self.step_path(allocation_id, cgroup_name)
        parent = os.path.dirname(path)
        writes, wanted = self._plan(parent, components)
        if pid:
            _check_pid(pid)
        offered = set((read_value(os.path.join(parent, "cgroup.controllers"), "") or "").split())
        missing = sorted(wanted - offered)
        if missing:
            raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "the %s controller%s not offered in %s (cgroup v2 offers: %s)"
                         % (", ".join(missing), " is" if len(missing) == 1 else "s are", parent,
                            " ".join(sorted(offered)) or "none"))
        enabled = set((read_value(os.path.join(parent, "cgroup.subtree_control"), "") or "").split())
        for name in sorted(wanted - enabled):
            try:
                write_value(os.path.join(parent, "cgroup.subtree_control"), "+" + name)
            except OSError as exc:
                raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "cannot enable %s below %s: %s (processes in the "
                             "allocation's own cgroup?)" % (name, parent, exc.strerror)) from None
        made = not os.path.isdir(path)
        try:
            os.makedirs(path, exist_ok=True)
            for name, value in writes:
                _write_checked(path, name, value)
            if pid:
                _write_checked(path, "cgroup.procs", str(pid))
        except (CSMError, OSError) as exc:
            if made:
                try:
                    remove_tree(path, timeout=2.0)
                except CgroupError:
                    pass
            if isinstance(exc, CSMError):
                raise
            raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "cannot create %s: %s" % (path, exc.strerror)) from None
        return {"path": path, "written": dict(writes), "pid": pid or None}

    def _plan(self, parent, components):
        """The (file, value) writes of ``components`` and the v2 controllers they need."""
        if not components:
            raise _error(ErrorCode.CSMERR_MISSING_PARAM, "components: at least one controller is needed")
        writes, wanted = [], set()
        for component in components:
            if not isinstance(component, dict):
                raise _error(ErrorCode.CSMERR_INVALID_PARAM, "components: each is an object with type, params, values")
            kind = component.get("type")
            if kind not in CONTROLLERS:
                raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "unknown controller %r (one of: %s)"
                             % (kind, ", ".join(CONTROLLERS)))
            params, values = component.get("params") or [], component.get("values") or []
            if not isinstance(params, list) or not isinstance(values, list):
                raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "%s: params and values are lists" % kind)
            if len(params) != len(values):
                raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "%s: %d params but %d values"
                             % (kind, len(params), len(values)))
            if V2_CONTROLLER[kind]:
                wanted.add(V2_CONTROLLER[kind])
            for param, value in zip(params, values):
                target = PARAMETERS[kind].get(str(param))
                if target is None:
                    raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "%s: parameter %r cannot be set on cgroup v2 "
                                 "(settable: %s)" % (kind, param, ", ".join(sorted(PARAMETERS[kind])) or "none"))
                writes.append((target, _value(parent, target, str(value))))
        return writes, wanted

    def delete(self, allocation_id, cgroup_name, controller_types=()):
        """Kill the step's processes and remove its cgroup (v2: one directory for every controller)."""
        for kind in controller_types or ():
            if kind not in CONTROLLERS:
                raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "unknown controller %r (one of: %s)"
                             % (kind, ", ".join(CONTROLLERS)))
        path = self.step_path(allocation_id, cgroup_name)
        if not os.path.isdir(path):
            raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "allocation %d has no step cgroup %s on this node"
                         % (allocation_id, cgroup_name))
        try:
            remove_tree(path)
        except CgroupError as exc:
            raise _error(ErrorCode.CSMERR_CGROUP_DEL_ERROR, str(exc)) from None
        return {"path": path}

    # -- leaves for logins and the launcher -----------------------------------------------
    def leaf(self, allocation_id, leaf):
        """The allocation's ``leaf`` cgroup (made when missing); returns its path."""
        path = os.path.join(self.allocation_path(allocation_id), leaf)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "cannot create %s: %s" % (path, exc.strerror)) from None
        return path

    def join(self, allocation_id, pid, leaf=LOGIN_LEAF):
        """Move ``pid`` into the allocation's ``leaf`` cgroup; returns the leaf's path."""
        self.allocation_path(allocation_id)
        _check_pid(pid)
        path = self.leaf(allocation_id, leaf)
        _write_checked(path, "cgroup.procs", str(pid))
        return path


def _check_pid(pid):
    if not isinstance(pid, int) or pid <= 0 or not os.path.exists("/proc/%d" % pid):
        raise _error(ErrorCode.CSMERR_INVALID_PARAM, "pid %r is not a running process" % (pid,))


def _value(parent, name, value):
    """Check a value against the allocation's limits; v1's -1 (no limit) is v2's ``max``."""
    if name.startswith("memory."):
        if value.strip() in ("-1", "max"):
            return "max"
        if not value.strip().isdigit():
            raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "%s: %r is not a number of bytes" % (name, value))
        return value.strip()
    if name == "cpuset.cpus":
        try:
            cpus = set(parse_cpus(value))
        except ValueError:
            raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "cpuset.cpus: %r is not a CPU list" % value) from None
        allowed = set(parse_cpus(read_value(os.path.join(parent, "cpuset.cpus.effective"), "") or ""))
        if allowed and not cpus <= allowed:
            raise _error(ErrorCode.CSMERR_CGROUP_EINVAL, "cpuset.cpus: CPUs %s are outside the allocation's %s"
                         % (",".join(map(str, sorted(cpus - allowed))), ",".join(map(str, sorted(allowed)))))
    return value


def _write_checked(path, name, value):
    try:
        write_value(os.path.join(path, name), value)
    except OSError as exc:
        raise _error(ErrorCode.CSMERR_CGROUP_FAIL, "cannot write %r to %s: %s"
                     % (value, os.path.join(path, name), exc.strerror)) from None
