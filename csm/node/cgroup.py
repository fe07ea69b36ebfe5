"""An allocation's cgroup (v2) on a compute node.

``AllocationCgroups(root)`` keeps one directory per allocation under ``root``
(``<root>/allocation_<id>``). Where ``root`` is not on a writable cgroup v2
filesystem (a v1-only or containerised host, or ``cgroup_root: none``), every
call is a no-op and ``available`` says why, once, in the log. Controllers are
used when the parent offers them: ``cpuset`` (the allocation gets the node's
CPUs less the ``isolated_cores`` kept for the system) and ``memory`` (its
high-water mark is the allocation's ``memory_usage_max``). ``cpu.stat`` gives
the CPU time used, with or without the cpu controller.

All calls block (file-system writes); the agent runs them on a thread.
"""

import errno
import os
import signal
import time

CGROUP2_MAGIC = 0x63677270


def is_cgroup2(path):
    """The nearest existing ancestor of ``path`` is on a cgroup2 file system."""
    while path and not os.path.exists(path):
        path = os.path.dirname(path)
    try:
        with open("/proc/self/mountinfo") as f:
            mounts = [line.split() for line in f]
    except OSError:
        return False
    best, kind = "", ""
    for fields in mounts:
        point = fields[4]
        fstype = fields[fields.index("-") + 1] if "-" in fields else ""
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
            best, kind = point, fstype
    return kind == "cgroup2"


def read_value(path, default=None):
    """The stripped text of a cgroup file, or ``default`` when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def write_value(path, value):
    with open(path, "w") as f:
        f.write(value)


def parse_cpus(text):
    """``"0-3,8"`` -> [0, 1, 2, 3, 8]."""
    cpus = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.extend(range(int(low), int(high or low) + 1))
    return cpus


def format_cpus(cpus):
    return ",".join(str(cpu) for cpu in cpus)


class CgroupError(Exception):
    """A cgroup could not be made or removed (the text says which file and why)."""


class AllocationCgroups:
    """Create, read and remove allocation cgroups under ``root``."""

    def __init__(self, root, log=None):
        self.root = root
        self.log = log
        self.available = bool(root) and is_cgroup2(root)
        self.why_not = ("cgroups are off (cgroup_root none)" if not root else
                        "" if self.available else "%s is not on a cgroup v2 file system" % root)

    def path(self, allocation_id):
        return os.path.join(self.root, "allocation_%d" % int(allocation_id))

    def _enable(self, directory, wanted):
        """Turn on those of ``wanted`` the parent offers for its children; returns the enabled set."""
        offered = set((read_value(os.path.join(directory, "cgroup.controllers"), "") or "").split())
        enabled = set((read_value(os.path.join(directory, "cgroup.subtree_control"), "") or "").split())
        for name in sorted((set(wanted) & offered) - enabled):
            try:
                write_value(os.path.join(directory, "cgroup.subtree_control"), "+" + name)
                enabled.add(name)
            except OSError:
                pass  # e.g. processes in the parent: the controller stays off, the cgroup still works
        return enabled

    def create(self, allocation_id, isolated_cores=0):
        """Make the allocation's cgroup; fires a dict of what was set (empty when unavailable)."""
        if not self.available:
            return {}
        try:
            os.makedirs(self.root, exist_ok=True)
            enabled = self._enable(self.root, ("cpuset", "memory", "cpu"))
            path = self.path(allocation_id)
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise CgroupError("cannot create %s: %s" % (self.path(allocation_id), exc.strerror)) from None
        done = {"path": path, "controllers": sorted(enabled)}
        if "cpuset" in enabled and isolated_cores:
            cpus = parse_cpus(read_value(os.path.join(self.root, "cpuset.cpus.effective"), ""))
            keep = cpus[int(isolated_cores):] or cpus
            try:
                write_value(os.path.join(path, "cpuset.cpus"), format_cpus(keep))
            except OSError as exc:
                raise CgroupError("cannot set cpuset.cpus of %s: %s" % (path, exc.strerror)) from None
            done["cpus"] = format_cpus(keep)
        return done

    def usage(self, allocation_id):
        """``{"cpu_usage": ns, "memory_usage_max": bytes}`` of the allocation's cgroup (-1 unknown)."""
        path = self.path(allocation_id)
        result = {"cpu_usage": -1, "memory_usage_max": -1}
        if not self.available or not os.path.isdir(path):
            return result
        for line in (read_value(os.path.join(path, "cpu.stat"), "") or "").splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                result["cpu_usage"] = int(value) * 1000
        peak = read_value(os.path.join(path, "memory.peak"))
        if peak and peak.isdigit():
            result["memory_usage_max"] = int(peak)
        return result

    def remove(self, allocation_id, timeout=5.0):
        """Kill what still runs in the allocation's cgroup (steps and logins too) and remove it;
        True if it existed."""
        path = self.path(allocation_id)
        if not self.available or not os.path.isdir(path):
            return False
        remove_tree(path, timeout)
        return True


def _kill_members(path):
    """SIGKILL every process of ``path`` and its children (``cgroup.kill`` where the kernel has it)."""
    if os.path.exists(os.path.join(path, "cgroup.kill")):
        try:
            write_value(os.path.join(path, "cgroup.kill"), "1")
            return
        except OSError:
            pass
    for directory, _, _ in os.walk(path):
        for pid in (read_value(os.path.join(directory, "cgroup.procs"), "") or "").split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass  # it ended meanwhile


def remove_tree(path, timeout=5.0):
    """Kill the processes of cgroup ``path`` and remove it with its child cgroups, deepest first."""
    _kill_members(path)
    deadline = time.monotonic() + timeout
    for directory in sorted((d for d, _, _ in os.walk(path)), key=len, reverse=True):
        while True:
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError("cannot remove %s: %s" % (directory, exc.strerror)) from None
                _kill_members(directory)  # a process forked while the first kill went round
                time.sleep(0.05)  # the killed processes are still exiting
