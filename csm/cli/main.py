"""The csm_* commands, made from the command registry.

Each console script calls ``main()``; the command is the program's name.
Exit status is the CSM error code (0 success, 4 no results, 16 permission...),
and a failure prints ``<cmd> FAILED: errcode: N errmsg: ...`` as CAST's tools do.
"""

import argparse
import json
import os
import sys

from csm.api.commands import REGISTRY, VERBOSE_CHOICES
from csm.cli.formats import render
from csm.client import Client
from csm.errors import CSMError, ErrorCode


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _UsageError(message)


def build_parser(command):
    parser = _Parser(prog=command.cli_name, add_help=False,
                     description="%s\nOUTPUT OF THIS COMMAND IS DISPLAYED IN THE YAML FORMAT."
                     % command.description)
    parser.add_argument("-h", "--help", action="store_true", help="show this help and exit")
    used = {"-h", "--help"}
    for field in command.fields:
        if not field.flags:
            continue
        used.update(field.flags)
        kw = {"dest": field.name, "help": field.help}
        if field.kind == "bool" and field.default is False:
            kw["action"] = "store_true"
        else:
            kw["metavar"] = field.name.upper()
            if field.choices:
                kw["help"] = "%s (%s)" % (field.help, "|".join(map(str, field.choices)))
        parser.add_argument(*field.flags, **kw)
    if "-v" not in used:
        parser.add_argument("-v", "--verbose", choices=VERBOSE_CHOICES, help="client verbosity")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml",
                        help="output format (default: CAST's YAML)")
    return parser


def run(command, argv, out=sys.stdout):
    """Parse, call, print; returns the exit status."""
    parser = build_parser(command)
    try:
        args = vars(parser.parse_args(argv))
    except _UsageError as exc:
        out.write("%s FAILED: errcode: %d errmsg: %s\n" % (command.cli_name, ErrorCode.CSMERR_INVALID_PARAM, exc))
        parser.print_usage(out)
        return ErrorCode.CSMERR_INVALID_PARAM
    if args.pop("help"):
        parser.print_help(out)
        return ErrorCode.CSMI_HELP
    fmt = args.pop("format")
    args.pop("verbose", None)
    body = {name: value for name, value in args.items() if value not in (None, False)}
    try:
        body = command.validate(body)
        with Client() as client:
            result = client.call(command.name, body)
    except CSMError as exc:
        _failed(command, exc, fmt, out)
        return int(exc.errcode)
    if fmt == "json":
        out.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        out.write(render(command, result, body))
    if command.results_key and isinstance(result, dict) and not result.get(command.results_key):
        return ErrorCode.CSMI_NO_RESULTS
    return 0


def _failed(command, error, fmt, out):
    if fmt == "json":
        out.write(json.dumps(error.to_json(), indent=2) + "\n")
        return
    out.write("%s FAILED: errcode: %d errmsg: %s\n" % (command.cli_name, int(error.errcode), error.errmsg))
    for node_error in error.node_errors:
        out.write("  %s: errcode: %d errmsg: %s\n" % (node_error.source, node_error.errcode, node_error.errmsg))


def main(argv=None):
    argv = sys.argv if argv is None else argv
    for stream in (sys.stdout, sys.stderr):  # an argument that is not UTF-8 is echoed, not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    name = os.path.basename(argv[0])
    command = REGISTRY.by_cli.get(name)
    if command is None:
        sys.stderr.write("%s: not a CSM command (known: %s)\n" % (name, ", ".join(sorted(REGISTRY.by_cli))))
        return ErrorCode.CSMERR_CMD_UNKNOWN
    try:
        return run(command, argv[1:])
    except KeyboardInterrupt:
        return ErrorCode.CSMERR_GENERIC


if __name__ == "__main__":
    sys.exit(main())
