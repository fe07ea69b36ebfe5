"""Buckets on a Clock, and the BDS sink's queue."""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from csm.config import BDSConfig, Bucket
from csm.env.buckets import BucketService, first_delay


class CountingItem:
    def __init__(self, kind, fail=False):
        self.kind = kind
        self.fail = fail
        self.calls = 0

    def collect(self):
        self.calls += 1
        if self.fail:
            raise OSError("sensor gone")
        return [{"type": self.kind, "data": {"n": self.calls}}]


class BucketTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.clock.advance(1000)  # epoch second 1000
        self.sent = []

    def service(self, buckets, items):
        svc = BucketService(self.clock, buckets, items, self.sent.append,
                            run_blocking=defer.maybeDeferred, source="c01")
        svc.startService()
        self.addCleanup(svc.stopService)
        return svc

    def test_each_bucket_a_child_timer_gone_at_stop(self):
        svc = self.service([Bucket(10, ("gpu",)), Bucket(60, ("ssd",))], {"gpu": CountingItem("gpu"),
                                                                          "ssd": CountingItem("ssd")})
        self.assertEqual(list(svc), [])  # before the first aligned run
        self.clock.advance(20)
        self.assertEqual(sorted(timer.step for timer in svc), [10, 60])
        svc.stopService()
        self.assertEqual((list(svc), self.clock.getDelayedCalls()), ([], []))

    def test_first_run_aligned_to_interval(self):
        self.assertEqual(first_delay(1000, 600), 200)
        self.assertEqual(first_delay(1200, 600), 600)

    def test_buckets_fire_at_their_intervals(self):
        gpu, ssd = CountingItem("gpu"), CountingItem("ssd")
        self.service([Bucket(10, ("gpu",)), Bucket(60, ("ssd",))], {"gpu": gpu, "ssd": ssd})
        self.clock.pump([1] * 120)
        self.assertEqual(gpu.calls, 12)   # at 1010, 1020, ..., 1120
        self.assertEqual(ssd.calls, 2)    # at 1020 and 1080
        self.assertEqual(self.sent[0][0]["source"], "c01")
        self.assertIn("timestamp", self.sent[0][0])

    def test_failing_item_does_not_stop_its_bucket(self):
        good, bad = CountingItem("cpu"), CountingItem("gpu", fail=True)
        errors = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        self.service([Bucket(10, ("gpu", "cpu"))], {"gpu": bad, "cpu": good})
        self.clock.pump([1] * 50)
        self.assertEqual(bad.calls, 5)
        self.assertEqual(good.calls, 5)
        self.assertEqual(len(self.sent), 5)
        warnings = [e for e in errors if "environmental item gpu failed" in str(e.get("log_format", "")) or
                    e.get("name") == "gpu"]
        self.assertEqual(len(warnings), 1)  # logged once, not on every run

    def test_unknown_items_skipped(self):
        svc = self.service([Bucket(10, ("network",))], {"gpu": CountingItem("gpu")})
        self.assertEqual(svc.buckets, [])


class SinkQueueTests(SynchronousTestCase):
    def test_expiry_while_disconnected(self):
        from twisted.internet.testing import MemoryReactorClock
        from csm.env.bds import BdsSink
        reactor = MemoryReactorClock()
        sink = BdsSink(reactor, BDSConfig(host="127.0.0.1", port=1, data_cache_expiration=60))
        sink.add([{"type": "a", "data": {}}])
        reactor.advance(30)
        sink.add([{"type": "b", "data": {}}])
        reactor.advance(40)
        sink.add([{"type": "c", "data": {}}])
        self.assertEqual([line for _, line in sink.queue],
                         [b'{"data":{},"type":"b"}\n', b'{"data":{},"type":"c"}\n'])
        self.assertEqual(sink.dropped, 1)


class XidTests(SynchronousTestCase):
    def test_xid_raises_its_ras_event(self):
        from csm.env.xid import XidService
        from csm.node.items.gpu import GpuXidWatcher
        from tests.fakenvml import two_gpus
        nvml = two_gpus()
        raised = []
        clock = Clock()
        service = XidService(clock, GpuXidWatcher(nvml), lambda msg_id, **kw: raised.append((msg_id, kw)),
                             interval=5, run_blocking=defer.maybeDeferred)
        service.startService()
        self.addCleanup(service.stopService)
        nvml.inject_xid(1, 79)
        clock.advance(5)
        self.assertEqual([msg_id for msg_id, _ in raised], ["gpu.xid.79"])
        self.assertIn("gpu_id=1", raised[0][1]["kvcsv"])
        clock.advance(5)
        self.assertEqual(len(raised), 1)  # each event once

    def test_polling_is_a_child_timer_stopped_with_the_service(self):
        from csm.env.xid import XidService
        from csm.node.items.gpu import GpuXidWatcher
        from tests.fakenvml import two_gpus
        clock = Clock()
        service = XidService(clock, GpuXidWatcher(two_gpus()), lambda msg_id, **kw: None, interval=5,
                             run_blocking=defer.maybeDeferred)
        service.startService()
        self.assertEqual(service.getServiceNamed("poll").step, 5)
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        service.stopService()
        self.assertEqual(clock.getDelayedCalls(), [])
        service.startService()  # once again: one timer, not two
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        service.stopService()

    def test_gpu_bucket_records_from_fake_nvml(self):
        from csm.env.items import build_items
        from tests.fakenvml import two_gpus
        clock = Clock()
        sent = []
        items = build_items(nvml=two_gpus())
        service = BucketService(clock, [Bucket(10, ("gpu",))], items, sent.append,
                                run_blocking=defer.maybeDeferred, source="c01")
        service.startService()
        self.addCleanup(service.stopService)
        clock.advance(10)
        records = sent[0]
        self.assertEqual([(r["type"], r["data"]["gpu_id"]) for r in records],
                         [("csm-gpu-counters", 0), ("csm-gpu-counters", 1)])
        self.assertIn("temperature", records[0]["data"])


class MetricNameTests(SynchronousTestCase):
    def test_gpu_counters_use_dcgm_exporter_names(self):
        from prometheus_client import CollectorRegistry, generate_latest

        from csm.metrics import environment_families

        latest = {"c01": {
            "csm-gpu-counters": {"type": "csm-gpu-counters", "data": {"gpu_id": 1, "uuid": "GPU-x", "temperature": 41,
                                                                      "power_usage": 55.5, "serial_number": "s"}},
            "csm-node-env": {"type": "csm-node-env", "data": {"memory_used": 10}}}}

        class Collector:
            def collect(self):
                return environment_families(latest)
        registry = CollectorRegistry()
        registry.register(Collector())
        text = generate_latest(registry).decode()
        self.assertIn('DCGM_FI_DEV_GPU_TEMP{Hostname="c01",UUID="GPU-x",gpu="1"} 41.0', text)
        self.assertIn('DCGM_FI_DEV_POWER_USAGE{Hostname="c01",UUID="GPU-x",gpu="1"} 55.5', text)
        self.assertIn('csm_env_csm_node_env_memory_used{Hostname="c01"} 10.0', text)
