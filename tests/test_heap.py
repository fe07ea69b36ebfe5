"""The daemons' heap freezer: short collections, and frozen cyclic garbage reclaimed at the next refresh."""

import gc
import weakref

from twisted.application import service
from twisted.internet import task
from twisted.trial.unittest import SynchronousTestCase

from csm import heap
from csm.tap.common import CleanExitOnTerm, process_service


class Node:
    """A cyclic structure (as a link and its transport are)."""

    def __init__(self):
        self.me = self


class HeapFreezerTests(SynchronousTestCase):
    def setUp(self):
        gc.unfreeze()  # whatever froze before in this process
        self.addCleanup(gc.unfreeze)
        self.clock = task.Clock()
        self.freezer = heap.HeapFreezer(self.clock, settle=30, period=600, spread=0)

    def test_freezes_after_settling_then_at_doubling_delays_up_to_the_period(self):
        self.freezer.startService()
        self.clock.advance(29)
        self.assertEqual((self.freezer.freezes, gc.get_freeze_count()), (0, 0))
        kept = Node()
        self.clock.advance(1)
        self.assertEqual(self.freezer.freezes, 1)
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertNotIn(kept, gc.get_objects(2))  # out of the collector's generations
        times = []
        for _ in range(6):
            delay = self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds()
            times.append(delay)
            self.clock.advance(delay)
        self.assertEqual(times, [60, 120, 240, 480, 600, 600])
        self.assertEqual(self.freezer.freezes, 7)

    def test_daemons_started_together_do_not_collect_together(self):
        times = []
        for draw in (0.0, 0.5, 1.0):
            clock = task.Clock()
            freezer = heap.HeapFreezer(clock, settle=30, period=600, spread=0.5, random=lambda: draw)
            freezer.startService()
            times.append(clock.getDelayedCalls()[0].getTime())
            clock.advance(times[-1])
            times.append(clock.getDelayedCalls()[0].getTime() - clock.seconds())
            freezer.stopService()
        self.assertEqual(times, [30, 60, 37.5, 75, 45, 90])

    def full_collections(self):
        """The generation-2 collections from now on, as a list that grows."""
        full = []

        def callback(phase, info):
            if phase == "start" and info["generation"] == 2:
                full.append(info)
        gc.callbacks.append(callback)
        self.addCleanup(gc.callbacks.remove, callback)
        return full

    def test_frozen_cyclic_garbage_is_reclaimed_at_the_next_refresh_at_the_period(self):
        self.freezer.startService()
        self.addCleanup(self.freezer.stopService)
        node = Node()
        alive = weakref.ref(node)
        self.clock.advance(30)
        del node  # garbage now, but frozen: collections leave it
        gc.collect()
        self.assertIsNotNone(alive())
        for delay in (60, 120, 240, 480):  # the refreshes while the state builds up
            self.clock.advance(delay)
        self.assertEqual(self.freezer.freezes, 5)
        self.assertIsNotNone(alive())
        self.clock.advance(600)
        self.assertIsNone(alive())

    def test_only_the_first_freeze_and_those_at_the_period_collect_in_full(self):
        """A full collection of a settled daemon stalls it for 0.1-0.2 s: the refreshes
        while its state builds up freeze the young generations' survivors only."""
        self.addCleanup(gc.set_threshold, *gc.get_threshold())
        self.freezer.startService()
        self.addCleanup(self.freezer.stopService)
        full = self.full_collections()
        counts = []
        for delay in (30, 60, 120, 240, 480, 600, 600):
            self.clock.advance(delay)
            counts.append(len(full))
        self.assertEqual(counts, [1, 1, 1, 1, 1, 2, 3])
        self.assertEqual(self.freezer.freezes, 7)

    def test_survivors_only_never_collects_in_full(self):
        collected = []
        callback = lambda phase, info: collected.append(info["generation"]) if phase == "start" else None
        gc.callbacks.append(callback)
        self.addCleanup(gc.callbacks.remove, callback)
        freezer = heap.HeapFreezer(self.clock, settle=15, period=60, spread=0, full=False)
        freezer.startService()
        self.addCleanup(freezer.stopService)
        kept, young = Node(), Node()
        dropped = weakref.ref(young)
        del young  # cyclic garbage in the young generations: collected before the freeze
        self.clock.advance(15)
        self.assertIsNone(dropped())
        self.assertNotIn(kept, gc.get_objects(2))
        self.assertGreater(gc.get_freeze_count(), 0)
        self.assertNotIn(2, collected)
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime(), 45)

    def test_a_backlog_in_flight_starts_no_full_collection(self):
        """300,000 objects that stay alive (requests waiting on the database) cost CPython's
        default thresholds three full collections; none once the freezer runs."""
        self.addCleanup(gc.set_threshold, *gc.get_threshold())
        self.freezer.startService()
        self.addCleanup(self.freezer.stopService)
        gc.collect()
        full = self.full_collections()
        backlog = [[n] for n in range(300000)]
        self.assertEqual((len(backlog), full), (300000, []))

    def test_stop_leaves_nothing_scheduled(self):
        self.freezer.startService()
        self.clock.advance(30)
        self.freezer.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_gives_the_collector_its_thresholds_back(self):
        """The thresholds are the process's: a test that starts a daemon in-process leaves
        the collector of every later test as it found it."""
        self.addCleanup(gc.set_threshold, *gc.get_threshold())
        gc.set_threshold(700, 10, 10)
        self.freezer.startService()
        self.assertEqual(gc.get_threshold(), (700, 10, heap.FULL_AFTER))
        self.freezer.stopService()
        self.assertEqual(gc.get_threshold(), (700, 10, 10))

    def test_a_disabled_collector_is_left_alone(self):
        gc.disable()
        self.addCleanup(gc.enable)
        self.freezer.startService()
        self.clock.advance(30)
        self.assertEqual((self.freezer.freezes, gc.get_freeze_count()), (0, 0))
        self.freezer.stopService()


class DaemonProcessTests(SynchronousTestCase):
    def test_each_daemon_process_has_one_freezer(self):
        daemon = service.Service()
        daemon.role = "master"
        top = process_service(daemon, task.Clock())
        self.assertEqual([type(s) for s in top], [service.Service, CleanExitOnTerm, heap.HeapFreezer])
