"""The 32-byte frame header: CAST's layout, flags and command ids.

Layout (little-endian, ``<BBBBIQIIII``): protocol version, command, flags, priority,
reserved (trace id / heartbeat interval), message id, payload length, checksum,
uid, gid. The payload length is the frame's length prefix.
"""

import struct

HEADER = struct.Struct("<BBBBIQIIII")
HEADER_SIZE = HEADER.size  # 32

#: The header layout version this implementation speaks (CAST's is 3; the payload is JSON).
PROTOCOL_VERSION = 3

#: The largest payload CAST accepts: 16 MiB less the header and the credentials block.
DEFAULT_MAX_PAYLOAD = 16 * 1024 * 1024 - HEADER_SIZE - 40

MAX_U32 = 0xFFFFFFFF


class Flags:
    """Header flag bits. 0x01-0x40 are CAST's; NOREPLY is this implementation's.

    Plain ints, not an ``enum.IntFlag``: every frame tests several of them, and an
    enum makes each ``&`` a Python-level call and a new enum member.
    """

    NONE = 0
    ACK = 0x01
    RESP = 0x02  # a response to the request with the same message id
    ERR = 0x04  # the payload is an error body {errcode, errmsg, node_errors}
    CBK = 0x08  # callback path (heartbeats)
    INT = 0x10  # daemon-internal message
    MTC = 0x20  # multicast
    PCK = 0x40  # private API: the handler must check ownership
    NOREPLY = 0x80  # fire and forget: the receiver sends no response


ALL_FLAGS = 0xFF


class Priority:
    """Header priorities (plain ints, as ``Flags``: no enum on any path)."""

    NO_ACK = 0
    WITH_ACK = 1
    RETAIN = 2


class InternalCommand:
    """CAST's daemon-internal command ids (200-212), plain ints."""

    CTRL_RECONFIG = 200
    CTRL_CMD = 201
    INFRASTRUCTURE_TEST = 202
    TEST_MTC = 203
    ERROR_INJECT = 204
    ENVIRONMENTAL_DATA_OBSOLETE = 205
    ECHO = 206
    HEARTBEAT = 207
    STATUS = 208
    CONNECTION_CTRL = 209
    NODESET_UPDATE = 210
    ERROR = 211
    ENVIRONMENTAL_DATA = 212


#: Regular API ids are below this; 200-212 are internal.
MAX_REGULAR_COMMAND = 65
#: Ids this implementation adds (APIs beyond CAST), in CAST's reserved gap.
EXTENSION_COMMANDS = range(100, 120)


#: CAST's rule (regular ids 0-64, internal 200-212) plus this implementation's 100-119.
VALID_COMMANDS = frozenset(range(MAX_REGULAR_COMMAND)) | frozenset(range(200, 213)) | frozenset(EXTENSION_COMMANDS)


def command_is_valid(command):
    """Whether ``command`` is a known id (``VALID_COMMANDS``)."""
    return command in VALID_COMMANDS
