"""The csm_* command framework: flags from the registry, output, exit status."""

import ast
import io
import json
import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.api.commands import REGISTRY
from csm.cli import formats, output
from csm.cli.layout import records
from csm.cli.main import build_parser, run
from csm.errors import ErrorCode

SETUP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "setup.py")


def setup_commands():
    tree = ast.parse(open(SETUP).read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "CSM_COMMANDS":
            return ast.literal_eval(node.value)
    raise AssertionError("CSM_COMMANDS not found in setup.py")


class RegistryCoverageTests(SynchronousTestCase):
    def test_every_command_is_installed(self):
        self.assertEqual(sorted(setup_commands()), sorted(REGISTRY.by_cli))


class OutputTests(SynchronousTestCase):
    def test_no_records(self):
        self.assertEqual(records([]),
                         "---\nTotal_Records: 0\n# No matching records found.\n...\n")

    def test_records_layout(self):
        text = records([{"state": "IN_SERVICE", "node_name": "c01", "comment": "rack 3"},
                               {"state": "DISCOVERED", "node_name": "c02", "comment": None}])
        lines = text.splitlines()
        self.assertEqual(lines[:3], ["---", "Total_Records: 2", "Record_1:"])
        self.assertEqual(lines[-1], "...")
        self.assertIn("Record_2:", lines)
        self.assertRegex(text, r"\n  node_name: +c01\n")
        # keys sorted, as CAST prints them
        record1 = lines[3:6]
        self.assertEqual([l.split(":")[0].strip() for l in record1], ["comment", "node_name", "state"])

    def test_document_nested(self):
        text = output.document({"a": 1, "b": {"c": "x"}, "l": [{"k": 1}, "v"]})
        self.assertTrue(text.startswith("---\n") and text.endswith("...\n"))
        self.assertIn("b:\n  c:", text)
        self.assertIn("- k:", text)
        self.assertIn("  - v", text)

    def test_health_layout(self):
        report = {
            "master": {"node": "m", "version": "1.8.5"},
            "aggregators": [
                {"node": "a1", "bounced": 0, "version": "1.8.5", "responding": True, "computes": [
                    {"node": "c1", "bounced": 0, "version": "1.8.5", "responding": True, "link": "PRIMARY"},
                    {"node": "c2", "bounced": 1, "version": "n/a", "responding": False, "link": "SECONDARY"}]},
                {"node": "a2", "bounced": 2, "version": "n/a", "responding": False}],
            "utilities": [{"node": "u1", "bounced": 0, "version": "1.8.5", "responding": True}],
            "local_daemon": {"node": "c1", "role": "compute", "version": "1.8.5"},
        }
        text = formats.health_check(report, verbose=True)
        for expected in ["MASTER: m (bounced=0; version=1.8.5)", "Aggregators:2",
                         "    AGGREGATOR: a1 (bounced=0; version=1.8.5)", "        Active_primary: 1",
                         "        Unresponsive_secondary: 1",
                         "COMPUTE: c1 (bounced=0; version=1.8.5; link=PRIMARY)",
                         "  Unresponsive Aggregators: 1", "    AGGREGATOR: a2 (bounced=2; version=n/a)",
                         "Utility Nodes:1", "    UTILITY: u1 (bounced=0; version=1.8.5)",
                         "Local_daemon: COMPUTE: c1", "Test complete: rc=0"]:
            self.assertIn(expected, text)
        self.assertNotIn("link=PRIMARY", formats.health_check(report, verbose=False))


class RunTests(SynchronousTestCase):
    def setUp(self):
        self.command = REGISTRY.get("ctrl_cmd")
        directory = tempfile.mkdtemp()
        self.patch(os, "environ", dict(os.environ, CSM_SOCKET=os.path.join(directory, "none.sock")))

    def run_cli(self, *argv):
        out = io.StringIO()
        return run(self.command, list(argv), out), out.getvalue()

    def test_help(self):
        rc, out = self.run_cli("-h")
        self.assertEqual(rc, ErrorCode.CSMI_HELP)
        self.assertIn("--log.csmnet", out)
        self.assertIn("YAML", out)

    def test_bad_flag(self):
        rc, out = self.run_cli("--no-such-flag")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM)
        self.assertIn("csm_ctrl_cmd FAILED: errcode: 9", out)

    def test_bad_choice(self):
        rc, out = self.run_cli("--log.csmnet", "loud")
        self.assertEqual(rc, ErrorCode.CSMERR_INVALID_PARAM)
        self.assertIn("loud", out)

    def test_no_daemon(self):
        rc, out = self.run_cli("--status")
        self.assertEqual(rc, ErrorCode.CSMERR_INIT_LIB_FAILED)
        self.assertIn("csm_ctrl_cmd FAILED: errcode: 18 errmsg: Can not connect to daemon", out)

    def test_no_daemon_json(self):
        rc, out = self.run_cli("--status", "--format", "json")
        self.assertEqual(json.loads(out)["errcode"], 18)

    def test_flags_come_from_registry(self):
        parser = build_parser(REGISTRY.get("infrastructure_health_check"))
        self.assertTrue(parser.parse_args(["-v"]).verbose_health)
