"""A command's options as the registry defines them, and the quick reading of a plain
command line that spares most commands argparse (its import, its parser, its usage
line formatted on every parse: a few milliseconds of each command's start).

``quick_args`` gives exactly what argparse gives for a command line whose every
option is spelled out in full and whose every value is its own word not starting
with ``-``; for anything else (help, abbreviations, ``--flag=value``, a value
starting with ``-``, an unknown option, a choice not allowed) it gives None and
argparse (``csm.cli.parser``) reads the line, with its messages.
"""

from csm.api.registry import VERBOSE_CHOICES

FORMATS = ("yaml", "json")


class UsageError(Exception):
    """A command line argparse refuses; ``parser`` is the parser that refused it."""

    parser = None


class Option:
    """One command-line option: its flags, where its value goes, whether it takes one (else
    a switch), the choices argparse enforces, its default and its help."""

    __slots__ = ("flags", "dest", "takes_value", "choices", "default", "help")

    def __init__(self, flags, dest, takes_value, choices=None, default=None, help=""):
        self.flags, self.dest, self.takes_value = flags, dest, takes_value
        self.choices, self.default, self.help = choices, default, help


def options(command):
    """The command's options in order: -h, the registry's fields with flags, -v (where no
    field has it) and --format."""
    specs = [Option(("-h", "--help"), "help", False, default=False, help="show this help and exit")]
    used = {"-h", "--help"}
    for field in command.fields:
        if not field.flags:
            continue
        used.update(field.flags)
        switch = field.kind == "bool" and field.default is False
        text = "%s (%s)" % (field.help, "|".join(map(str, field.choices))) if field.choices and not switch \
            else field.help
        specs.append(Option(field.flags, field.name, not switch, default=False if switch else None, help=text))
    if "-v" not in used:
        specs.append(Option(("-v", "--verbose"), "verbose", True, VERBOSE_CHOICES, help="client verbosity"))
    specs.append(Option(("--format",), "format", True, FORMATS, "yaml", "output format (default: CAST's YAML)"))
    return specs


def quick_args(command, argv):
    """argparse's namespace (as a dict) for a plain command line; None where argparse must read it."""
    by_flag = {}
    args = {}
    for option in options(command):
        args[option.dest] = option.default
        for flag in option.flags:
            by_flag[flag] = option
    operands = []
    words = iter(argv)
    for word in words:
        if not word.startswith("-"):
            operands.append(word)
            continue
        option = by_flag.get(word)
        if option is None or option.dest == "help":
            return None
        if not option.takes_value:
            args[option.dest] = True
            continue
        following = next(words, None)
        if following is None or following.startswith("-") or (option.choices and following not in option.choices):
            return None
        args[option.dest] = following
    args["operands"] = operands
    return args
