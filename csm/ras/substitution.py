"""``$(var)`` substitution in RAS messages, and CAST's ``kvcsv`` fields."""

import re

_VARIABLE = re.compile(r"\$\((\w+)\)")


def parse_kvcsv(text):
    """``"k1=v1,k2=v2"`` -> ``{"k1": "v1", "k2": "v2"}``; entries without ``=`` are skipped."""
    fields = {}
    for item in (text or "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            fields[key.strip()] = value.strip()
    return fields


def substitute(template, fields):
    """Replace each ``$(name)`` by ``fields[name]``; unknown names and ``$(message)`` stay as they are."""
    if not template:
        return template

    def replace(match):
        name = match.group(1)
        if name == "message" or name not in fields or fields[name] is None:
            return match.group(0)
        return str(fields[name])
    return _VARIABLE.sub(replace, template)
