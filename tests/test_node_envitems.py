"""Per-node environmental items (csm.node.items) over the fake node and fake NVML."""

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm.node.items import CpuItem, EnvironmentalItem, GpuItem, GpuXidWatcher, SsdItem, node_items
from csm.node.items.gpu import throttle_names
from tests import fakenvml
from tests.fakesys import ROOT, FakeRunner, capture_log, copy_root, remove, write

UUID0 = "GPU-6c8d5b1a-2f3e-4d5c-8b7a-9e0f1a2b3c4d"
UUID1 = "GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def collect_times(testcase, item, count=3):
    """Call ``collect`` ``count`` times; the records of each call and the log events."""
    events = capture_log(testcase, item)
    return [item.collect() for _ in range(count)], events


class GpuItemTests(SynchronousTestCase):
    def test_counters(self):
        nvml = fakenvml.two_gpus()
        records = GpuItem(nvml).collect()
        self.assertEqual([r["type"] for r in records], ["csm-gpu-counters"] * 2)
        self.assertEqual(records[0]["data"], {
            "gpu_id": 0, "serial_number": "0323618041234", "temperature": 41,
            "power_usage": 52.345, "energy": 123456789, "gpu_utilization": 87,
            "memory_utilization": 45, "memory_used": 1048576000, "memory_total": 16911433728,
            "sm_clock": 1530, "memory_clock": 877,
            "ecc_volatile_corrected": 2, "ecc_volatile_uncorrected": 0,
            "ecc_aggregate_corrected": 17, "ecc_aggregate_uncorrected": 1,
            "throttle_reasons": 0x24, "throttle_reason_names": ["sw_power_cap", "sw_thermal_slowdown"],
        })
        self.assertEqual((records[1]["data"]["gpu_id"], records[1]["data"]["temperature"],
                          records[1]["data"]["power_usage"]), (1, 39, 48.0))

    def test_unsupported_counters_left_out(self):
        gpu = fakenvml.FakeGpu(ecc={}, unsupported=frozenset({"nvmlDeviceGetTotalEnergyConsumption",
                                                                "nvmlDeviceGetUtilizationRates"}))
        data = GpuItem(fakenvml.FakeNvml([gpu])).collect()[0]["data"]
        for key in ("energy", "gpu_utilization", "memory_utilization", "ecc_volatile_corrected"):
            self.assertNotIn(key, data)
        self.assertEqual(data["temperature"], 41)

    def test_older_pynvml_throttle_reasons(self):
        """Without nvmlDeviceGetCurrentClocksEventReasons the throttle reasons call is used."""
        nvml = fakenvml.FakeNvml([fakenvml.FakeGpu(throttle=0x1)])
        nvml.nvmlDeviceGetCurrentClocksEventReasons = None
        data = GpuItem(nvml).collect()[0]["data"]
        self.assertEqual((data["throttle_reasons"], data["throttle_reason_names"]), (1, ["gpu_idle"]))

    def test_nvml_stays_open(self):
        nvml = fakenvml.two_gpus()
        item = GpuItem(nvml)
        for _ in range(3):
            self.assertEqual(len(item.collect()), 2)
        self.assertEqual(nvml.init_count, 1)
        item.close()
        self.assertFalse(nvml.initialized)

    def test_no_driver(self):
        nvml = fakenvml.FakeNvml([fakenvml.FakeGpu()], init_error=fakenvml.NVML_ERROR_DRIVER_NOT_LOADED)
        results, events = collect_times(self, GpuItem(nvml))
        self.assertEqual(results, [[], [], []])
        self.assertEqual(len(events), 1)
        self.assertIn("Driver Not Loaded", events[0]["error"])

    def test_no_gpus(self):
        results, events = collect_times(self, GpuItem(fakenvml.FakeNvml()))
        self.assertEqual((results, len(events)), ([[], [], []], 1))

    def test_throttle_names(self):
        self.assertEqual(throttle_names(0), [])
        self.assertEqual(throttle_names(0x48), ["hw_slowdown", "hw_thermal_slowdown"])


class XidWatcherTests(SynchronousTestCase):
    def test_events(self):
        nvml = fakenvml.two_gpus()
        watcher = GpuXidWatcher(nvml)
        self.assertEqual(watcher.poll(), [])
        nvml.inject_xid(1, 79)
        nvml.inject_xid(0, 48)
        self.assertEqual(watcher.poll(), [(1, 79, UUID1), (0, 48, UUID0)])
        self.assertEqual(watcher.poll(), [])
        watcher.stop()
        self.assertFalse(nvml.initialized)

    def test_bounded_poll(self):
        nvml = fakenvml.two_gpus()
        watcher = GpuXidWatcher(nvml, max_events=3)
        watcher.start()
        for xid in range(5):
            nvml.inject_xid(0, 13 + xid)
        self.assertEqual([e[1] for e in watcher.poll()], [13, 14, 15])
        self.assertEqual([e[1] for e in watcher.poll()], [16, 17])

    def test_only_supporting_gpus(self):
        nvml = fakenvml.FakeNvml([fakenvml.FakeGpu(supported_events=0x1), fakenvml.FakeGpu()])
        watcher = GpuXidWatcher(nvml)
        self.assertTrue(watcher.start())
        nvml.inject_xid(0, 31)
        nvml.inject_xid(1, 43)
        self.assertEqual(watcher.poll(), [(1, 43, UUID0)])

    def assertDegrades(self, nvml):
        watcher = GpuXidWatcher(nvml)
        events = capture_log(self, watcher)
        self.assertEqual([watcher.poll() for _ in range(3)], [[], [], []])
        self.assertEqual(len(events), 1)
        self.assertFalse(nvml.initialized)

    def test_unsupported(self):
        self.assertDegrades(fakenvml.FakeNvml([fakenvml.FakeGpu(supported_events=0x1)]))

    def test_no_driver(self):
        self.assertDegrades(fakenvml.FakeNvml(init_error=fakenvml.NVML_ERROR_LIBRARY_NOT_FOUND))


class EnvironmentalItemTests(SynchronousTestCase):
    def setUp(self):
        self.root = copy_root(self)
        self.clock = FakeClock()
        self.item = EnvironmentalItem(self.root, clock=self.clock)

    def set_energy(self, zone, microjoules):
        write(self.root, "sys/class/powercap/%s/energy_uj" % zone, "%d\n" % microjoules)

    def test_first_snapshot(self):
        """Temperatures and memory at once; power needs a second snapshot."""
        self.assertEqual(self.item.collect(), [
            {"type": "csm-processor-env", "data": {"processor_id": 0, "processor_temp": 52.0}},
            {"type": "csm-processor-env", "data": {"processor_id": 1, "processor_temp": 47.0}},
            {"type": "csm-node-env", "data": {"memory_total": 196446948, "memory_used": 6713828,
                                              "memory_available": 189733120}},
        ])

    def test_power_from_energy_deltas(self):
        self.item.collect()
        self.clock.now += 10
        self.set_energy("intel-rapl:0", 123456789000 + 1000000000)
        self.set_energy("intel-rapl:0:0", 2222222222 + 50000000)
        self.set_energy("intel-rapl:1", 98765432100 + 1234567890)
        records = self.item.collect()
        self.assertEqual([r["data"] for r in records[:2]], [
            {"processor_id": 0, "processor_temp": 52.0, "processor_power": 100.0, "memory_power": 5.0},
            {"processor_id": 1, "processor_temp": 47.0, "processor_power": 123.457, "memory_power": 0.0},
        ])

    def test_counter_wrap(self):
        self.set_energy("intel-rapl:0", 262143328000)
        self.item.collect()
        self.clock.now += 1
        self.set_energy("intel-rapl:0", 150)
        self.assertEqual(self.item.collect()[0]["data"]["processor_power"], 0.001)

    def test_amd_k10temp(self):
        root = self.mktemp()
        write(root, "sys/class/hwmon/hwmon0/name", "k10temp\n")
        write(root, "sys/class/hwmon/hwmon0/temp1_label", "Tctl\n")
        write(root, "sys/class/hwmon/hwmon0/temp1_input", "61250\n")
        write(root, "sys/class/hwmon/hwmon1/name", "k10temp\n")
        write(root, "sys/class/hwmon/hwmon1/temp1_input", "58000\n")
        write(root, "sys/class/hwmon/hwmon1/temp1_label", "Tctl\n")
        write(root, "sys/class/hwmon/hwmon1/temp3_input", "55000\n")
        write(root, "sys/class/hwmon/hwmon1/temp3_label", "Tccd1\n")
        records = EnvironmentalItem(root).collect()
        self.assertEqual([r["data"] for r in records],
                         [{"processor_id": 0, "processor_temp": 61.25},
                          {"processor_id": 1, "processor_temp": 58.0}])

    def test_missing_sensors_logged_once(self):
        results, events = collect_times(self, EnvironmentalItem(self.mktemp()))
        self.assertEqual(results, [[], [], []])
        self.assertEqual(len(events), 3)  # temperatures, RAPL, meminfo: once each

    def test_unreadable_energy(self):
        """A zone whose counter cannot be read (non-root on a recent kernel) gives no power."""
        remove(self.root, "sys/class/powercap/intel-rapl:1/energy_uj")
        events = capture_log(self, self.item)
        for _ in range(3):
            self.clock.now += 5
            records = self.item.collect()
        self.assertEqual(records[0]["data"]["processor_power"], 0.0)
        self.assertNotIn("processor_power", records[1]["data"])
        self.assertEqual(len(events), 1)


class CpuItemTests(SynchronousTestCase):
    def test_utilisation_from_deltas(self):
        root = copy_root(self)
        item = CpuItem(root)
        self.assertEqual(item.collect(), [])
        write(root, "proc/stat", "cpu  40300 100 10100 940500 2100 300 200 0 0 0\ncpu0 1 2 3 4\n")
        self.assertEqual(item.collect(), [{"type": "csm-cpu-util", "data": {
            "cpu_utilization": 40.0, "user_percent": 30.0, "system_percent": 10.0,
            "iowait_percent": 10.0, "idle_percent": 50.0}}])

    def test_no_time_passed(self):
        item = CpuItem(ROOT)
        item.collect()
        self.assertEqual(item.collect(), [])

    def test_missing_stat(self):
        results, events = collect_times(self, CpuItem(self.mktemp()))
        self.assertEqual((results, len(events)), ([[], [], []], 1))


class SsdItemTests(SynchronousTestCase):
    def test_wear(self):
        """The NVMe disk reports wear; the SATA disk has none and is logged once."""
        results, events = collect_times(self, SsdItem(ROOT, run=FakeRunner()))
        self.assertEqual(results[0], [{"type": "csm-ssd-wear", "data": {
            "serial_number": "S4C8NA0N100123", "wear_lifespan_used": 3.0,
            "wear_total_bytes_written": 23456789 * 512000, "wear_total_bytes_read": 12345678 * 512000,
            "wear_percent_spares_remaining": 100.0}}])
        self.assertEqual(results[1], results[0])
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["name"], "SAMSUNG MZ7LH480")

    def test_no_ssds(self):
        results, events = collect_times(self, SsdItem(self.mktemp(), run=lambda argv: None))
        self.assertEqual((results, len(events)), ([[], [], []], 1))


class NodeItemsTests(SynchronousTestCase):
    def test_names(self):
        items = node_items(ROOT, nvml=fakenvml.two_gpus(), run=FakeRunner())
        self.assertEqual(sorted(items), ["cpu", "environmental", "gpu", "ssd"])
        self.assertEqual(len(items["gpu"].collect()), 2)
        self.assertEqual(items["ssd"].collect()[0]["type"], "csm-ssd-wear")


class FakeNvmlFidelityTests(SynchronousTestCase):
    """tests/fakenvml.py keeps pynvml's names, parameters and constants."""

    def setUp(self):
        try:
            import pynvml
        except ImportError:
            raise SkipTest("pynvml is not installed")
        self.pynvml = pynvml

    def test_functions(self):
        import inspect
        fake = fakenvml.FakeNvml()
        for name in dir(fake):
            if name.startswith("nvml") and callable(getattr(fake, name)):
                real = inspect.signature(getattr(self.pynvml, name))
                self.assertEqual(list(inspect.signature(getattr(fake, name)).parameters),
                                 list(real.parameters), name)

    def test_constants(self):
        for name, value in vars(fakenvml).items():
            if name.startswith(("NVML_", "nvmlEventType", "nvmlClocksThrottleReason")):
                self.assertEqual(getattr(self.pynvml, name), value, name)

    def test_error(self):
        self.assertEqual(fakenvml.NVMLError(fakenvml.NVML_ERROR_NOT_SUPPORTED).value,
                         self.pynvml.NVMLError(self.pynvml.NVML_ERROR_NOT_SUPPORTED).value)
