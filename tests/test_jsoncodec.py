"""The wire's JSON codec gives what the json package gives, and its errors where it fails."""

import json

from hypothesis import given, strategies
from twisted.trial.unittest import SynchronousTestCase

from csm.wire import jsoncodec

SCALARS = strategies.one_of(strategies.none(), strategies.booleans(), strategies.integers(),
                            strategies.floats(allow_nan=False), strategies.text())
VALUES = strategies.recursive(SCALARS, lambda inner: strategies.one_of(
    strategies.lists(inner, max_size=5), strategies.dictionaries(strategies.text(max_size=8), inner, max_size=5)),
    max_leaves=20)
REFERENCE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def outcome(function, *args):
    try:
        return "ok", function(*args)
    except Exception as exc:  # the same kind of error, with the same words
        return type(exc).__name__, str(exc)


class CodecTests(SynchronousTestCase):
    @given(VALUES)
    def test_dumps_as_json(self, value):
        self.assertEqual(jsoncodec.dumps(value), REFERENCE.encode(value))

    @given(VALUES)
    def test_round_trip(self, value):
        self.assertEqual(jsoncodec.loads(jsoncodec.dumps(value).encode("utf-8")), value)

    @given(strategies.one_of(strategies.binary(max_size=40), strategies.text(max_size=40),
                             VALUES.map(lambda value: " %s\n" % json.dumps(value, indent=1))))
    def test_loads_as_json(self, data):
        # by repr: a text such as "NaN" gives nan, which equals nothing, not even itself
        self.assertEqual(repr(outcome(jsoncodec.loads, data)), repr(outcome(json.loads, data)))

    def test_odd_inputs_as_json(self):
        for data in (b"", b"  ", b'{"a":1} x', b"\xef\xbb\xbf{}", "\ufeff[]", b"\xff", b"NaN", b"[1,]", "1e400",
                     b'"\\ud800"', b"[" * 3 + b"]" * 3):
            self.assertEqual(repr(outcome(jsoncodec.loads, data)), repr(outcome(json.loads, data)), data)

    def test_dumps_refuses_as_json(self):
        for value in ({(1, 2): 3}, {"a": object()}, {1.5: [set()]}):
            self.assertEqual(outcome(jsoncodec.dumps, value), outcome(REFERENCE.encode, value))
        self.assertEqual(jsoncodec.dumps({"a": 1}), '{"a":1}')  # a failed call leaves nothing behind

    @given(strategies.text())
    def test_quote_as_json(self, text):
        self.assertEqual(jsoncodec.quote(text), json.dumps(text))
