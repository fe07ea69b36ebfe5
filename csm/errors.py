"""CSM error codes (CAST's numbers) and the exception that carries them."""


class ErrorCode:
    """CAST's ``csmi_cmd_err_t``: the number is the wire value and the CLI exit status.

    Plain ints, not an ``enum.IntEnum``: importing enum and building the class cost each
    csm_* command ~3 ms of its start, and nothing here uses a member's name.
    """

    CSMI_SUCCESS = 0
    CSMERR_GENERIC = 1
    CSMI_HELP = 2
    CSMI_NOT_INITIALIZED = 3
    CSMI_NO_RESULTS = 4
    CSMERR_TIMEOUT = 5
    CSMERR_MSGID_MISMATCH = 6
    CSMERR_CMD_MISMATCH = 7
    CSMERR_MISSING_PARAM = 8
    CSMERR_INVALID_PARAM = 9
    CSMERR_RAS_HANDLER_ERROR = 10
    CSMERR_CMD_UNKNOWN = 11
    CSMERR_SENDRCV_ERROR = 12
    CSMERR_MEM_ERROR = 13
    CSMERR_NOTDEF = 14
    CSMERR_PUBSUB = 15
    CSMERR_PERM = 16
    CSMERR_SCRIPT_FAILURE = 17
    CSMERR_INIT_LIB_FAILED = 18
    CSMERR_TERM_LIB_FAILED = 19
    CSMERR_PAYLOAD_EMPTY = 20
    CSMERR_BAD_EVENT_TYPE = 21
    CSMERR_BAD_ADDR_TYPE = 22
    CSMERR_CGROUP_DEL_ERROR = 23
    CSMERR_DAEMON_DB_ERR = 24
    CSMERR_DB_ERROR = 25
    CSMERR_DEL_MISMATCH = 26
    CSMERR_UPDATE_MISMATCH = 27
    CSMERR_MSG_PACK_ERROR = 28
    CSMERR_MSG_UNPACK_ERROR = 29
    CSMERR_MSG_BUFFER_EMPTY = 30
    CSMERR_MSG_RETURNBUFFER_EMPTY = 31
    CSMERR_MSG_RETURNBUFFER_UNKNOWN_CORRUPTED = 32
    CSMERR_MULTI_GEN_ERROR = 33
    CSMERR_MULTI_RESP_ERROR = 34
    CSMERR_EXEC_ILLEGAL = 35
    CSMERR_CGROUP_FAIL = 36
    CSMERR_CONTEXT_LOST = 37
    CSMERR_CGROUP_EINVAL = 38
    CSMERR_CGROUP_EACCES = 39
    CSMERR_BB_CMD_ERROR = 40
    CSM_STATE_JUMPED = 41
    CSM_SAME_STATE_TRANSITION = 42
    CSMERR_STATE_CHANGE_FAILED = 43
    CSMERR_DELETE_STATE_BAD = 44
    CSMERR_JSRUN_CMD_ERROR = 45
    CSMERR_ALLOC_INVALID_NODES = 46
    CSMERR_ALLOC_OCCUPIED_NODES = 47
    CSMERR_ALLOC_UNAVAIL_NODES = 48
    CSMERR_ALLOC_BAD_FLAGS = 49
    CSMERR_ALLOC_MISSING = 50
    CSMERR_EPILOG_EPILOG_COLLISION = 51
    CSMERR_EPILOG_PROLOG_COLLISION = 52
    CSMERR_PROLOG_EPILOG_COLLISION = 53
    CSMERR_PROLOG_PROLOG_COLLISION = 54
    CSMERR_SOFT_FAIL_RECOVERY_AGENT = 55


#: A short default text per code, used when a handler gives none.
DEFAULT_MESSAGES = {
    ErrorCode.CSMI_SUCCESS: "No error",
    ErrorCode.CSMERR_GENERIC: "An undefined error was detected",
    ErrorCode.CSMI_NO_RESULTS: "No results received",
    ErrorCode.CSMERR_TIMEOUT: "Timeout",
    ErrorCode.CSMERR_MISSING_PARAM: "A required parameter is missing",
    ErrorCode.CSMERR_INVALID_PARAM: "A parameter or value is invalid",
    ErrorCode.CSMERR_CMD_UNKNOWN: "The command is not known to the daemon",
    ErrorCode.CSMERR_SENDRCV_ERROR: "Send or receive error",
    ErrorCode.CSMERR_PERM: "CSMI permission denied",
    ErrorCode.CSMERR_INIT_LIB_FAILED: "Can not connect to daemon",
    ErrorCode.CSMERR_DAEMON_DB_ERR: "Database error; can't connect",
    ErrorCode.CSMERR_DB_ERROR: "Database error; table in bad state",
    ErrorCode.CSMERR_MSG_PACK_ERROR: "Message packing error",
    ErrorCode.CSMERR_MSG_UNPACK_ERROR: "Message unpacking error",
    ErrorCode.CSMERR_MULTI_RESP_ERROR: "Errors were found in the responses from the compute daemons",
}


class NodeError(tuple):
    """One node's failure inside a combined (multicast) reply: (source, errcode, errmsg).

    A tuple with named parts, written out rather than a ``collections.namedtuple``: importing
    collections costs each csm_* command about a tenth of its imports."""

    __slots__ = ()

    def __new__(cls, source, errcode, errmsg):
        return tuple.__new__(cls, (source, errcode, errmsg))

    def __getnewargs__(self):
        return tuple(self)

    source = property(lambda self: self[0], doc="the node (or daemon) that failed")
    errcode = property(lambda self: self[1], doc="its CSM error code")
    errmsg = property(lambda self: self[2], doc="its message")

    def __repr__(self):
        return "NodeError(source=%r, errcode=%r, errmsg=%r)" % self

    def to_json(self):
        return {"source": self.source, "errcode": int(self.errcode), "errmsg": self.errmsg}

    @classmethod
    def from_json(cls, data):
        return cls(source=str(data.get("source", "")), errcode=int(data.get("errcode", 1)),
                   errmsg=str(data.get("errmsg", "")))


class CSMError(Exception):
    """An API failure: a CSM error code, a message and optional per-node errors."""

    def __init__(self, errcode, errmsg=None, node_errors=()):
        self.errcode = int(errcode)
        if errmsg is None:
            errmsg = DEFAULT_MESSAGES.get(self.errcode, "Error %d" % int(errcode))
        self.errmsg = errmsg
        self.node_errors = tuple(node_errors)
        super().__init__(int(errcode), errmsg)

    def __str__(self):
        return "errcode: %d errmsg: %s" % (int(self.errcode), self.errmsg)

    def to_json(self):
        """The error body carried by a reply with the ERR flag."""
        return {
            "errcode": int(self.errcode),
            "errmsg": self.errmsg,
            "node_errors": [e.to_json() for e in self.node_errors],
        }

    @classmethod
    def from_json(cls, data):
        if not isinstance(data, dict):
            return cls(ErrorCode.CSMERR_MSG_UNPACK_ERROR, "malformed error reply")
        return cls(int(data.get("errcode", ErrorCode.CSMERR_GENERIC)), str(data.get("errmsg", "")),
                   [NodeError.from_json(e) for e in data.get("node_errors") or () if isinstance(e, dict)])
