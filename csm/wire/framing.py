"""Frame decoding: a stream of bytes in, validated ``Message``s out."""

from csm.wire import checksum
from csm.wire.header import (ALL_FLAGS, DEFAULT_MAX_PAYLOAD, HEADER, HEADER_SIZE, MAX_U32,
                             PROTOCOL_VERSION, command_is_valid)
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
        buffer += data
        messages = []
        offset = 0
        size = len(buffer)
        try:
            while size - offset >= HEADER_SIZE:
                fields = HEADER.unpack_from(buffer, offset)
                length = fields[6]
                self._check_header(fields)
                end = offset + HEADER_SIZE + length
                if end > size:
                    break
                payload = bytes(buffer[offset + HEADER_SIZE:end])
                messages.append(self._build(fields, checksum.header_words(buffer, offset), payload))
                offset = end
        except FrameError:
            self._failed = True
            del buffer[:]
            raise
        del buffer[:offset]
        return messages

    @property
    def buffered(self):
        return len(self._buffer)

    def _check_header(self, fields):
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
        if uid == MAX_U32 or gid == MAX_U32:
            raise FrameError("invalid uid/gid")

    @staticmethod
    def _build(fields, header_sum, payload):
        version, command, flags, priority, reserved, mid, _length, csum, uid, gid = fields
        payload_sum = checksum.xor_words(payload)
        expected = checksum.finish(header_sum ^ payload_sum)
        if expected != csum:
            raise FrameError("bad checksum 0x%08x (expected 0x%08x)" % (csum, expected))
        return Message(command=command, flags=flags, message_id=mid, payload=payload,
                       priority=priority, reserved=reserved, uid=uid, gid=gid,
                       payload_sum=payload_sum)
