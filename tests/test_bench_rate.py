"""bench/allocation_rate.py's median of repeated runs."""

from twisted.trial.unittest import SynchronousTestCase

from bench.allocation_rate import median_line


def run(pairs, master_percent):
    return {"pairs": pairs, "seconds": 10.0, "wall": 10.0, "cpu": {"master": master_percent, "computes": 50.0}}


class MedianTests(SynchronousTestCase):
    def test_median_run_and_cpu_a_pair(self):
        line = median_line("real", "sample", 8, [run(1800, 36.0), run(1500, 30.0), run(2000, 20.0)], 1024)
        self.assertEqual(line, "8 real computes, prolog sample, 8 clients, median of 3 runs: 180.0 pairs/s "
                               "(runs 150.0, 180.0, 200.0); CPU a pair (ms, median): master 2.00, computes 2.78, "
                               "all 4.78")
