"""The csm_* commands, made from the command registry.

Each console script calls ``main()``; the command is the program's name.
Exit status is the CSM error code (0 success, 4 no results, 16 permission...),
and a failure prints ``<cmd> FAILED: errcode: N errmsg: ...`` as CAST's tools do.
"""

import posix  # not os: see csm.client.getenv
import sys

from csm.api import cli_index
from csm.api.registry import Registry
from csm.cli import formats
from csm.cli.flags import UsageError, quick_args
from csm.client import Client
from csm.errors import CSMError, ErrorCode


def build_parser(command):
    """argparse's parser of ``command``: help, usage, and the lines ``quick_args`` leaves to it."""
    from csm.cli.parser import build_parser
    return build_parser(command)


def parse(command, argv):
    """The options of ``argv`` as a dict, and the argparse parser when one was needed;
    ``UsageError`` (with the parser) for a bad line."""
    args = quick_args(command, argv)
    if args is not None:
        return args, None
    parser = build_parser(command)
    try:
        return vars(parser.parse_intermixed_args(argv)), parser
    except UsageError as exc:
        exc.parser = parser
        raise


def run(command, argv, out=sys.stdout):
    """Parse, call, print; returns the exit status."""
    try:
        args, parser = parse(command, argv)
    except UsageError as exc:
        out.write("%s FAILED: errcode: %d errmsg: %s\n" % (command.cli_name, ErrorCode.CSMERR_INVALID_PARAM, exc))
        exc.parser.print_usage(out)
        return ErrorCode.CSMERR_INVALID_PARAM
    if args.pop("help"):
        parser.print_help(out)
        return ErrorCode.CSMI_HELP
    args.pop("operands")
    fmt = args.pop("format")
    args.pop("verbose", None)
    body = {name: value for name, value in args.items() if value not in (None, False)}
    if command.cli_one_of and not any(name in body for name in command.cli_one_of):
        out.write("%s FAILED: errcode: %d errmsg: needs at least one of %s\n" % (
            command.cli_name, ErrorCode.CSMERR_MISSING_PARAM,
            ", ".join(command.field(name).flags[-1] for name in command.cli_one_of)))
        (parser or build_parser(command)).print_usage(out)
        return ErrorCode.CSMERR_MISSING_PARAM
    try:
        body = command.validate(expand_ranges(command, body))
    except CSMError as exc:
        if exc.errcode == ErrorCode.CSMERR_MISSING_PARAM and command.cli_missing is not None:
            exc = CSMError(command.cli_missing, exc.errmsg)  # what CAST's tool exits with for this
        _failed(command, exc, fmt, out, body)
        return int(exc.errcode)
    client = Client(registry=Registry((command,)))
    try:
        result = client.call(command.name, body)  # connects: the hello and the request in one go
    except CSMError as exc:
        _failed(command, exc, fmt, out, body)
        return int(exc.errcode)
    finally:
        client.close()
    if command.cli_one_record and command.cli_one_record[0] in body and isinstance(result, dict) \
            and len(result.get(command.results_key) or ()) > 1:
        if fmt != "json":
            out.write(formats.more_than_one(command, result))
        return ErrorCode.CSMERR_GENERIC
    if fmt == "json":
        import json  # here: the json package costs a command ~3 ms to import
        out.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        out.write(formats.render(command, result, body))
    if command.results_key and isinstance(result, dict) and not result.get(command.results_key):
        return ErrorCode.CSMI_NO_RESULTS
    if isinstance(result, dict) and result.get("none_in_soft_failure"):
        return ErrorCode.CSMI_NO_RESULTS  # CAST: no node to recover
    return 0


#: List fields that hold node names: host ranges (``c[01-04],u01``) expand in them.
NODE_LISTS = ("node_names", "compute_nodes")


def expand_ranges(command, body):
    """Host ranges in node lists, expanded by ClusterShell (imported only when a value has one)."""
    for name in NODE_LISTS:
        value = body.get(name)
        if isinstance(value, str) and "[" in value:
            from ClusterShell.NodeSet import NodeSet, NodeSetParseError
            try:
                body[name] = list(NodeSet(value))
            except NodeSetParseError as exc:
                raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid node range %r: %s" % (value, exc)) from None
    return body


def _failed(command, error, fmt, out, body):
    if fmt == "json":
        import json
        out.write(json.dumps(error.to_json(), indent=2) + "\n")
        return
    if error.errcode == ErrorCode.CSMI_NO_RESULTS:
        out.write(formats.no_results(command))
        return
    if error.errcode == ErrorCode.CSMERR_UPDATE_MISMATCH and command.cli_partial:
        out.write(formats.update_mismatch(command, error, body))
        return
    out.write(formats.failure_line(command, error) + "\n")
    out.write(formats.node_errors(error.node_errors))


def main(argv=None):
    """The program: ``argv`` (default ``sys.argv``) names the command; returns the exit status.

    Called without ``argv`` (a program starting), the process ends here once its output
    is flushed: the interpreter's teardown, freeing every module, would add ~3 ms to
    each command and has nothing to close."""
    if argv is not None:
        return _main(argv)
    status = int(_main(sys.argv))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away: the status still stands
            pass
    posix._exit(status)


def _main(argv):
    for stream in (sys.stdout, sys.stderr):  # an argument that is not UTF-8 is echoed, not a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    name = argv[0].rpartition("/")[2]
    command = cli_index.find(name)
    if command is None:
        from csm.api.commands import REGISTRY
        sys.stderr.write("%s: not a CSM command (known: %s)\n" % (name, ", ".join(sorted(REGISTRY.by_cli))))
        return ErrorCode.CSMERR_CMD_UNKNOWN
    try:
        return run(command, argv[1:])
    except KeyboardInterrupt:
        return ErrorCode.CSMERR_GENERIC


def __getattr__(name):
    """``REGISTRY`` (every API), built only when asked for: a command finds its own alone."""
    if name == "REGISTRY":
        from csm.api.commands import REGISTRY
        return REGISTRY
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


if __name__ == "__main__":
    sys.exit(main())
