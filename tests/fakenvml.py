"""A stand-in for the pynvml module over configurable fake GPUs.

``FakeNvml(gpus=[FakeGpu(...)])`` has the names csm.node calls, with pynvml's
signatures, constants and return shapes (strings as ``str``, the PCI bus id as bytes as
in ``nvmlPciInfo_t``).  ``FakeNvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED)`` (or an
exception instance) fails ``nvmlInit`` like a node without the driver.  ``inject_xid``
queues an XID event for every event set a GPU is registered in.
"""

import types

import attr

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999

NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_GRAPHICS, NVML_CLOCK_SM, NVML_CLOCK_MEM, NVML_CLOCK_VIDEO = 0, 1, 2, 3
NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 0, 1
NVML_VOLATILE_ECC, NVML_AGGREGATE_ECC = 0, 1

nvmlEventTypeSingleBitEccError = 0x1
nvmlEventTypeDoubleBitEccError = 0x2
nvmlEventTypePState = 0x4
nvmlEventTypeXidCriticalError = 0x8
nvmlEventTypeNone = 0x0

nvmlClocksThrottleReasonGpuIdle = 0x1
nvmlClocksThrottleReasonApplicationsClocksSetting = 0x2
nvmlClocksThrottleReasonSwPowerCap = 0x4
nvmlClocksThrottleReasonHwSlowdown = 0x8
nvmlClocksThrottleReasonSyncBoost = 0x10
nvmlClocksThrottleReasonSwThermalSlowdown = 0x20
nvmlClocksThrottleReasonHwThermalSlowdown = 0x40
nvmlClocksThrottleReasonHwPowerBrakeSlowdown = 0x80
nvmlClocksThrottleReasonDisplayClockSetting = 0x100
nvmlClocksThrottleReasonNone = 0x0

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_TIMEOUT: "Timeout",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_GPU_IS_LOST: "GPU is lost",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """pynvml's error: ``value`` is the NVML return code."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value

    def __str__(self):
        return _MESSAGES.get(self.value, "Unknown Error")


@attr.s(auto_attribs=True)
class FakeGpu:
    """One GPU's answers; a name in ``unsupported`` raises NVML_ERROR_NOT_SUPPORTED."""

    name: str = "Tesla V100-SXM2-16GB"
    serial: str = "0323618041234"
    uuid: str = "GPU-6c8d5b1a-2f3e-4d5c-8b7a-9e0f1a2b3c4d"
    pci_bus_id: str = "00000004:04:00.0"
    vbios: str = "88.00.4F.00.09"
    inforom: str = "G503.0201.00.03"
    memory_total: int = 16911433728
    memory_used: int = 1048576000
    temperature: int = 41
    power_mw: int = 52345
    energy_mj: int = 123456789
    gpu_util: int = 87
    memory_util: int = 45
    sm_clock: int = 1530
    memory_clock: int = 877
    ecc: dict = attr.Factory(lambda: {(0, 0): 2, (1, 0): 0, (0, 1): 17, (1, 1): 1})
    throttle: int = 0x4 | 0x20
    supported_events: int = 0x1 | 0x2 | 0x4 | 0x8
    unsupported: frozenset = frozenset()


class FakeNvml:
    """The fake module: pass an instance where pynvml is expected."""

    NVMLError = NVMLError

    def __init__(self, gpus=(), init_error=None):
        self.gpus = list(gpus)
        self.init_error = init_error
        self.init_count = 0
        self.shutdown_count = 0
        self._event_sets = []
        for name, value in globals().items():
            if name.startswith(("NVML_", "nvml")) and isinstance(value, int):
                setattr(self, name, value)

    @property
    def initialized(self):
        return self.init_count > self.shutdown_count

    # -- library
    def nvmlInit(self):
        if isinstance(self.init_error, BaseException):
            raise self.init_error
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.init_count += 1

    def nvmlShutdown(self):
        self._check()
        self.shutdown_count += 1

    def nvmlSystemGetDriverVersion(self):
        self._check()
        return "535.104.12"

    def _check(self):
        if not self.initialized:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)

    def _gpu(self, handle, function):
        self._check()
        if not isinstance(handle, types.SimpleNamespace) or handle.index >= len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        gpu = self.gpus[handle.index]
        if function in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu

    # -- devices
    def nvmlDeviceGetCount(self):
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        self._check()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return types.SimpleNamespace(index=index)

    def nvmlDeviceGetIndex(self, handle):
        self._gpu(handle, "nvmlDeviceGetIndex")
        return handle.index

    def nvmlDeviceGetPciInfo(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetPciInfo")
        bus_id = gpu.pci_bus_id.encode()
        return types.SimpleNamespace(busId=bus_id, busIdLegacy=bus_id[-12:], domain=0, bus=0,
                                     device=0, pciDeviceId=0x1DB110DE, pciSubSystemId=0x121210DE)

    def nvmlDeviceGetMemoryInfo(self, handle, version=None):
        gpu = self._gpu(handle, "nvmlDeviceGetMemoryInfo")
        return types.SimpleNamespace(total=gpu.memory_total, used=gpu.memory_used,
                                     free=gpu.memory_total - gpu.memory_used)

    def nvmlDeviceGetTemperature(self, handle, sensor):
        gpu = self._gpu(handle, "nvmlDeviceGetTemperature")
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature

    def nvmlDeviceGetUtilizationRates(self, handle):
        gpu = self._gpu(handle, "nvmlDeviceGetUtilizationRates")
        return types.SimpleNamespace(gpu=gpu.gpu_util, memory=gpu.memory_util)

    def nvmlDeviceGetClockInfo(self, handle, type):
        gpu = self._gpu(handle, "nvmlDeviceGetClockInfo")
        clocks = {NVML_CLOCK_SM: gpu.sm_clock, NVML_CLOCK_GRAPHICS: gpu.sm_clock,
                  NVML_CLOCK_MEM: gpu.memory_clock}
        if type not in clocks:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return clocks[type]

    def nvmlDeviceGetTotalEccErrors(self, handle, errorType, counterType):
        gpu = self._gpu(handle, "nvmlDeviceGetTotalEccErrors")
        if not gpu.ecc:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu.ecc[(errorType, counterType)]

    # -- events
    def nvmlEventSetCreate(self):
        self._check()
        event_set = types.SimpleNamespace(registered={}, queue=[], freed=False)
        self._event_sets.append(event_set)
        return event_set

    def nvmlDeviceRegisterEvents(self, handle, eventTypes, eventSet):
        gpu = self._gpu(handle, "nvmlDeviceRegisterEvents")
        if eventTypes & ~gpu.supported_events:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        eventSet.registered[handle.index] = eventSet.registered.get(handle.index, 0) | eventTypes

    def nvmlEventSetWait(self, eventSet, timeoutms):
        self._check()
        if eventSet.freed:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        if not eventSet.queue:
            raise NVMLError(NVML_ERROR_TIMEOUT)
        return eventSet.queue.pop(0)

    def nvmlEventSetFree(self, eventSet):
        self._check()
        eventSet.freed = True

    def inject_xid(self, index, xid):
        """Queue XID ``xid`` of GPU ``index`` where that GPU is registered for XIDs."""
        for event_set in self._event_sets:
            if event_set.registered.get(index, 0) & nvmlEventTypeXidCriticalError:
                event_set.queue.append(types.SimpleNamespace(
                    device=types.SimpleNamespace(index=index),
                    eventType=nvmlEventTypeXidCriticalError, eventData=xid,
                    gpuInstanceId=0xFFFFFFFF, computeInstanceId=0xFFFFFFFF))


def _getter(function, field):
    def get(self, handle):
        return getattr(self._gpu(handle, function), field)
    get.__name__ = function
    return get


# The calls that just return one attribute of the GPU.
for _function, _field in {
        "nvmlDeviceGetName": "name", "nvmlDeviceGetSerial": "serial", "nvmlDeviceGetUUID": "uuid",
        "nvmlDeviceGetVbiosVersion": "vbios", "nvmlDeviceGetInforomImageVersion": "inforom",
        "nvmlDeviceGetPowerUsage": "power_mw", "nvmlDeviceGetTotalEnergyConsumption": "energy_mj",
        "nvmlDeviceGetCurrentClocksThrottleReasons": "throttle",
        "nvmlDeviceGetCurrentClocksEventReasons": "throttle",
        "nvmlDeviceGetSupportedEventTypes": "supported_events"}.items():
    setattr(FakeNvml, _function, _getter(_function, _field))


def two_gpus():
    """A fake with two V100s (distinct serials, uuids, bus ids)."""
    return FakeNvml([FakeGpu(),
                     FakeGpu(serial="0323618045678", uuid="GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
                             pci_bus_id="00000035:03:00.0", temperature=39, power_mw=48000)])
