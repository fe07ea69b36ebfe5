"""Node inventory collectors (csm.node) over the fake node in tests/fakesys."""

import datetime
import json
import os
import sys

from hypothesis import given, strategies
from twisted.internet.defer import TimeoutError
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from csm.node import commands, cpu, hca, inventory, memory, storage, sysfs
from csm.node.commands import CommandRunner
from csm.node.inventory import collect_inventory, collect_inventory_in_thread
from tests import fakenvml
from tests.fakesys import ROOT, FakeRunner, capture_log, copy_root, remove, write

NODE_KEYS = {"node_name", "machine_model", "serial_number", "collection_time", "type",
             "kernel_release", "kernel_version", "installed_memory", "installed_swap",
             "discovered_sockets", "discovered_cores", "discovered_gpus", "discovered_hcas",
             "discovered_dimms", "discovered_ssds", "os_image_name", "os_image_uuid"}


def nothing(argv):
    return None


def fixture_output(argv):
    return FakeRunner()(argv)


class FakeNodeTests(SynchronousTestCase):
    """The whole inventory of the fake 2-socket node with two fake GPUs."""

    def setUp(self):
        self.nvml = fakenvml.two_gpus()
        self.run = FakeRunner()
        self.inventory = collect_inventory("c01", "compute", root=ROOT, nvml=self.nvml, run=self.run)

    def test_layout(self):
        self.assertEqual(set(self.inventory), {"node", "dimm", "gpu", "hca", "ssd", "processor"})
        self.assertEqual(set(self.inventory["node"]), NODE_KEYS)
        self.assertEqual(json.loads(json.dumps(self.inventory)), self.inventory)

    def test_node(self):
        node = dict(self.inventory["node"])
        stamp = datetime.datetime.fromisoformat(node.pop("collection_time"))
        self.assertLess(abs((datetime.datetime.now() - stamp).total_seconds()), 60)
        self.assertEqual(node, {
            "node_name": "c01", "machine_model": "PowerEdge R740", "serial_number": "7XK2Q33",
            "type": "compute", "kernel_release": "4.18.0-305.el8.x86_64",
            "kernel_version": "#1 SMP Thu Apr 29 08:54:30 EDT 2021",
            "installed_memory": 196446948, "installed_swap": 4194300,
            "discovered_sockets": 2, "discovered_cores": 8, "discovered_gpus": 2,
            "discovered_hcas": 2, "discovered_dimms": 4, "discovered_ssds": 2,
            "os_image_name": "rhels8.4-x86_64-netboot-compute",
            "os_image_uuid": "3f9a1c2e-7b4d-4e8a-9c61-2d5f0b8e4a17",
        })

    def test_dimms(self):
        self.assertEqual(self.inventory["dimm"], [
            {"serial_number": "36B1A2C3", "size": 32768, "physical_location": "A1"},
            {"serial_number": "36B1A2C4", "size": 32768, "physical_location": "A2"},
            {"serial_number": "36B1A2D7", "size": 32768, "physical_location": "B1"},
            {"serial_number": "40F3E21A", "size": 16384, "physical_location": "B2"},
        ])

    def test_processors(self):
        self.assertEqual(self.inventory["processor"], [
            {"serial_number": "0x1c7a2b3e4f5a6d01", "physical_location": "CPU1", "discovered_cores": 4},
            {"serial_number": "0x1c7a2b3e4f5a6e02", "physical_location": "CPU2", "discovered_cores": 4},
        ])

    def test_gpus(self):
        self.assertEqual(self.inventory["gpu"], [
            {"gpu_id": 0, "device_name": "Tesla V100-SXM2-16GB", "pci_bus_id": "00000004:04:00.0",
             "serial_number": "0323618041234", "uuid": "GPU-6c8d5b1a-2f3e-4d5c-8b7a-9e0f1a2b3c4d",
             "vbios": "88.00.4F.00.09", "inforom_image_version": "G503.0201.00.03",
             "hbm_memory": 16515072},
            {"gpu_id": 1, "device_name": "Tesla V100-SXM2-16GB", "pci_bus_id": "00000035:03:00.0",
             "serial_number": "0323618045678", "uuid": "GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
             "vbios": "88.00.4F.00.09", "inforom_image_version": "G503.0201.00.03",
             "hbm_memory": 16515072},
        ])
        self.assertEqual((self.nvml.init_count, self.nvml.shutdown_count), (1, 1))

    def test_hcas(self):
        first, second = self.inventory["hca"]
        self.assertEqual(first, {
            "serial_number": "MT2034X12345",
            "device_name": "ConnectX-6 VPI adapter card, HDR IB (200Gb/s), single-port QSFP56",
            "pci_bus_id": "0000:3a:00.0", "guid": "b8ce:f603:00a1:2b3c",
            "part_number": "MCX653105A-HDAT", "fw_ver": "20.28.1002", "hw_rev": "0x0",
            "board_id": "MT_0000000223", "switch_guid_port_1": None, "switch_guid_port_2": None,
        })
        self.assertEqual((second["serial_number"], second["pci_bus_id"], second["guid"]),
                         ("MT2034X67890", "0000:d8:00.0", "b8ce:f603:00a1:4d5e"))

    def test_ssds(self):
        """NVMe and SATA SSDs; the rotating disk, loop and dm devices are skipped."""
        self.assertEqual(self.inventory["ssd"], [
            {"serial_number": "S4C8NA0N100123", "device_name": "Dell Express Flash PM1725b 1.6TB AIC",
             "pci_bus_id": "0000:5e:00.0", "fw_ver": "1.1.0", "size": 3125627568 * 512,
             "wear_lifespan_used": 3.0, "wear_total_bytes_written": 23456789 * 512000,
             "wear_total_bytes_read": 12345678 * 512000, "wear_percent_spares_remaining": 100.0},
            {"serial_number": "S45PNA0M512345", "device_name": "SAMSUNG MZ7LH480",
             "pci_bus_id": "0000:00:17.0", "fw_ver": "HXT7", "size": 937703088 * 512,
             "wear_lifespan_used": None, "wear_total_bytes_written": None,
             "wear_total_bytes_read": None, "wear_percent_spares_remaining": None},
        ])
        self.assertIn(["nvme", "smart-log", "/dev/nvme0n1", "--output-format=json"], self.run.calls)


class VariantTests(SynchronousTestCase):
    """The fake node changed one source at a time."""

    def setUp(self):
        self.root = copy_root(self)

    def collect(self, run=nothing, nvml=None):
        return collect_inventory("c01", "utility", root=self.root,
                                 nvml=nvml or fakenvml.FakeNvml(), run=run)

    def test_device_tree_identity(self):
        """On ppc64le the device tree names the machine."""
        write(self.root, "proc/device-tree/model", b"IBM,8335-GTW\x00")
        write(self.root, "proc/device-tree/system-id", b"IBM,0221A1B2C\x00")
        node = self.collect()["node"]
        self.assertEqual((node["machine_model"], node["serial_number"]), ("IBM,8335-GTW", "IBM,0221A1B2C"))

    def test_dmi_placeholders(self):
        write(self.root, "sys/class/dmi/id/product_serial", "To Be Filled By O.E.M.\n")
        self.assertIsNone(self.collect()["node"]["serial_number"])

    def test_os_release_without_xcat(self):
        remove(self.root, "opt/xcat")
        node = self.collect()["node"]
        self.assertEqual((node["os_image_name"], node["os_image_uuid"]),
                         ("Red Hat Enterprise Linux 8.4 (Ootpa)", None))

    def test_cpuinfo_fallback(self):
        """Without sysfs topology the sockets and cores come from /proc/cpuinfo."""
        remove(self.root, "sys/devices/system/cpu")
        inventory = self.collect(run=fixture_output)
        self.assertEqual((inventory["node"]["discovered_sockets"], inventory["node"]["discovered_cores"]), (2, 8))
        self.assertEqual([p["serial_number"] for p in inventory["processor"]], [None, None])
        self.assertEqual([p["physical_location"] for p in inventory["processor"]], ["CPU1", "CPU2"])

    def test_dual_function_hca_reported_once(self):
        vpd = os.path.join(self.root, "sys/devices/pci0000:3a/0000:3a:00.0/vpd")
        with open(vpd, "rb") as handle:
            write(self.root, "sys/devices/pci0000:d7/0000:d7:00.0/0000:d8:00.0/vpd", handle.read())
        hcas = self.collect()["hca"]
        self.assertEqual([(h["serial_number"], h["pci_bus_id"]) for h in hcas],
                         [("MT2034X12345", "0000:3a:00.0")])
        self.assertEqual(self.collect()["node"]["discovered_hcas"], 1)

    def test_hca_without_vpd(self):
        remove(self.root, "sys/devices/pci0000:3a/0000:3a:00.0/vpd")
        first = self.collect()["hca"][0]
        self.assertEqual((first["serial_number"], first["part_number"], first["device_name"]),
                         (None, None, "mlx5_0"))
        self.assertEqual(first["fw_ver"], "20.28.1002")

    def test_unreadable_file(self):
        """A directory where a file should be reads as missing."""
        remove(self.root, "proc/meminfo")
        os.mkdir(os.path.join(self.root, "proc/meminfo"))
        node = self.collect()["node"]
        self.assertEqual((node["installed_memory"], node["installed_swap"]), (None, None))

    def test_nvme_smart_log_garbage(self):
        run = FakeRunner({("nvme", "smart-log", "/dev/nvme0n1"): b"not json"})
        nvme = self.collect(run=run)["ssd"][0]
        self.assertEqual([nvme[field] for field in storage.WEAR_FIELDS], [None] * 4)

    def test_nvme_cli_2_field_names(self):
        run = FakeRunner({("nvme", "smart-log", "/dev/nvme0n1"):
                          b'{"percentage_used": "7%", "available_spare": 98, "data_units_written": 2}'})
        nvme = self.collect(run=run)["ssd"][0]
        self.assertEqual([nvme[field] for field in storage.WEAR_FIELDS], [7.0, 1024000, None, 98.0])

    def test_gpu_field_not_supported(self):
        gpu = fakenvml.FakeGpu(unsupported=frozenset({"nvmlDeviceGetInforomImageVersion",
                                                      "nvmlDeviceGetMemoryInfo"}))
        record = self.collect(nvml=fakenvml.FakeNvml([gpu]))["gpu"][0]
        self.assertEqual((record["inforom_image_version"], record["hbm_memory"]), (None, None))
        self.assertEqual(record["serial_number"], "0323618041234")


class MissingSourceTests(SynchronousTestCase):
    """Nothing readable: empty lists, None fields, a log line, no exception."""

    def test_empty_root(self):
        events = capture_log(self, inventory)
        result = collect_inventory("c02", "aggregator", root=self.mktemp(), nvml=fakenvml.FakeNvml(),
                                   run=nothing)
        node = result["node"]
        for section in ("dimm", "gpu", "hca", "ssd", "processor"):
            self.assertEqual(result[section], [])
        for key in ("machine_model", "serial_number", "kernel_release", "kernel_version",
                    "installed_memory", "installed_swap", "os_image_name", "os_image_uuid"):
            self.assertIsNone(node[key], key)
        for key in NODE_KEYS:
            if key.startswith("discovered_"):
                self.assertEqual(node[key], 0)
        self.assertEqual((node["node_name"], node["type"]), ("c02", "aggregator"))
        self.assertTrue(events)

    def assertNoGpus(self, nvml):
        events = capture_log(self, inventory)
        self.assertEqual(collect_inventory("c01", "compute", root=ROOT, nvml=nvml, run=nothing)["gpu"], [])
        self.assertEqual(len([e for e in events if "NVML" in e["log_format"]]), 1)

    def test_driver_not_loaded(self):
        self.assertNoGpus(fakenvml.FakeNvml([fakenvml.FakeGpu()],
                                            init_error=fakenvml.NVML_ERROR_DRIVER_NOT_LOADED))

    def test_library_not_found(self):
        self.assertNoGpus(fakenvml.FakeNvml([fakenvml.FakeGpu()],
                                            init_error=fakenvml.NVML_ERROR_LIBRARY_NOT_FOUND))

    def test_os_error(self):
        self.assertNoGpus(fakenvml.FakeNvml([fakenvml.FakeGpu()], init_error=OSError("no libnvidia-ml")))

    def test_pynvml_not_installed(self):
        saved = sys.modules.pop("pynvml", None)
        self.addCleanup(restore_module, "pynvml", saved)
        sys.modules["pynvml"] = None  # makes "import pynvml" raise ImportError
        self.assertNoGpus(None)

    def test_bad_node_type(self):
        self.assertRaises(ValueError, collect_inventory, "c01", "service", root=ROOT, run=nothing)


def restore_module(name, module):
    sys.modules.pop(name, None)
    if module is not None:
        sys.modules[name] = module


def refuse(argv, timeout):
    raise AssertionError("must not spawn %r" % (argv,))


class CommandRunnerTests(SynchronousTestCase):
    """dmidecode runs only as root and only where it is installed."""

    def dimms(self, runner):
        return collect_inventory("c01", "compute", root=ROOT, nvml=fakenvml.FakeNvml(), run=runner)["dimm"]

    def test_dmidecode_absent(self):
        self.assertEqual(self.dimms(CommandRunner(which=lambda name: None, geteuid=lambda: 0,
                                                  spawn=refuse)), [])

    def test_not_root(self):
        self.assertEqual(self.dimms(CommandRunner(which=lambda name: "/usr/sbin/" + name,
                                                  geteuid=lambda: 1000, spawn=refuse)), [])

    def test_root_with_dmidecode(self):
        spawned = []

        def spawn(argv, timeout):
            spawned.append((argv, timeout))
            return fixture_output([os.path.basename(argv[0])] + argv[1:])

        runner = CommandRunner(timeout=3, which=lambda name: "/usr/sbin/" + name, geteuid=lambda: 0,
                               spawn=spawn)
        self.assertEqual(len(self.dimms(runner)), 4)
        self.assertIn((["/usr/sbin/dmidecode", "-t", "17"], 3), spawned)

    def test_spawn(self):
        self.assertEqual(commands.spawn([sys.executable, "-c", "print('ok')"], 30), b"ok\n")
        self.assertIsNone(commands.spawn([sys.executable, "-c", "raise SystemExit(1)"], 30))
        self.assertIsNone(commands.spawn([self.mktemp()], 30))
        self.assertIsNone(commands.spawn([sys.executable, "-c", "import time; time.sleep(30)"], 0.2))


class SyncPool:
    """A thread pool stand-in that runs the call at once (or never)."""

    def __init__(self, run=True):
        self.run = run

    def callInThreadWithCallback(self, on_result, function, *args, **kwargs):
        if self.run:
            on_result(True, function(*args, **kwargs))


class FakeReactor(Clock):
    def __init__(self, pool):
        super().__init__()
        self.pool = pool

    def getThreadPool(self):
        return self.pool

    def callFromThread(self, function, *args, **kwargs):
        function(*args, **kwargs)


class InThreadTests(SynchronousTestCase):
    def test_result(self):
        d = collect_inventory_in_thread("c01", "compute", root=ROOT, nvml=fakenvml.FakeNvml(),
                                        run=nothing, reactor=FakeReactor(SyncPool()))
        self.assertEqual(self.successResultOf(d)["node"]["discovered_sockets"], 2)

    def test_timeout(self):
        reactor = FakeReactor(SyncPool(run=False))
        d = collect_inventory_in_thread("c01", "compute", root=ROOT, run=nothing, reactor=reactor,
                                        timeout=30)
        self.assertNoResult(d)
        reactor.advance(30)
        self.failureResultOf(d, TimeoutError)


class RealMachineTests(SynchronousTestCase):
    def test_real_root(self):
        """This very machine, with the real pynvml and the default runner."""
        result = collect_inventory("realnode", "compute")
        self.assertEqual(result["node"]["kernel_release"], os.uname().release)
        self.assertGreaterEqual(result["node"]["discovered_cores"], 1)
        self.assertEqual(result["node"]["discovered_gpus"], len(result["gpu"]))
        json.dumps(result)


class ParserTests(SynchronousTestCase):
    def test_dimm_sizes(self):
        for text, size in [("32 GB", 32768), ("16384 MB", 16384), ("1 TB", 1048576),
                           ("No Module Installed", None), ("Unknown", None), (None, None)]:
            self.assertEqual(memory.dimm_size_mib(text), size, text)

    def test_meaningful(self):
        for value in ("Not Specified", " ", "0000000", "To Be Filled By O.E.M.", None):
            self.assertIsNone(sysfs.meaningful(value))
        self.assertEqual(sysfs.meaningful(" 7XK2Q33 "), "7XK2Q33")

    def test_dmidecode_skips_other_types(self):
        text = b"Handle 0x0001, DMI type 16, 23 bytes\n\tLocation: System Board\n\n" \
               b"Handle 0x0002, DMI type 17, 84 bytes\nMemory Device\n\tSize: 8 GB\n\t\tnested: x\n"
        self.assertEqual(commands.dmidecode(lambda argv: text, 17), [{"Size": "8 GB"}])

    @given(strategies.binary(max_size=300))
    def test_vpd_never_raises(self, data):
        self.assertIsInstance(hca.parse_vpd(data), dict)

    @given(strategies.text(max_size=300))
    def test_dmidecode_never_raises(self, text):
        memory.dimms(lambda argv: text.encode("utf-8", "replace"))
        cpu.processors(sysfs.SysTree(ROOT), lambda argv: text.encode("utf-8", "replace"), {0: {0}})
