"""The scripts Slurm runs (conf/slurm/), with stand-ins for scontrol and the csm_* commands."""

import os
import subprocess
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT

SCRIPTS = os.path.join(PROJECT, "conf", "slurm")


class PrologTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="csm-slurm-scripts-")
        self.addCleanup(subprocess.call, ["rm", "-rf", self.dir])
        self.calls = os.path.join(self.dir, "calls")
        self.log = os.path.join(self.dir, "log")
        defaults = os.path.join(self.dir, "defaults")
        with open(defaults, "w") as f:
            f.write("CSM_BIN=%s\nCSM_SLURM_LOG=%s\n" % (self.dir, self.log))
        self.env = {"CSM_SLURM_DEFAULTS": defaults, "SLURM_JOB_ID": "7", "SLURM_JOB_NODELIST": "c[01-02]",
                    "SLURM_JOB_USER": "u", "SLURM_JOB_UID": "1000"}
        for name in ("csm_allocation_create", "csm_allocation_delete"):
            self.command(name, 'echo "%s $*" >> %s; echo "allocation_id: 1"' % (name, self.calls))

    def command(self, name, body):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n%s\n" % body)
        os.chmod(path, 0o755)

    def prolog(self):
        return subprocess.run([os.path.join(SCRIPTS, "csm-slurmctld-prolog")], env=self.env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT).returncode

    def called(self):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return f.read().splitlines()

    def test_nodes_expanded_for_the_allocation(self):
        self.command("scontrol", "printf 'c01\\nc02\\n'")
        self.assertEqual((self.prolog(), self.called()),
                         (0, ["csm_allocation_create -j 7 -J 0 -n c01,c02 -u u -U 1000"]))

    def test_a_node_list_scontrol_cannot_expand_keeps_the_job_off(self):
        """scontrol's failure (and its message) is not taken for the node list."""
        self.command("scontrol", "echo 'scontrol: error: Invalid hostlist' >&2; exit 1")
        self.assertEqual((self.prolog(), self.called()), (1, []))
        with open(self.log) as f:
            self.assertIn("Invalid hostlist", f.read())
