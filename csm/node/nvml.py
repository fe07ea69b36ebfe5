"""NVML (pynvml, or a stand-in with the same names) behind calls that never raise.

Every NVML call is blocking; callers run on a thread (inventory, bucket items).
"""

from twisted.logger import Logger

from csm.node.sysfs import decode

log = Logger(namespace="csmd")

MAX_GPUS = 64
#: the library pynvml loads; pynvml's error when it is missing
LIBRARY = "libnvidia-ml.so.1"
NO_LIBRARY = "NVMLError_LibraryNotFound: NVML Shared Library Not Found"


def library_present(name=None):
    """Whether the NVML library loads: a node without it need not import pynvml (~2.5 MB)."""
    import ctypes
    try:
        ctypes.CDLL(name or LIBRARY)
    except OSError:
        return False
    return True


def text(value):
    """An NVML string (bytes in older pynvml, str in newer) as str, or None."""
    return decode(value) or None


class Nvml:
    """One user of the NVML library: ``open()`` once, ``call()`` many times, ``close()``.

    ``module`` is the pynvml module or a fake; None imports pynvml on first ``open``.
    ``error`` says why the last ``open`` failed.
    """

    def __init__(self, module=None):
        self.module = module
        self.opened = False
        self.error = None
        #: the library did not load: not looked for again (installing it means restarting the daemon)
        self.absent = False

    def _errors(self):
        return (ImportError, OSError, getattr(self.module, "NVMLError", OSError))

    def open(self):
        """Initialise NVML; False (with ``error`` set) when there is no library or driver."""
        if self.opened:
            return True
        try:
            if self.module is None:
                if self.absent or not library_present():
                    self.absent, self.error = True, NO_LIBRARY
                    return False
                import pynvml
                self.module = pynvml
            self.module.nvmlInit()
        except self._errors() as error:
            self.error = "%s: %s" % (type(error).__name__, error)
            return False
        self.opened = True
        self.error = None
        return True

    def close(self):
        if self.opened:
            self.opened = False
            self.call("nvmlShutdown")

    def attempt(self, name, *args):
        """``(True, result)``, or ``(False, error)`` when NVML raised or lacks ``name``."""
        function = getattr(self.module, name, None)
        if function is None:
            return False, "%s is not in this NVML" % name
        try:
            return True, function(*args)
        except self._errors() as error:
            return False, error

    def call(self, name, *args):
        """``module.<name>(*args)``; None when the function is missing or NVML refuses."""
        ok, result = self.attempt(name, *args)
        if not ok:
            log.debug("NVML {name}: {error}", name=name, error=result)
            return None
        return result

    def devices(self):
        """``[(index, handle)]`` of the GPUs NVML sees."""
        count = min(self.call("nvmlDeviceGetCount") or 0, MAX_GPUS)
        handles = ((i, self.call("nvmlDeviceGetHandleByIndex", i)) for i in range(count))
        return [(index, handle) for index, handle in handles if handle is not None]
