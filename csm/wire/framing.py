"""Frame decoding: a stream of bytes in, validated ``Message``s out."""

from csm.wire import checksum
from csm.wire.header import (ALL_FLAGS, DEFAULT_MAX_PAYLOAD, HEADER, HEADER_SIZE, MAX_U32,
                             PROTOCOL_VERSION, VALID_COMMANDS, command_is_valid)
from csm.wire.message import Message


class FrameError(Exception):
    """The byte stream is not valid CSM frames; the connection must be closed."""


class FrameDecoder:
    """Incremental decoder: ``feed(data)`` returns the complete messages so far.

    Any invalid header, bad checksum or oversized frame raises ``FrameError``
    naming the reason; the decoder is then unusable (the link is reset, as CAST's
    reimplementation notes advise).
    """

    __slots__ = ("max_payload", "_buffer", "_failed")

    def __init__(self, max_payload=DEFAULT_MAX_PAYLOAD):
        self.max_payload = max_payload
        self._buffer = bytearray()
        self._failed = False

    def feed(self, data):
        if self._failed:
            raise FrameError("decoder already failed")
        buffer = self._buffer
        if buffer:
            buffer += data
        else:
            buffer = data  # whole frames, as most reads bring: sliced from the read itself
        messages = []
        offset = 0
        size = len(buffer)
        max_payload = self.max_payload
        unpack_from, xor_words, fields_sum = HEADER.unpack_from, checksum.xor_words, checksum.fields_sum
        try:
            while size - offset >= HEADER_SIZE:
                fields = unpack_from(buffer, offset)
                version, command, flags, priority, reserved, mid, length, csum, uid, gid = fields
                if (version != PROTOCOL_VERSION or length > max_payload or flags & ~ALL_FLAGS or priority >= 3
                        or not csum or uid == MAX_U32 or gid == MAX_U32 or command not in VALID_COMMANDS):
                    self._reject(fields)
                end = offset + HEADER_SIZE + length
                if end > size:
                    break
                payload = bytes(buffer[offset + HEADER_SIZE:end])  # (from a read: one copy, not two)
                payload_sum = xor_words(payload)
                expected = checksum.finish(
                    fields_sum(version, command, flags, priority, reserved, mid, length, uid, gid) ^ payload_sum)
                if expected != csum:
                    raise FrameError("bad checksum 0x%08x (expected 0x%08x)" % (csum, expected))
                messages.append(Message(command, flags, mid, payload, priority, reserved, uid, gid, payload_sum))
                offset = end
        except FrameError:
            self._failed = True
            del self._buffer[:]
            raise
        if buffer is data:
            self._buffer += data[offset:]  # a frame's beginning, kept for the next read
        else:
            del buffer[:offset]
        return messages

    @property
    def buffered(self):
        return len(self._buffer)

    def _reject(self, fields):
        """Raise the ``FrameError`` naming what is wrong with a header that failed the checks."""
        version, command, flags, priority, _res, _mid, length, csum, uid, gid = fields
        if version != PROTOCOL_VERSION:
            raise FrameError("unknown protocol version %d" % version)
        if length > self.max_payload:
            raise FrameError("frame of %d bytes is over the limit of %d" % (length, self.max_payload))
        if not command_is_valid(command):
            raise FrameError("unknown command id %d" % command)
        if flags & ~ALL_FLAGS:
            raise FrameError("unknown flag bits 0x%x" % flags)
        if priority >= 3:
            raise FrameError("invalid priority %d" % priority)
        if csum == 0:
            raise FrameError("zero checksum")
        raise FrameError("invalid uid/gid")
