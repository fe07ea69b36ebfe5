"""CAST's YAML-like output: ``---``, keys and values, ``...``."""

from csm.wire.jsoncodec import quote

KEY_WIDTH = 24


def scalar(value):
    """A value as CAST prints it (quoted only where YAML would misread it)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text == "" or text != text.strip() or text.startswith(("#", '"', "'")) or "\n" in text:
        return quote(text)
    return text


def dump(value, indent=0):
    """Lines of a nested structure in YAML style."""
    pad = "  " * indent
    lines = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append("%s%s:" % (pad, key))
                lines.extend(dump(item, indent + 1))
            else:
                label = "%s:" % key
                text = scalar(None if isinstance(item, (dict, list)) else item)
                width = max(KEY_WIDTH - len(pad), len(label) + 1)
                lines.append(("%s%s %s" % (pad, label.ljust(width), text)).rstrip())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                sub = dump(item, indent + 1)
                if sub:
                    first = sub[0].lstrip()
                    lines.append("%s- %s" % (pad, first))
                    lines.extend(sub[1:])
            else:
                lines.append("%s- %s" % (pad, scalar(item)))
    else:
        lines.append(pad + scalar(value))
    return lines


def document(value):
    """A whole YAML document: ``---``, the body, ``...``."""
    return "\n".join(["---"] + dump(value) + ["..."]) + "\n"

