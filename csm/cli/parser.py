"""argparse's parser of a command, from the registry: help, usage, and the command lines
``csm.cli.flags.quick_args`` leaves to it."""

import argparse
import os
import sys

from csm.cli.flags import UsageError, options


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def terminal_width():
    """What argparse's formatter takes from ``shutil.get_terminal_size`` (COLUMNS, else the
    terminal, else 80), without importing shutil: argparse makes a formatter for every
    flag, and shutil's imports (compression modules) cost a command ~2 ms."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None):
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_width() - 2 if width is None else width)


def build_parser(command):
    parser = _Parser(prog=command.cli_name, add_help=False, formatter_class=_Formatter,
                     description="%s\nOUTPUT OF THIS COMMAND IS DISPLAYED IN THE YAML FORMAT."
                     % command.description)
    for option in options(command):
        kw = {"dest": option.dest, "help": option.help}
        if not option.takes_value:
            kw["action"] = "store_true"
        elif option.choices:
            kw.update(choices=option.choices, default=option.default)
        else:
            kw["metavar"] = option.dest.upper()
        parser.add_argument(*option.flags, **kw)
    # CAST's tools ignore stray operands (an unquoted -M message word by word): so do these
    parser.add_argument("operands", nargs="*", help=argparse.SUPPRESS)
    return parser
