"""A node's usage counters for allocation accounting.

At an allocation's create (baseline) and at its delete or staging-out (final)
the compute reports ``counters()``: monotonic readings the master turns into
deltas. A counter this node cannot read is -1. Units: ``cpu_usage`` ns,
``memory_usage_max`` bytes, ``energy`` and ``gpu_energy`` J, ``gpu_usage`` µs of
GPU busy time, ``ib_rx``/``ib_tx`` bytes.

``GpuUsageMeter`` integrates NVML's utilisation while allocations are active
(NVML has no busy-time counter), and keeps each GPU's memory high-water mark.
Every reader blocks; callers run them on a thread.
"""

import glob
import os

from csm.node.nvml import Nvml

COUNTERS = ("energy", "gpfs_read", "gpfs_write", "ib_tx", "ib_rx", "power_cap_hit", "gpu_usage", "gpu_energy",
            "cpu_usage", "memory_usage_max")
CLOCK_TICK_NS = 10 ** 9 // (os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100)


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def cpu_times(root="/"):
    """``{"cpu": busy ns, "cpu_0": busy ns, ...}`` from /proc/stat (idle and iowait excluded)."""
    result = {}
    lines = []
    try:
        with open(os.path.join(root, "proc/stat")) as f:
            for line in f:
                if not line.startswith("cpu"):
                    break  # the cpu lines come first; the rest (intr: thousands of numbers) is not split
                lines.append(line.split())
    except OSError:
        return result
    for fields in lines:
        try:
            values = [int(v) for v in fields[1:9]]
        except ValueError:
            continue
        busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
        name = fields[0] if fields[0] == "cpu" else "cpu_" + fields[0][3:]
        result[name] = busy * CLOCK_TICK_NS
    return result


def rapl_files(root="/"):
    """The energy files of the RAPL package domains (powercap; sub-domains are inside their package)."""
    return [path for path in sorted(glob.glob(os.path.join(root, "sys/class/powercap/intel-rapl:[0-9]*/energy_uj")))
            if os.path.basename(os.path.dirname(path)).count(":") == 1]


def ib_ports(root="/"):
    """The counters folders of every InfiniBand port."""
    return sorted(glob.glob(os.path.join(root, "sys/class/infiniband/*/ports/*/counters")))


def node_energy(root="/", files=None):
    """Joules from the RAPL package domains (``files``: ``rapl_files()``), or None where unreadable."""
    total = None
    for path in rapl_files(root) if files is None else files:
        value = _read_int(path)
        if value is not None:
            total = (total or 0) + value // 10 ** 6
    return total


def ib_bytes(root="/", ports=None):
    """(received, transmitted) bytes over every InfiniBand port (``ports``: ``ib_ports()``), or (None, None)."""
    rx = tx = None
    for port in ib_ports(root) if ports is None else ports:
        r, t = _read_int(os.path.join(port, "port_rcv_data")), _read_int(os.path.join(port, "port_xmit_data"))
        if r is not None and t is not None:
            rx, tx = (rx or 0) + 4 * r, (tx or 0) + 4 * t  # the counters count 4-byte words
    return rx, tx


class Sources:
    """A node's RAPL energy files and InfiniBand ports, looked for again at most every ``every``
    seconds (a driver loaded after the daemon started is found) instead of at every reading."""

    def __init__(self, root="/", every=60.0):
        self.root, self.every = root, every
        self.found_at = None
        self.rapl, self.ib = [], []

    def refresh(self, now):
        if self.found_at is None or not 0 <= now - self.found_at < self.every:
            self.rapl, self.ib, self.found_at = rapl_files(self.root), ib_ports(self.root), now
        return self


class GpuUsageMeter:
    """GPU busy time and memory high-water marks, sampled by ``sample()`` (once a second or so)."""

    def __init__(self, nvml=None):
        self.nvml = Nvml(nvml) if not isinstance(nvml, Nvml) else nvml
        self.busy_us = {}  # gpu index -> integrated busy µs
        self.max_memory = {}  # gpu index -> bytes
        self._last = None

    @property
    def present(self):
        return bool(self.indices())

    def indices(self):
        """The indices of the GPUs NVML sees now ([] without NVML)."""
        return [index for index, _ in self.nvml.devices()] if self.nvml.open() else []

    def sample(self, now):
        """Add the time since the last sample at the current utilisation of each GPU."""
        if not self.nvml.open():
            return
        elapsed_us = 0 if self._last is None else max(0.0, now - self._last) * 1e6
        self._last = now
        for index, handle in self.nvml.devices():
            rates = self.nvml.call("nvmlDeviceGetUtilizationRates", handle)
            if rates is not None:
                self.busy_us[index] = self.busy_us.get(index, 0) + int(elapsed_us * rates.gpu / 100)
            memory = self.nvml.call("nvmlDeviceGetMemoryInfo", handle)
            if memory is not None:
                self.max_memory[index] = max(self.max_memory.get(index, 0), int(memory.used))

    def pause(self):
        """No allocation is active: the next sample starts a new interval."""
        self._last = None

    def energy(self):
        """Joules used by all GPUs since the driver loaded, or None."""
        if not self.nvml.open():
            return None
        total = None
        for _, handle in self.nvml.devices():
            value = self.nvml.call("nvmlDeviceGetTotalEnergyConsumption", handle)
            if value is not None:
                total = (total or 0) + int(value) // 1000
        return total

    def per_gpu(self, indices=()):
        """``[{"gpu_id", "gpu_usage", "max_gpu_memory"}]`` so far, of every GPU sampled and every
        one of ``indices`` (a GPU not sampled yet, its allocation younger than the first sample: 0)."""
        return [{"gpu_id": index, "gpu_usage": self.busy_us.get(index, 0),
                 "max_gpu_memory": self.max_memory.get(index, 0)} for index in sorted(set(self.busy_us) | set(indices))]


def counters(cgroup_usage=None, gpus=None, root="/", node_cpu=None, sources=None):
    """Every allocation counter of this node now (-1 where unreadable); ``node_cpu``: the
    node's busy ns the caller read from /proc/stat just now (read here when not given);
    ``sources``: a refreshed ``Sources`` (looked for here when not given)."""
    values = dict.fromkeys(COUNTERS, -1)
    usage = cgroup_usage or {}
    if usage.get("cpu_usage", -1) >= 0:
        values["cpu_usage"] = usage["cpu_usage"]
    else:
        values["cpu_usage"] = cpu_times(root).get("cpu", -1) if node_cpu is None else node_cpu
    values["memory_usage_max"] = usage.get("memory_usage_max", -1)
    energy = node_energy(root, sources and sources.rapl)
    values["energy"] = -1 if energy is None else energy
    rx, tx = ib_bytes(root, sources and sources.ib)
    values["ib_rx"], values["ib_tx"] = (-1 if rx is None else rx), (-1 if tx is None else tx)
    if gpus is not None and gpus.present:
        values["gpu_usage"] = sum(gpus.busy_us.values())
        gpu_energy = gpus.energy()
        values["gpu_energy"] = -1 if gpu_energy is None else gpu_energy
    return values
