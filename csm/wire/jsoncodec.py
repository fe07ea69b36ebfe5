"""JSON on the wire through CPython's C codec (``_json``) without importing the json package.

The json package imports ``re`` and compiles its patterns when it is imported: ~3 ms of
each csm_* command's start. ``dumps`` and ``loads`` call the same C encoder and scanner
that ``json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)`` and ``json.loads``
use, with the same settings, so what they give is the same; whatever the fast path does
not take (a failure, a byte order mark, bytes that are not UTF-8, an interpreter without
``_json``) goes to the json package, which then gives its own result or error.
"""

try:
    import _json
    _make_encoder, _make_scanner = _json.make_encoder, _json.make_scanner
except (ImportError, AttributeError):  # another interpreter: the json package does it all
    _make_encoder = _make_scanner = None

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Settings:
    """What the C scanner reads from a ``json.JSONDecoder()``: its defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


_scan = _make_scanner(_Settings()) if _make_scanner is not None else None


def _not_serializable(value):
    raise TypeError("Object of type %s is not JSON serializable" % value.__class__.__name__)


def dumps(value):
    """Compact JSON text (``separators=(",", ":")``, ``ensure_ascii=False``), as a str."""
    if _make_encoder is None:
        import json
        return json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode(value)
    if isinstance(value, str):
        return _json.encode_basestring(value)
    # a new encoder each time, as json makes one: its circular-reference marks start empty
    encode = _make_encoder({}, _not_serializable, _json.encode_basestring, None, ":", ",", False, False, True)
    return "".join(encode(value, 0))


def loads(data):
    """The value of JSON text (str, or bytes in UTF-8), as ``json.loads`` gives it."""
    if _scan is not None:
        try:
            text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
            if isinstance(text, str) and not text.startswith("\ufeff"):
                start = len(text) - len(text.lstrip(_WHITESPACE))
                value, end = _scan(text, start)
                if len(text) - len(text.rstrip(_WHITESPACE)) == len(text) - end:
                    return value
        except (StopIteration, ValueError, TypeError):
            pass  # the json package says what is wrong, in its words
    import json
    return json.loads(data)


def quote(text):
    """A string as ``json.dumps(text)`` writes it (ASCII, escaped)."""
    if _make_encoder is None:
        import json
        return json.dumps(text)
    return _json.encode_basestring_ascii(text)
