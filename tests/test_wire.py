"""Frames, header, checksum and size limit."""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from csm.errors import CSMError, ErrorCode
from csm.wire import Flags, FrameDecoder, FrameError, Message
from csm.wire import checksum
from csm.wire.header import HEADER, HEADER_SIZE, PROTOCOL_VERSION

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**53, 2**53) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12)

messages = st.builds(
    Message.make,
    command=st.sampled_from([0, 18, 42, 64, 200, 202, 207, 212]),
    body=json_values,
    flags=st.integers(0, 0xFF),
    message_id=st.integers(0, 2**64 - 1),
    priority=st.integers(0, 2),
    reserved=st.integers(0, 2**32 - 1),
    uid=st.integers(0, 2**32 - 2),
    gid=st.integers(0, 2**32 - 2),
)


def slow_checksum(header_words_bytes, payload):
    """The checksum as CAST states it: word by word."""
    value = 0
    for (word,) in struct.iter_unpack("<I", header_words_bytes):
        value ^= word
    whole = len(payload) - len(payload) % 4
    for (word,) in struct.iter_unpack("<I", payload[:whole]):
        value ^= word
    tail = 0
    for byte in payload[whole:]:
        tail = (tail << 8) + byte
    value ^= tail
    return value or checksum.ZERO_SUBSTITUTE


class ChecksumTests(SynchronousTestCase):
    @given(st.binary(max_size=300), messages)
    def test_fold_matches_word_by_word(self, payload, fields):
        """Every header field counts (the encoder sums the fields without packing them)."""
        message = fields.evolve(payload=payload)
        frame = message.encode()
        header = frame[:20] + frame[24:HEADER_SIZE]
        self.assertEqual(HEADER.unpack_from(frame)[7], slow_checksum(header, payload))
        self.assertEqual(frame, message.evolve(message_id=7).encode(message_id=message.message_id))

    def test_zero_is_substituted(self):
        self.assertEqual(checksum.finish(0), checksum.ZERO_SUBSTITUTE)
        self.assertEqual(checksum.finish(5), 5)

    def test_header_change_recomputes(self):
        message = Message.make(42, {"node_names": ["c01"]}, message_id=1)
        other = message.evolve(message_id=2)
        decoded = FrameDecoder().feed(other.encode())[0]
        self.assertEqual(decoded.message_id, 2)
        self.assertEqual(decoded.body(), {"node_names": ["c01"]})


class FramingTests(SynchronousTestCase):
    @settings(max_examples=200)
    @given(messages)
    def test_round_trip(self, message):
        decoded = FrameDecoder().feed(message.encode())
        self.assertEqual(len(decoded), 1)
        self.assertEqual(decoded[0], message)
        self.assertEqual(decoded[0].body(), message.body())

    @given(st.lists(messages, min_size=1, max_size=5), st.integers(1, 50))
    def test_any_split(self, items, chunk):
        stream = b"".join(m.encode() for m in items)
        decoder = FrameDecoder()
        out = []
        for i in range(0, len(stream), chunk):
            out.extend(decoder.feed(stream[i:i + chunk]))
        self.assertEqual(out, items)
        self.assertEqual(decoder.buffered, 0)

    @settings(max_examples=300)
    @given(st.binary(min_size=HEADER_SIZE, max_size=200))
    def test_random_bytes_never_crash(self, data):
        """Random bytes either fail with FrameError or wait for more; nothing else."""
        decoder = FrameDecoder(max_payload=1 << 20)
        try:
            for message in decoder.feed(data):
                self.assertIsInstance(message, Message)
        except FrameError as exc:
            self.assertTrue(str(exc))

    def _frame(self, **override):
        fields = dict(zip(("version", "command", "flags", "priority", "reserved", "mid", "length",
                           "csum", "uid", "gid"), Message.make(18, {"a": 1}).header_fields()))
        payload = b'{"a":1}'
        fields.update(override)
        return HEADER.pack(*fields.values()) + payload, fields

    def assertRejected(self, data, reason, max_payload=1 << 20):
        decoder = FrameDecoder(max_payload=max_payload)
        exc = self.assertRaises(FrameError, decoder.feed, data)
        self.assertIn(reason, str(exc))
        self.assertRaises(FrameError, decoder.feed, b"")

    def test_bad_checksum(self):
        frame = bytearray(Message.make(18, {"a": 1}).encode())
        frame[-2] ^= 0x01
        self.assertRejected(bytes(frame), "bad checksum")

    def test_zero_checksum(self):
        data, _ = self._frame(csum=0)
        self.assertRejected(data, "zero checksum")

    def test_unknown_version(self):
        data, _ = self._frame(version=PROTOCOL_VERSION + 1, csum=1)
        self.assertRejected(data, "unknown protocol version")

    def test_oversized_frame_rejected_from_header(self):
        """The limit is checked on the header: no need to receive 4 GiB first."""
        data, _ = self._frame(length=10_000_000, csum=1)
        self.assertRejected(data[:HEADER_SIZE], "over the limit", max_payload=1_000_000)

    def test_unknown_command(self):
        data, _ = self._frame(command=150, csum=1)
        self.assertRejected(data, "unknown command id 150")

    def test_bad_priority(self):
        data, _ = self._frame(priority=3, csum=1)
        self.assertRejected(data, "invalid priority")

    def test_invalid_uid(self):
        data, _ = self._frame(uid=0xFFFFFFFF, csum=1)
        self.assertRejected(data, "invalid uid")

    def test_partial_frame_waits(self):
        frame = Message.make(18, {"a": 1}).encode()
        decoder = FrameDecoder()
        self.assertEqual(decoder.feed(frame[:HEADER_SIZE + 2]), [])
        self.assertEqual(len(decoder.feed(frame[HEADER_SIZE + 2:])), 1)


class MessageTests(SynchronousTestCase):
    def test_error_reply_round_trip(self):
        request = Message.make(42, {"x": 1}, message_id=99)
        error = CSMError(ErrorCode.CSMERR_PERM, "no", [])
        reply = FrameDecoder().feed(request.error_reply(error).encode())[0]
        self.assertTrue(reply.is_error and reply.is_response)
        self.assertEqual(reply.message_id, 99)
        self.assertEqual(reply.error().errcode, ErrorCode.CSMERR_PERM)
        self.assertEqual(reply.error().errmsg, "no")

    def test_malformed_error_body(self):
        reply = Message(command=42, flags=Flags.RESP | Flags.ERR, payload=b"not json")
        self.assertEqual(reply.error().errcode, ErrorCode.CSMERR_MSG_UNPACK_ERROR)
