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
