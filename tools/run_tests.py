"""Run the trial suite and close with the counts as one plain line.

Prints trial's own output, then ``N passed, N failed, N skipped`` alone on the last line.
Exits with trial's status.
"""

import os
import re
import subprocess
import sys


def main(argv):
    tests = argv or ["tests"]
    jobs = os.environ.get("TRIAL_JOBS", str(min(2, os.cpu_count() or 1)))
    cmd = [sys.executable, "-m", "twisted.trial", "--jobs=%s" % jobs] + tests
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)
    tail = []
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail = (tail + [line])[-20:]
    rc = proc.wait()
    counts = {"successes": 0, "failures": 0, "errors": 0, "skips": 0,
              "expectedFailures": 0, "unexpectedSuccesses": 0}
    for line in tail:
        match = re.match(r"^(PASSED|FAILED) \((.*)\)\s*$", line.strip())
        if match:
            for key, value in re.findall(r"(\w+)=(\d+)", match.group(2)):
                counts[key] = int(value)
    passed = counts["successes"] + counts["expectedFailures"]
    failed = counts["failures"] + counts["errors"] + counts["unexpectedSuccesses"]
    if rc != 0 and failed == 0:
        failed = 1  # trial failed without a summary (import error, crash)
    print("%d passed, %d failed, %d skipped" % (passed, failed, counts["skips"]))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
