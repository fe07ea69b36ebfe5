"""``Message``: the one type that travels every link."""

from csm.errors import CSMError
from csm.wire import checksum, jsoncodec
from csm.wire.header import HEADER, PROTOCOL_VERSION, Flags, Priority


def encode_body(body):
    """JSON-encode a body; ``None`` is an empty payload."""
    if body is None:
        return b""
    return jsoncodec.dumps(body).encode("utf-8")


class Message:
    """A header and its JSON payload.

    The payload is kept as bytes: a daemon that only forwards a message never
    decodes it, and only the header part of the checksum is recomputed when the
    header changes (``payload_sum`` caches the payload's share).
    """

    __slots__ = ("command", "flags", "message_id", "payload", "priority", "reserved", "uid", "gid", "payload_sum")

    def __init__(self, command, flags=Flags.NONE, message_id=0, payload=b"", priority=Priority.WITH_ACK,
                 reserved=0, uid=0, gid=0, payload_sum=None):
        self.command = command
        self.flags = flags
        self.message_id = message_id
        self.payload = payload
        self.priority = priority
        self.reserved = reserved
        self.uid = uid
        self.gid = gid
        self.payload_sum = payload_sum

    def _key(self):
        return (self.command, self.flags, self.message_id, self.payload, self.priority, self.reserved,
                self.uid, self.gid)

    def __eq__(self, other):
        if type(other) is not Message:
            return NotImplemented
        return self._key() == other._key()

    __hash__ = None  # mutable (``payload_sum`` is filled in late), as before

    def __repr__(self):
        return ("Message(command=%r, flags=%r, message_id=%r, payload=%r, priority=%r, reserved=%r, uid=%r, gid=%r)"
                % self._key())

    @classmethod
    def make(cls, command, body=None, flags=Flags.NONE, **kw):
        """Build a message from a JSON-able body."""
        return cls(command=int(command), flags=int(flags), payload=encode_body(body), **kw)

    def body(self):
        """The decoded JSON payload (``None`` for an empty one).

        Raises ``ValueError`` for a payload that is not JSON.
        """
        if not self.payload:
            return None
        return jsoncodec.loads(self.payload)

    def has(self, flag):
        return bool(self.flags & flag)

    @property
    def is_response(self):
        return bool(self.flags & Flags.RESP)

    @property
    def is_error(self):
        return bool(self.flags & Flags.ERR)

    def error(self):
        """The ``CSMError`` an error reply carries."""
        try:
            return CSMError.from_json(self.body())
        except ValueError:
            return CSMError.from_json(None)

    def evolve(self, **changes):
        """A copy with some header fields changed; the payload's checksum share is kept.

        Written out: every forwarded message is copied."""
        get = changes.get
        payload = get("payload", self.payload)
        return Message(get("command", self.command), get("flags", self.flags), get("message_id", self.message_id),
                       payload, get("priority", self.priority), get("reserved", self.reserved),
                       get("uid", self.uid), get("gid", self.gid),
                       self.payload_sum if payload is self.payload else None)

    def reply(self, body=None, flags=Flags.NONE):
        """A response to this request, same id and command."""
        return Message(command=self.command, flags=int(Flags.RESP | flags), message_id=self.message_id,
                       payload=encode_body(body), priority=Priority.NO_ACK,
                       reserved=self.reserved, uid=self.uid, gid=self.gid)

    def error_reply(self, error):
        """A response carrying ``error`` (a ``CSMError``)."""
        return self.reply(error.to_json(), flags=Flags.ERR)

    def header_fields(self, version=PROTOCOL_VERSION):
        return (version, self.command, self.flags, self.priority, self.reserved,
                self.message_id, len(self.payload), 0, self.uid, self.gid)

    def encode(self, version=PROTOCOL_VERSION, message_id=None):
        """The frame: header then payload; ``message_id`` replaces the message's own in the
        header (a request sent on a link under the link's id, without a copy)."""
        mid = self.message_id if message_id is None else message_id
        payload = self.payload
        if self.payload_sum is None:
            self.payload_sum = checksum.xor_words(payload)
        command, flags, priority, reserved, uid, gid = (self.command, self.flags, self.priority, self.reserved,
                                                       self.uid, self.gid)
        length = len(payload)
        total = checksum.fields_sum(version, command, flags, priority, reserved, mid, length, uid, gid)
        return HEADER.pack(version, command, flags, priority, reserved, mid, length,
                           checksum.finish(total ^ self.payload_sum), uid, gid) + payload
