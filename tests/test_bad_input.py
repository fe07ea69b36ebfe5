"""Bad command input is refused by validation, before anything is sent, in one line."""

import io
import os
import subprocess
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.api.commands import REGISTRY
from csm.api.registry import Field
from csm.cli.main import run
from csm.cluster import PROJECT
from csm.errors import CSMError, ErrorCode


class ValidationTests(SynchronousTestCase):
    def refused(self, api, body):
        return self.assertRaises(CSMError, REGISTRY.get(api).validate, body)

    def test_text_that_is_not_utf8_is_an_invalid_param(self):
        # what Python makes of the bytes c01\xff on a command line (surrogateescape)
        for api, body in (("node_attributes_query", {"node_names": "c01\udcff"}),
                          ("node_attributes_query", {"node_names": ["c01", "c02\udcff"]}),
                          ("ras_event_create", {"msg_id": "admin.common.info", "kvcsv": "comment=\udcff"})):
            error = self.refused(api, body)
            self.assertEqual(error.errcode, ErrorCode.CSMERR_INVALID_PARAM)
            self.assertIn("not UTF-8 text", error.errmsg)
            error.errmsg.encode("utf-8")  # the message itself can travel

    def test_an_empty_required_list_is_a_missing_field(self):
        missing = self.refused("node_delete", {})
        for value in ("", ",,", " , ", []):
            error = self.refused("node_delete", {"node_names": value})
            self.assertEqual((error.errcode, error.errmsg), (missing.errcode, missing.errmsg))
        self.assertEqual(missing.errcode, ErrorCode.CSMERR_MISSING_PARAM)
        error = self.refused("node_attributes_update", {"node_names": "", "state": "IN_SERVICE"})
        self.assertEqual(error.errcode, ErrorCode.CSMERR_MISSING_PARAM)

    def test_integers_are_checked_against_their_column(self):
        create = REGISTRY.get("allocation_query")
        self.assertEqual(create.validate({"primary_job_id": str(2 ** 63 - 1)})["primary_job_id"], 2 ** 63 - 1)
        for value in ("99999999999999999999999", 2 ** 63, -2 ** 63 - 1):
            error = self.refused("allocation_query", {"primary_job_id": value})
            self.assertEqual(error.errcode, ErrorCode.CSMERR_INVALID_PARAM)
            self.assertIn("primary_job_id", error.errmsg)
        self.assertEqual(Field("user_id", "int").convert(2 ** 31 - 1), 2 ** 31 - 1)
        self.assertRaises(CSMError, Field("user_id", "int").convert, 2 ** 31)  # an int column
        self.assertRaises(CSMError, Field("smt_mode", "int").convert, 2 ** 15)  # a smallint
        self.assertRaises(CSMError, Field("any", "int", bits=8).convert, 128)


class CommandLineTests(SynchronousTestCase):
    """Refused before the command looks for a daemon (there is none here: 18 if it tried)."""

    def setUp(self):
        self.patch(os, "environ", dict(os.environ, CSM_SOCKET=os.path.join(tempfile.mkdtemp(), "none.sock")))

    def run_cli(self, api, *argv):
        out = io.StringIO()
        return run(REGISTRY.get(api), list(argv), out), out.getvalue()

    def assertOneLine(self, rc, out, errcode, cli):
        self.assertEqual(rc, errcode, out)
        self.assertEqual(len(out.splitlines()), 1, out)
        self.assertTrue(out.startswith("%s FAILED: errcode: %d errmsg: " % (cli, errcode)), out)

    def test_not_utf8(self):
        rc, out = self.run_cli("node_attributes_query", "-n", "c01\udcff")
        self.assertOneLine(rc, out, ErrorCode.CSMERR_INVALID_PARAM, "csm_node_attributes_query")
        rc, out = self.run_cli("ras_event_create", "-m", "admin.common.info", "-k", "comment=\udcff")
        self.assertOneLine(rc, out, ErrorCode.CSMERR_INVALID_PARAM, "csm_ras_event_create")

    def test_empty_node_list(self):
        rc, out = self.run_cli("node_attributes_update", "-n", "", "-s", "IN_SERVICE")
        self.assertOneLine(rc, out, ErrorCode.CSMERR_MISSING_PARAM, "csm_node_attributes_update")
        rc, out = self.run_cli("node_delete", "-n", ",,")
        self.assertOneLine(rc, out, ErrorCode.CSMERR_MISSING_PARAM, "csm_node_delete")
        self.assertIn("node_names", out)

    def test_number_too_large(self):
        rc, out = self.run_cli("allocation_query", "-j", "99999999999999999999999")
        self.assertOneLine(rc, out, ErrorCode.CSMERR_INVALID_PARAM, "csm_allocation_query")

    def test_raw_bytes_on_a_real_command_line(self):
        """The bytes themselves, through a process's argv, as a shell passes them."""
        script = "import sys; from csm.cli.main import main; sys.argv[0] = sys.argv[1]; del sys.argv[1]; " \
                 "sys.exit(main())"
        # a terminal in en_US.UTF-8 writes strictly (C.UTF-8 would hide an unprintable echo)
        env = dict(os.environ, PYTHONPATH=PROJECT, PYTHONIOENCODING="utf-8:strict",
                   CSM_SOCKET=os.environ["CSM_SOCKET"])
        for argv, lines in (([b"csm_node_attributes_query", b"-n", b"c01\xff"], 1),
                            ([b"csm_ras_event_create", b"-m", b"admin.common.info", b"-k", b"comment=\xff"], 1),
                            ([b"csm_node_delete", b"--x\xff"], None)):  # echoed, then the usage
            proc = subprocess.run([sys.executable.encode(), b"-c", script.encode()] + argv, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                  timeout=60)
            self.assertEqual((proc.returncode, proc.stderr), (ErrorCode.CSMERR_INVALID_PARAM, b""))
            self.assertIn(b" FAILED: errcode: 9 errmsg: ", proc.stdout.splitlines()[0])
            if lines:
                self.assertEqual(len(proc.stdout.splitlines()), lines, proc.stdout)
