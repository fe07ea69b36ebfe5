"""The command registry: every API defined once.

A ``Command`` says what the API is called, its CAST command id, where it is
handled, whether it multicasts, its input fields (with their CLI flags) and its
default timeout. The router, the ACL check, the CLI and the client all read it.
"""

from csm.errors import CSMError, ErrorCode

#: Roles, in the order a request climbs.
ROLES = ("compute", "utility", "aggregator", "master")
MASTER = frozenset({"master"})
EVERYWHERE = frozenset(ROLES)


#: Integer fields stored in narrower columns than bigint (by column name, as CAST names
#: fields after their columns); every other integer field is checked against bigint.
COLUMN_BITS = {name: 32 for name in (
    "secondary_job_id", "isolated_cores", "num_processors", "num_gpus", "projected_memory",
    "num_tasks", "user_id", "user_group_id", "exit_status", "threshold_count", "threshold_period",
    "num_allocs")}
COLUMN_BITS["smt_mode"] = 16


def _to_int(value, bits=64):
    if isinstance(value, bool):
        raise ValueError("a boolean is not an integer")
    number = int(value)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if not low <= number <= high:
        raise ValueError("out of range %d..%d" % (low, high))
    return number


def _to_bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "t", "yes", "y", "on"):
        return True
    if text in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError("expected true or false")


def _to_str(value):
    text = str(value)
    if "\x00" in text:
        raise ValueError("text cannot hold a NUL character")  # nor can PostgreSQL's
    if not text.isascii():  # (ASCII is UTF-8 as it is: no encoded copy)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes of another encoding on a command line (surrogateescape)
            raise ValueError("not UTF-8 text") from None
    return text


def _to_list(value):
    if isinstance(value, str):
        return [_to_str(item.strip()) for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)):
        return [_to_str(item) for item in value]
    raise ValueError("expected a list")


#: Field kinds: name -> converter from a JSON or command-line value.
KINDS = {
    "str": _to_str,
    "int": _to_int,
    "float": float,
    "bool": _to_bool,
    "list": _to_list,
}


_REQUIRED = object()


class _Frozen:
    """An immutable record with named attributes and defaults (``_attributes``).

    Plain Python rather than attrs: every csm_* command reads the registry, and
    importing attrs costs a command more than the rest of its start together. A
    default is a class attribute and an instance holds only what it was given: most
    fields and commands give a few of their attributes, and a command's start builds
    its definition (setting every attribute of each took a third of that).
    """

    _attributes = ()  # (name, default) pairs; ``_REQUIRED`` for none
    _names = frozenset()
    _required = ()

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls._names = frozenset(name for name, _ in cls._attributes)
        cls._required = tuple(name for name, default in cls._attributes if default is _REQUIRED)
        for name, default in cls._attributes:
            if default is not _REQUIRED:
                setattr(cls, name, default)

    def __init__(self, *args, **kw):
        if args:
            names = self._attributes
            if len(args) > len(names):
                raise TypeError("%s takes at most %d arguments" % (type(self).__name__, len(names)))
            for (name, default), value in zip(names, args):
                if name in kw:
                    raise TypeError("%s got %r twice" % (type(self).__name__, name))
                kw[name] = value
        for name in self._required:
            if kw.get(name, _REQUIRED) is _REQUIRED:
                raise TypeError("%s needs %r" % (type(self).__name__, name))
        if not kw.keys() <= self._names:
            raise TypeError("%s has no attribute %s"
                            % (type(self).__name__, ", ".join(sorted(kw.keys() - self._names))))
        self.__dict__.update(kw)

    def __setattr__(self, name, value):
        raise AttributeError("%s is immutable" % type(self).__name__)

    def __delattr__(self, name):
        raise AttributeError("%s is immutable" % type(self).__name__)

    def _values(self):
        return tuple(getattr(self, name) for name, _ in self._attributes)

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self):
        return hash((type(self), self._values()))

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name, _ in self._attributes))

    def replace(self, **changes):
        """A copy with some attributes changed."""
        values = {name: getattr(self, name) for name, _ in self._attributes}
        values.update(changes)
        return type(self)(**values)


class Field(_Frozen):
    """One input field, and the command-line flag that sets it (if any).

    ``flags``: e.g. ``("-n", "--node_names")``; ``nullable``: the value ``#CSM_NULL``
    passes through (update fields); ``bits``: the width of an integer field's column
    (default: ``COLUMN_BITS`` by name, else bigint).
    """

    _attributes = (("name", _REQUIRED), ("kind", "str"), ("required", False), ("choices", ()), ("flags", ()),
                   ("help", ""), ("default", None), ("nullable", False), ("bits", None))

    def convert(self, value):
        if self.nullable and value == "#CSM_NULL":
            return value
        try:
            if self.kind == "int":
                converted = _to_int(value, self.bits or COLUMN_BITS.get(self.name, 64))
            else:
                converted = KINDS[self.kind](value)
        except (TypeError, ValueError) as exc:
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM,
                           "invalid value %r for %s: %s" % (value, self.name, exc)) from None
        if self.choices:
            items = converted if self.kind == "list" else [converted]
            for item in items:
                if item not in self.choices:
                    raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid value %r for %s (one of: %s)"
                                   % (item, self.name, ", ".join(map(str, self.choices))))
        return converted


class Command(_Frozen):
    """One API.

    ``name``: without the csm_ prefix, e.g. "node_attributes_query"; ``cli``: the
    command-line tool (default csm_<name>; "" for none); ``timeout``: the default
    when csm_api.cfg says nothing; ``open_input``: accept fields the registry does
    not list (internal messages); ``one_of``: needs at least one of these fields;
    ``results_key``: the output key holding the records (an empty list exits
    CSMI_NO_RESULTS); ``layout``: CAST's output, the records' fields in its order
    (``csm/cli/layout.py`` reads it); ``record_label``: CAST's label of each record,
    ``Record`` or ``RECORD``; ``cli_one_of``: the command-line tool needs one of these
    flags (CAST's tool refuses none with 8), the API itself may take none;
    ``cli_missing``: the tool's exit status when a required flag is missing, where
    CAST's is not CSMERR_MISSING_PARAM (some of its tools exit 9, one exits 1);
    ``cli_partial``: (verb, list field) of CAST's listing when some records of an update
    or delete fail (CSMERR_UPDATE_MISMATCH), e.g. ("delete", "node_names");
    ``cli_one_record``: (field, noun): given that field, more than one record is a fault of the
    database the tool reports (CAST's "There should only be one matching <noun> record") with
    CSMERR_GENERIC, e.g. ("step_id", "step").

    Where it runs (``csm.api.router.Router.route``): a caller's request is answered on
    the roles in ``handled_on`` and climbs from the others; ``master_with``: fields that,
    given, make it the master's on every role (it multicasts to the nodes they name);
    ``adds_local_daemon``: the daemon the caller asked adds its own ``info()``.
    """

    _attributes = (("name", _REQUIRED), ("cmd_id", _REQUIRED), ("handled_on", MASTER), ("multicast", False),
                   ("fields", ()), ("cli", None), ("description", ""), ("timeout", 30.0), ("open_input", False),
                   ("one_of", ()), ("results_key", None), ("layout", ()), ("record_label", "Record"),
                   ("cli_one_of", ()), ("cli_missing", None), ("cli_partial", None), ("cli_one_record", None),
                   ("master_with", ()),
                   ("adds_local_daemon", False))

    @property
    def api_name(self):
        return "csm_" + self.name

    @property
    def cli_name(self):
        return self.api_name if self.cli is None else self.cli

    def field(self, name):
        for field in self.fields:
            if field.name == name:
                return field
        return None

    def validate(self, body):
        """Check and convert an input body; ``CSMError`` names the bad field."""
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "%s: input must be an object" % self.api_name)
        known = self.__dict__.get("_fields_by_name")  # made once: not an attribute (equality, repr)
        if known is None:
            known = self.__dict__["_fields_by_name"] = {field.name: field for field in self.fields}
        result = {}
        for key, value in body.items():
            field = known.get(key)
            if field is None:
                if self.open_input:
                    result[key] = value
                    continue
                raise CSMError(ErrorCode.CSMERR_INVALID_PARAM,
                               "%s: unknown field %r" % (self.api_name, key))
            if value is not None:
                result[key] = field.convert(value)
                if field.required and result[key] == []:  # -n "" or ",,": as if not given
                    del result[key]
        for field in self.fields:
            if field.name not in result:
                if field.required:
                    raise CSMError(ErrorCode.CSMERR_MISSING_PARAM,
                                   "%s: missing required field %r" % (self.api_name, field.name))
                if field.default is not None:
                    result[field.name] = field.default
        if self.one_of and not any(result.get(name) not in (None, "", [], False) for name in self.one_of):
            raise CSMError(ErrorCode.CSMERR_MISSING_PARAM, "%s: needs one of %s"
                           % (self.api_name, ", ".join(self.one_of)))
        return result


class Registry:
    """Commands by id, by API name and by command-line name."""

    def __init__(self, commands=()):
        self.by_id = {}
        self.by_name = {}
        self.by_cli = {}
        for command in commands:
            self.add(command)

    def add(self, command):
        for table, key in ((self.by_id, command.cmd_id), (self.by_name, command.name)):
            if key in table:
                raise ValueError("command %r defined twice" % (key,))
            table[key] = command
        if command.cli_name:
            self.by_cli[command.cli_name] = command
        return command

    def __iter__(self):
        return iter(sorted(self.by_id.values(), key=lambda c: c.cmd_id))

    def get(self, key):
        """By id, or by name with or without the ``csm_`` prefix (case-insensitive)."""
        if isinstance(key, int):
            return self.by_id.get(key)
        name = key.lower()
        if name.startswith("csm_"):
            name = name[4:]
        return self.by_name.get(name)


# What the command modules (csm/api/*commands.py) share, here so that a command loads its own
# module and this one only.

#: CAST's regular API ids (enum order of csmi_cmds_def.h); the wire value of each API.
API_IDS = {
    "bb_cmd": 1, "bb_lv_create": 2, "bb_lv_delete": 3, "bb_lv_query": 4, "bb_lv_update": 5, "bb_vg_create": 6,
    "bb_vg_delete": 7, "bb_vg_query": 8, "diag_result_create": 9, "diag_run_begin": 10, "diag_run_end": 11,
    "diag_run_query": 12, "diag_run_query_details": 13, "allocation_step_cgroup_delete": 14,
    "allocation_step_cgroup_create": 15, "allocation_update_state": 16, "allocation_query_active_all": 17,
    "allocation_create": 18, "allocation_delete": 19, "allocation_query": 20, "allocation_query_details": 21,
    "allocation_step_begin": 22, "allocation_step_end": 23, "allocation_step_query": 24,
    "allocation_step_query_active_all": 25, "allocation_step_query_details": 26, "node_resources_query": 27,
    "node_resources_query_all": 28, "ras_event_create": 29, "ras_subscribe": 30, "ras_unsubscribe": 31,
    "ras_sub_event": 32, "ras_event_query": 33, "ras_msg_type_create": 34, "ras_msg_type_update": 35,
    "ras_msg_type_get": 36, "ras_msg_type_delete": 37, "ras_msg_type_query": 38, "ib_cable_query": 39,
    "ib_cable_query_history": 40, "ib_cable_update": 41, "node_attributes_update": 42,
    "node_attributes_query": 43, "node_attributes_query_details": 44, "node_attributes_query_history": 45,
    "node_query_state_history": 46, "node_delete": 47, "switch_attributes_query": 48,
    "switch_attributes_query_details": 49, "switch_attributes_query_history": 50,
    "switch_attributes_update": 51, "INV_get_node_inventory": 52, "ib_cable_inventory_collection": 53,
    "switch_inventory_collection": 54, "switch_children_inventory_collection": 55,
    "allocation_resources_query": 56, "allocation_update_history": 57, "ras_event_query_allocation": 58,
    "cgroup_login": 59, "jsrun_cmd": 60, "cluster_query_state": 61, "node_find_job": 62,
    "soft_failure_recovery": 63, "ssd_wear_update": 64,
}

#: Log levels: ctrl_cmd's --log.* values and every command's -v.
VERBOSE_CHOICES = ("off", "trace", "debug", "info", "warning", "error", "critical", "always", "disable")

LIMIT = Field("limit", "int", flags=("-l", "--limit"), help="the most records to return")
OFFSET = Field("offset", "int", flags=("-o", "--offset"), help="records to skip")


def api_command(name, description, fields, **kw):
    """A regular CAST API: its wire id from ``API_IDS``."""
    return Command(name=name, cmd_id=API_IDS[name], description=description, fields=tuple(fields), **kw)
