"""CAST's record layout: fields in a fixed order, each block's values in one column.

A layout is a tuple of items read from the registry (``Command.layout``):

* ``"key"`` prints ``key: value``; ``"label=key"`` prints the value of ``key``
  under another label; ``"label=#key"`` prints how many items ``key`` holds;
* a suffix picks the style: ``:q`` quoted, ``:yn`` / ``:tf`` a boolean as
  one letter, ``:f`` a float with six decimals, ``:n`` a number (NULL prints
  0, as CAST's structures held it; other NULLs print empty);
* ``(item, sub_layout)`` prints a nested block: a list of records as ``- ``
  items, one record as an indented block (none when it is null); ``(item, "-")``
  a list of values, ``(item, "-label")`` each value as ``- label: value`` (a style may follow).

Values start one space after the block's longest label, as CAST's printf
columns do, or at the column a leading number gives.
"""


def _parse(item):
    label, _, key = item.partition("=")
    key = key or label
    key, _, style = key.partition(":")
    label = label.partition(":")[0]
    return label, key, style


def value_text(value, style=""):
    """One value as CAST prints it."""
    if style in ("yn", "tf"):
        yes, no = style
        return yes if value else no
    if style == "f":
        return "%f" % float(value or 0)
    if style == "n" and value is None:
        return "0"  # CAST read a NULL number as 0
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "1" if value else "0"
    else:
        text = str(value)
    return '"%s"' % text if style == "q" else text


def _count(record, key):
    items = record.get(key)
    return len(items) if isinstance(items, (list, tuple)) else 0


def block(record, layout, indent="  ", lines=None, first=None, width=None):
    """Lines of ``record`` under ``layout``; ``first`` replaces the first line's indent (``"  - "``);
    ``width`` fixes the value column (default: one space after the longest label)."""
    lines = [] if lines is None else lines
    if layout and isinstance(layout[0], int):  # a fixed column where CAST's printf has one
        width, layout = layout[0], layout[1:]
    labels = [_parse(item if isinstance(item, str) else item[0])[0] for item in layout]
    if width is None:
        width = max(len(label) for label in labels) + 2 if labels else 0
    for number, item in enumerate(layout):
        pad = first if (first is not None and number == 0) else indent
        if isinstance(item, str):
            label, key, style = _parse(item)
            if key.startswith("#"):
                text = str(_count(record, key[1:]))
            else:
                text = value_text(record.get(key), style)
            lines.append(pad + (label + ":").ljust(width) + text)
            continue
        label, key, _ = _parse(item[0])
        sub, value = item[1], record.get(key)
        if value is None and not isinstance(sub, str):
            continue  # a block CAST prints only when there is one (a step's history)
        lines.append(pad + label + ":")
        inner = indent + "  "
        if isinstance(sub, str):  # "-" values, "-label" values each under a label
            name, _, style = sub[1:].partition(":")
            name = name + ": " if name else ""
            lines.extend("%s- %s%s" % (inner, name, value_text(v, style)) for v in value or ())
        elif isinstance(value, dict):
            block(value, sub, inner, lines)
        else:
            for entry in value or ():
                block(entry, sub, inner + "  ", lines, first=inner + "- ")
    return lines


def numbered(items, lines_of, label="Record"):
    """CAST's record listing: ``---``, ``Total_Records: N`` (or that none matched), each record as
    ``<label>_<n>:`` followed by ``lines_of(record)``, ``...``. Every listing of records prints through it."""
    lines = ["---", "Total_Records: %d" % len(items)]
    if not items:
        lines.append("# No matching records found.")
    for number, item in enumerate(items, 1):
        lines.append("%s_%d:" % (label, number))
        lines.extend(lines_of(item))
    lines.append("...")
    return "\n".join(lines) + "\n"


def records(items, layout=(), label="Record"):
    """The records with their fields in ``layout``'s order; with no layout, every key sorted and
    nested values in YAML style (``csm.cli.output.dump``)."""
    if layout:
        return numbered(items, lambda item: block(item, layout, "  "), label)
    from csm.cli.output import dump
    return numbered(items, lambda item: dump({key: item[key] for key in sorted(item)}, 1), label)
