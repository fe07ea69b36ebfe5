"""GPU counters through NVML (type ``csm-gpu-counters``) and XID error events."""

from csm.node.items.base import Item, Reporter, record
from csm.node.nvml import Nvml, text

# NVML ABI values (nvml.h): they are part of the C interface and never change.
TEMPERATURE_GPU = 0
CLOCK_SM, CLOCK_MEM = 1, 2
ECC_CORRECTED, ECC_UNCORRECTED = 0, 1
ECC_VOLATILE, ECC_AGGREGATE = 0, 1
EVENT_XID_CRITICAL = 0x8
ERROR_TIMEOUT = 10

THROTTLE_REASONS = (
    (0x001, "gpu_idle"), (0x002, "applications_clocks_setting"), (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"), (0x010, "sync_boost"), (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"), (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
)
_ECC_COUNTERS = (
    ("ecc_volatile_corrected", ECC_CORRECTED, ECC_VOLATILE),
    ("ecc_volatile_uncorrected", ECC_UNCORRECTED, ECC_VOLATILE),
    ("ecc_aggregate_corrected", ECC_CORRECTED, ECC_AGGREGATE),
    ("ecc_aggregate_uncorrected", ECC_UNCORRECTED, ECC_AGGREGATE),
)


def throttle_names(mask):
    """The names of the bits set in a clock throttle (event) reasons mask."""
    return [name for bit, name in THROTTLE_REASONS if mask & bit]


def _scaled(value, divisor):
    return None if value is None else value / divisor


class GpuItem(Item):
    """One ``csm-gpu-counters`` record per GPU; unsupported counters are left out.

    Data: gpu_id, serial_number, temperature (°C), power_usage (W), energy (mJ since the
    driver loaded), gpu_utilization and memory_utilization (%), memory_used and
    memory_total (bytes), sm_clock and memory_clock (MHz), ecc_{volatile,aggregate}_
    {corrected,uncorrected}, throttle_reasons (bitmask) and throttle_reason_names.
    NVML stays initialised between calls; ``close()`` shuts it down.
    """

    def __init__(self, nvml=None):
        super().__init__()
        self.nvml = Nvml(nvml)

    def collect(self):
        if not self.nvml.open():
            self.once("nvml", "env gpu: NVML unavailable, no GPU data ({error})",
                      error=self.nvml.error)
            return []
        devices = self.nvml.devices()
        if not devices:
            self.once("none", "env gpu: NVML reports no GPUs")
        return [record("csm-gpu-counters", self.sample(index, handle)) for index, handle in devices]

    def close(self):
        self.nvml.close()

    def sample(self, index, handle):
        call = self.nvml.call
        memory = call("nvmlDeviceGetMemoryInfo", handle)
        usage = call("nvmlDeviceGetUtilizationRates", handle)
        reasons = call("nvmlDeviceGetCurrentClocksEventReasons", handle)
        if reasons is None:
            reasons = call("nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        data = {
            "gpu_id": index,
            "serial_number": text(call("nvmlDeviceGetSerial", handle)),
            "temperature": call("nvmlDeviceGetTemperature", handle, TEMPERATURE_GPU),
            "power_usage": _scaled(call("nvmlDeviceGetPowerUsage", handle), 1000.0),
            "energy": call("nvmlDeviceGetTotalEnergyConsumption", handle),
            "gpu_utilization": getattr(usage, "gpu", None),
            "memory_utilization": getattr(usage, "memory", None),
            "memory_used": getattr(memory, "used", None),
            "memory_total": getattr(memory, "total", None),
            "sm_clock": call("nvmlDeviceGetClockInfo", handle, CLOCK_SM),
            "memory_clock": call("nvmlDeviceGetClockInfo", handle, CLOCK_MEM),
            "throttle_reasons": reasons,
            "throttle_reason_names": None if reasons is None else throttle_names(reasons),
        }
        for key, error_type, counter_type in _ECC_COUNTERS:
            data[key] = call("nvmlDeviceGetTotalEccErrors", handle, error_type, counter_type)
        return {key: value for key, value in data.items() if value is not None}


class GpuXidWatcher(Reporter):
    """Critical XID events of every GPU that supports them, polled without blocking.

    ``poll()`` registers on first use; where NVML, the driver or the event type is
    missing it logs once and always returns ``[]``.
    """

    def __init__(self, nvml=None, max_events=64):
        super().__init__()
        self.nvml = Nvml(nvml)
        self.max_events = max_events
        self.event_set = None
        self._tried = False

    def start(self):
        """Create the event set and register each GPU for XIDs; True if any GPU is."""
        self._tried = True
        if self.event_set is not None:
            return True
        if not self.nvml.open():
            self.once("nvml", "gpu xid: NVML unavailable ({error})", error=self.nvml.error)
            return False
        event_set = self.nvml.call("nvmlEventSetCreate")
        registered = event_set is not None and sum(
            self._register(handle, event_set) for _, handle in self.nvml.devices())
        if not registered:
            self.once("unsupported", "gpu xid: no GPU supports XID events")
            self.stop(event_set)
            return False
        self.event_set = event_set
        return True

    def _register(self, handle, event_set):
        supported = self.nvml.call("nvmlDeviceGetSupportedEventTypes", handle) or 0
        return bool(supported & EVENT_XID_CRITICAL) and self.nvml.attempt(
            "nvmlDeviceRegisterEvents", handle, EVENT_XID_CRITICAL, event_set)[0]

    def poll(self):
        """``[(gpu_index, xid, uuid)]`` of the XIDs pending now (waits 0 ms)."""
        if self.event_set is None and (self._tried or not self.start()):
            return []
        events = []
        for _ in range(self.max_events):
            ok, data = self.nvml.attempt("nvmlEventSetWait", self.event_set, 0)
            if not ok:
                if getattr(data, "value", None) != ERROR_TIMEOUT:
                    self.once("wait", "gpu xid: event wait failed ({error})", error=data)
                break
            if data.eventType & EVENT_XID_CRITICAL:
                events.append((self.nvml.call("nvmlDeviceGetIndex", data.device), data.eventData,
                               text(self.nvml.call("nvmlDeviceGetUUID", data.device))))
        return events

    def stop(self, event_set=None):
        """Free the event set and release NVML."""
        event_set = event_set if event_set is not None else self.event_set
        if event_set is not None:
            self.nvml.call("nvmlEventSetFree", event_set)
        self.event_set = None
        self.nvml.close()
