"""Run the trial suite and close with the counts as one plain line.

Prints trial's own output, then ``N passed, N failed, N skipped`` alone on the last line.
Exits with trial's status. Every process the run started carries ``CSM_TEST_RUN`` in its
environment: whatever of them outlives trial (a killed worker's PostgreSQL, Slurm or daemons)
is killed by process group afterwards, passed, failed or interrupted, and one line says so.
"""

import os
import re
import signal
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from csm import exitcleanup  # noqa: E402  (the checkout's, not an installed one)

MARK = "CSM_TEST_RUN"


def main(argv):
    tests = argv or ["tests"]
    jobs = os.environ.get("TRIAL_JOBS", str(min(2, os.cpu_count() or 1)))
    cmd = [sys.executable, "-m", "twisted.trial", "--jobs=%s" % jobs] + tests
    mark = uuid.uuid4().hex
    for signum in (signal.SIGTERM, signal.SIGHUP):  # end like Ctrl-C: trial's group is told, then reaped
        signal.signal(signum, _interrupt)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, env=dict(os.environ, **{MARK: mark}))
    tail = []
    try:
        for line in proc.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            tail = (tail + [line])[-20:]
        rc = proc.wait()
    except KeyboardInterrupt:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(30)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            proc.kill()
            rc = proc.wait()
        rc = rc or 130
    finally:
        reap(mark)
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


def reap(mark):
    """Kill the process groups of whatever the run left (found by its mark); one line if any."""
    left = exitcleanup.kill_groups(exitcleanup.marked_processes(MARK, mark))
    if left:
        print("run_tests: killed %d process(es) the test workers left: %s" % (
            len(left), " ".join(map(str, sorted(left)))), flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
