"""The heartbeat state machine, driven by task.Clock."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from csm.net import heartbeat
from csm.net.heartbeat import Heartbeat, HeartbeatState


class HeartbeatTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.probes = []
        self.dead = []
        self.hb = Heartbeat(self.clock, 15, lambda: self.probes.append(self.clock.seconds()),
                            lambda: self.dead.append(self.clock.seconds()), grain=0)  # exact times
        self.hb.start()

    def test_silent_peer_dies_after_three_and_a_half_intervals(self):
        self.clock.pump([0.25] * 60)
        self.assertEqual(self.hb.state, HeartbeatState.UNSURE)
        self.clock.pump([0.25] * 75)
        self.assertEqual(self.hb.state, HeartbeatState.MISSING_RECV)
        self.assertEqual(self.probes, [15, 33.75])
        self.clock.pump([0.25] * 74)
        self.assertEqual(self.dead, [])
        self.clock.pump([0.25])
        self.assertEqual(self.hb.state, HeartbeatState.DEAD)
        self.assertEqual(self.dead, [52.5])

    def test_traffic_keeps_it_happy_without_probes_after_the_first(self):
        for _ in range(20):
            self.clock.advance(5)
            self.hb.received()
        self.assertEqual(self.hb.state, HeartbeatState.HAPPY)
        self.assertEqual(self.probes, [15])  # the first check probes: its answer sets the link's phase

    def test_answer_to_probe_restores_happy(self):
        self.clock.advance(15)
        self.assertEqual(self.hb.state, HeartbeatState.UNSURE)
        self.hb.received()
        self.assertEqual(self.hb.state, HeartbeatState.HAPPY)
        self.clock.advance(40)
        self.assertEqual(self.dead, [])

    def test_pair_uses_the_smaller_interval(self):
        self.hb.peer_interval(5)
        self.assertEqual(self.hb.interval, 5)
        self.hb.peer_interval(30)
        self.assertEqual(self.hb.interval, 5)
        self.clock.pump([0.25] * 70)
        self.assertEqual(self.dead, [17.5])

    def test_out_of_range_peer_interval_ignored(self):
        self.hb.peer_interval(1)
        self.assertEqual(self.hb.interval, 15)

    def test_first_check_probes_even_after_the_hello(self):
        self.hb.stop()
        clock, probes = Clock(), []
        link = Heartbeat(clock, 15, lambda: probes.append(clock.seconds()), lambda: None, grain=0, jitter=0)
        link.start(phase=0.2)
        clock.advance(0.5)
        link.received()  # the hello
        clock.advance(2.5)
        self.assertEqual(probes, [3.0])
        link.received()  # its answer
        clock.pump([0.25] * 140)
        self.assertEqual(probes, [3.0, 21.75])  # then 1.25 I after its probe (a peer checking at I comes first)

    def test_a_smaller_peer_interval_keeps_the_first_probes_phase(self):
        self.hb.stop()
        clock, probes = Clock(), []
        link = Heartbeat(clock, 15, lambda: probes.append(clock.seconds()), lambda: None, grain=0, jitter=0)
        link.start(phase=0.4)  # first probe due at 6
        clock.advance(1)
        link.peer_interval(10)  # 5 s were left of 15: 10/15 of that
        clock.advance(10 / 3.0)
        self.assertEqual(len(probes), 1)
        self.assertAlmostEqual(probes[0], 1 + 10 / 3.0)

    def test_first_check_after_the_phase(self):
        self.hb.stop()
        probes = []
        early = Heartbeat(self.clock, 15, lambda: probes.append(self.clock.seconds()), lambda: None, grain=0)
        early.start(phase=0.5)
        self.clock.advance(7.5)
        self.assertEqual(probes, [7.5])
        self.clock.advance(18.75)  # then 1.25 intervals apart, as always
        self.assertEqual(probes, [7.5, 26.25])

    def second_probe(self, draw, heard_at, traffic):
        """When a link whose first probe went out at 15 probes next, having heard the peer at
        ``heard_at`` (a heartbeat, or ``traffic``), its random draws all ``draw``."""
        clock, probes = Clock(), []
        hb = Heartbeat(clock, 15, lambda: probes.append(clock.seconds()), lambda: None, random=lambda: draw,
                       grain=0)
        hb.start()
        clock.advance(15)  # the first probe; the next check at 33.75
        clock.advance(heard_at - 15)
        hb.received(traffic)
        clock.pump([0.25] * 100)
        hb.stop()
        self.assertEqual(probes[0], 15)
        return probes[1:]

    def test_check_after_traffic_comes_within_half_the_jitter_of_the_interval(self):
        for draw, probe in ((0.0, 34.25), (0.5, 35.0), (1.0, 35.75)):
            self.assertEqual(self.second_probe(draw, heard_at=20, traffic=False), [probe])  # its answer, late

    def test_after_traffic_the_next_check_comes_between_half_an_interval_and_one(self):
        for draw, probe in ((0.0, 45.0), (0.5, 41.25), (1.0, 37.5)):
            self.assertEqual(self.second_probe(draw, heard_at=30, traffic=True), [probe])  # a request at 30

    def test_after_traffic_a_silent_peer_dies_within_three_and_a_half_intervals(self):
        for draw in (0.0, 0.5, 1.0):
            clock, dead = Clock(), []
            hb = Heartbeat(clock, 15, lambda: None, lambda: dead.append(clock.seconds()), random=lambda: draw,
                           grain=0)
            hb.start()
            clock.advance(15)  # the first probe
            clock.advance(15)
            hb.received(traffic=True)  # the last thing the peer ever sends, at t = 30
            clock.pump([0.25] * 400)
            self.assertEqual(dead, [30 + 15 * (1 - 0.5 * draw) + 2 * 18.75])
            self.assertTrue(30 + 3 * 15 <= dead[0] <= 30 + 3.5 * 15)

    def broadcast_probe_times(self, traffic, pairs=300):
        """The first probe of each of ``pairs`` idle links (both ends timed, probes answered at once, phases
        spread by their start) after both ends of every link heard one message at t = 120."""
        clock, probes, links = Clock(), [], []
        for index in range(pairs):
            ends = []

            def probe(end, index=index, ends=ends):
                probes.append((clock.seconds(), index))
                ends[1 - end].received()  # the peer hears the probe and answers at once
                ends[end].received()
            ends.extend(Heartbeat(clock, 15, lambda end=end, probe=probe: probe(end), lambda: None, grain=0.1,
                                  offset=0.0) for end in (0, 1))
            for end in ends:
                end.start()
            links.append(ends)
        clock.pump([0.1] * 1200)
        for ends in links:
            for end in ends:
                end.received(traffic)  # a request to every node and its reply (or a heartbeat each)
        clock.pump([0.1] * 200)
        first = {}
        for when, index in probes:
            if when > 120:
                first.setdefault(index, when)
        for ends in links:
            for end in ends:
                end.stop()
        return sorted(first.values())

    def test_links_that_hear_one_broadcast_do_not_probe_together_after_it(self):
        together = self.broadcast_probe_times(traffic=False)  # heartbeats heard at one moment: one clump
        self.assertEqual(len(together), 300)
        self.assertLess(together[-1] - together[0], 1.6)
        spread = self.broadcast_probe_times(traffic=True)
        self.assertEqual(len(spread), 300)
        self.assertTrue(120 + 7.5 <= spread[0] and spread[-1] <= 120 + 15.1, (spread[0], spread[-1]))
        self.assertGreater(spread[-1] - spread[0], 6.0)
        per_second = [sum(1 for t in spread if second <= t < second + 1) for second in range(127, 136)]
        self.assertLess(max(per_second), 100)  # all 300 within 1.5 s when heard as heartbeats

    def pairs_probe_times(self, jitter, pairs=200, cycles=12):
        """Probe times in the last interval of ``pairs`` links made at one instant whose probes are
        answered at once (both ends hear each other at the same moment, as after a burst)."""
        clock, probes = Clock(), []
        for _ in range(pairs):
            ends = []

            def probe(index, ends=ends):
                probes.append(clock.seconds())
                ends[1 - index].received()  # the peer hears the probe and answers at once
                ends[index].received()
            ends.extend(Heartbeat(clock, 15, lambda i=i, probe=probe: probe(i), lambda: None, jitter=jitter)
                        for i in (0, 1))
            for end in ends:
                end.start()
        clock.pump([0.05] * int(cycles * 15 / 0.05))
        end = clock.seconds()
        return [t for t in probes if t > end - 15]

    def test_links_in_step_drift_apart(self):
        in_step = self.pairs_probe_times(jitter=0.0)
        self.assertLess(max(in_step) - min(in_step), 0.1)  # without jitter: one clump for ever
        spread = self.pairs_probe_times(jitter=0.1)
        self.assertGreater(max(spread) - min(spread), 4.0)
        self.assertLess(len(spread), 200 * 1.05)  # still one probe a link per interval, no more

    def first_checks(self, offset):
        """When 50 links due between 1007.53 and 1007.57 check first (a 0.1 s grid starting at ``offset``)."""
        clock = Clock()
        clock.advance(1000.03)
        for index in range(50):
            Heartbeat(clock, 15, lambda: None, lambda: None, grain=0.1, offset=offset).start(
                phase=0.5 + index * 0.00005)
        return {round(call.getTime(), 6) for call in clock.getDelayedCalls()}

    def test_checks_of_many_links_fall_on_one_tick_of_the_grid(self):
        self.assertEqual(self.first_checks(offset=0.0), {1007.6})

    def test_a_process_grid_starts_at_its_offset(self):
        self.assertEqual(self.first_checks(offset=0.08), {1007.58})

    def test_processes_check_their_links_at_different_moments(self):
        """Links of two processes due at the same moment: each process's checks fall on its own grid
        (here half a grain apart), so the two do not wake together."""
        clock = Clock()
        clock.advance(1000.001)
        times = []
        for offset in (0.0, 0.01):
            for index in range(20):
                Heartbeat(clock, 15, lambda: None, lambda: None, grain=0.02, offset=offset).start(
                    phase=0.5 + index * 0.000005)  # due between 1007.501 and 1007.503
            times.append({round(call.getTime(), 6) for call in clock.getDelayedCalls()} - set().union(*times))
        self.assertEqual(times, [{1007.52}, {1007.51}])

    def test_the_process_offset_is_a_share_of_a_grain(self):
        self.assertTrue(0.0 <= heartbeat.OFFSET < 1.0)
        self.assertEqual(Heartbeat(self.clock, 15, lambda: None, lambda: None).offset,
                         heartbeat.GRAIN * heartbeat.OFFSET)

    def test_a_silent_peer_dies_on_the_grid_within_three_grains_of_three_and_a_half_intervals(self):
        clock, dead = Clock(), []
        clock.advance(1000.003)
        hb = Heartbeat(clock, 15, lambda: None, lambda: dead.append(clock.seconds()), grain=0.02, offset=0.007)
        hb.start()
        checks = []
        while not dead:
            checks.append(clock.getDelayedCalls()[0].getTime())
            clock.advance(checks[-1] - clock.seconds())
        self.assertEqual(len(checks), 3)  # two probes, then dead
        self.assertTrue(52.5 <= dead[0] - 1000.003 <= 52.5 + 3 * 0.02, dead[0] - 1000.003)
        for when in checks:
            self.assertAlmostEqual((when - 0.007) / 0.02, round((when - 0.007) / 0.02), places=6)

    def test_stop_cancels(self):
        self.hb.stop()
        self.clock.advance(100)
        self.assertEqual(self.dead, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])
