"""The wire: ``Message``, frame encode/decode, checksum, size limit."""

from csm.wire.framing import FrameDecoder, FrameError
from csm.wire.header import (DEFAULT_MAX_PAYLOAD, HEADER_SIZE, PROTOCOL_VERSION, Flags,
                             InternalCommand, Priority)
from csm.wire.message import Message

__all__ = ["Message", "FrameDecoder", "FrameError", "Flags", "Priority", "InternalCommand",
           "PROTOCOL_VERSION", "HEADER_SIZE", "DEFAULT_MAX_PAYLOAD"]
