"""bench/compute_rss.py's split of a process's RSS into anonymous memory and mapped libraries."""

import os

from twisted.trial.unittest import SynchronousTestCase

from bench.compute_rss import command_line, memory_map, parse


def vm_rss_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024.0


class MemoryMapTests(SynchronousTestCase):
    def test_parts_add_up_to_the_rss(self):
        """A library's written pages are anonymous: counted once, so the two parts make the RSS
        (less the kernel's own mappings, vdso and vvar, a few pages)."""
        anon, mapped, files = memory_map(os.getpid())
        rss = vm_rss_mb()
        self.assertLessEqual(anon + mapped, rss + 0.5)
        self.assertGreater(anon + mapped, rss - 0.5)
        self.assertAlmostEqual(sum(files.values()), mapped, places=6)

    def test_libraries_by_path(self):
        """Each mapped file is named by its path; the interpreter's C library is among them."""
        files = memory_map(os.getpid())[2]
        self.assertTrue(all(path.startswith("/") for path in files))
        self.assertTrue(any(os.path.basename(path).startswith("libc.") for path in files), sorted(files))


class CommandLineTests(SynchronousTestCase):
    def test_recorded_command_reruns_the_run(self):
        """RESULTS.md's command carries the options the run was made with."""
        self.assertEqual(command_line(parse(["--idle", "30", "--settle", "2", "--record"])),
                         "python bench/compute_rss.py --idle 30 --settle 2 --record")
