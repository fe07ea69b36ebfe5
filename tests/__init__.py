"""The trial suite.

Each test process makes its temporary folders (clusters' run directories, their
private PostgreSQL) inside one folder of its own, removed when the process exits:
a run of the suite left about 6 GB in /tmp. It goes also when a signal ends the process. ``CSM_KEEP_TEST_DIRS=1`` keeps them.
The folder is readable by all: some tests run commands as another user.
"""

import os
import shutil
import tempfile

from csm import exitcleanup

if not os.environ.get("CSM_KEEP_TEST_DIRS"):
    tempfile.tempdir = tempfile.mkdtemp(prefix="csm-tests-")
    os.chmod(tempfile.tempdir, 0o755)
    exitcleanup.register(shutil.rmtree, tempfile.tempdir, True)  # also on SIGTERM, SIGINT, SIGHUP

# Property tests check what they generate, not how fast: on a loaded machine (CI's two
# cores, parallel workers) Hypothesis's per-example deadline and its "too slow" health
# check fail tests whose properties hold.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("csm", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("csm")
