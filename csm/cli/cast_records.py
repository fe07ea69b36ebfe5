"""The fields of CAST's RECORD_N listings of the diagnostics and inventory commands (listed by
``csm.cli.layout.numbered``)."""

from csm.cli import output
from csm.cli.layout import numbered

NO_RESULTS = "---\nTotal_Records: 0\n# No matching records found.\n...\n"
#: booleans CAST printed as t/f
FLAGS = ("inserted_ras", "has_ufm_agent")


def value(record, key):
    item = record.get(key)
    if key in FLAGS:
        return "t" if item else "f"
    return "" if item == "" else output.scalar(item)


def line(record, key, width, pad="  ", label=None, trail=""):
    """``  key:<spaces> value`` with the value at column ``len(pad) + width + 1``."""
    return "%s%s %s%s" % (pad, ((label or key) + ":").ljust(width), value(record, key), trail)


def missing(record, width, pad="  "):
    """Beyond CAST: a record UFM no longer reports says since when."""
    return [line(record, "missing_since", width, pad)] if record.get("missing_since") else []


def updated(verb, *keys):
    """A formatter: CAST's ``All N record(s) successfully <verb>``, N the names in the first of ``keys`` given."""
    def text(result, args):
        names = next((args[key] for key in keys if args.get(key)), ())
        return "---\n# All %d record(s) successfully %s.\n...\n" % (len(names), verb)
    return text


def listing(keys, width, results_key="results", first_width=None, prepare=None):
    """A formatter: every record of ``result[results_key]`` as ``RECORD_N`` with ``keys`` in order."""
    def fields(record):
        record = prepare(record) if prepare else record
        return [line(record, key, first_width if index == 0 and first_width else width)
                for index, key in enumerate(keys)] + missing(record, width)
    return lambda result, args: numbered(result.get(results_key) or [], fields, "RECORD")
