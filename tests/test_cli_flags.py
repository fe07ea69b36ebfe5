"""The quick reading of a command line gives what argparse gives, or leaves the line to it."""

from hypothesis import given, settings, strategies
from twisted.trial.unittest import SynchronousTestCase

from csm.api.commands import REGISTRY
from csm.cli.flags import UsageError, options, quick_args
from csm.cli.main import build_parser

COMMANDS = sorted(REGISTRY.by_cli.values(), key=lambda command: command.cli_name)
VALUES = ("c01", "", "5", "-5", "json", "yaml", "off", "debug", "a b", "--x", "-", "c[01-02]", "true")


def words(command):
    """Command lines from the command's own flags (sometimes cut short or run together),
    stray words, values that look like options, and unknown flags."""
    flags = [flag for option in options(command) for flag in option.flags]
    word = strategies.one_of(
        strategies.sampled_from(flags),
        strategies.sampled_from(flags).map(lambda flag: flag[:-1] if len(flag) > 3 else flag),
        strategies.sampled_from(flags).map(lambda flag: flag + "=c01"),
        strategies.sampled_from(VALUES),
        strategies.sampled_from(("-x", "--bogus", "--")),
    )
    return strategies.lists(word, max_size=8)


def argparse_result(command, argv):
    try:
        return vars(build_parser(command).parse_intermixed_args(argv))
    except UsageError:
        return "refused"


class QuickArgsTests(SynchronousTestCase):
    @settings(max_examples=400, deadline=None)
    @given(strategies.data())
    def test_same_as_argparse_or_left_to_it(self, data):
        command = data.draw(strategies.sampled_from(COMMANDS))
        argv = data.draw(words(command))
        quick = quick_args(command, argv)
        if quick is not None:
            self.assertEqual(quick, argparse_result(command, argv), (command.cli_name, argv))

    def test_plain_lines_are_read_quickly(self):
        command = REGISTRY.by_cli["csm_allocation_create"]
        argv = ["-j", "7", "-n", "c01,c02", "stray", "--format", "json"]
        self.assertEqual(quick_args(command, argv), argparse_result(command, argv))
        self.assertEqual(quick_args(command, argv)["operands"], ["stray"])

    def test_help_and_odd_lines_go_to_argparse(self):
        command = REGISTRY.by_cli["csm_node_attributes_query"]
        for argv in (["-h"], ["--node=c01"], ["--node", "c01"], ["-n"], ["-n", "-5"], ["--format", "xml"], ["-q"]):
            self.assertIsNone(quick_args(command, argv), argv)
