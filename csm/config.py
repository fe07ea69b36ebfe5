"""The daemon configuration: CAST's JSON files as attrs models, and one loader.

``load_daemon_config`` reads ``csm_<role>.cfg``; ``load_acl`` reads
``csm_api.acl``; ``load_api_timeouts`` reads ``csm_api.cfg``. A bad file raises
``ConfigError``, whose one-line message names the file and the key path.
Values may be strings or numbers (``15`` and ``"15"`` are the same, as in CAST);
keys starting with ``#`` are comments; unknown keys are warned about.

Extensions beyond CAST (all optional): ``csm.node_name``, ``csm.db.port``,
``csm.net.max_message_size``, ``csm.net.failback_after``,
``csm.net.metrics_listen``, ``csm.manhole`` and ``csm.ras.rest``.
"""

import grp
import json
import os
import pwd
import re
import socket

import attrs

ROLES = ("master", "aggregator", "utility", "compute")
LOG_LEVELS = ("off", "trace", "debug", "info", "warning", "error", "critical", "always", "disable")
SUBCOMPONENTS = ("csmdb", "csmnet", "csmd", "csmras", "csmapi", "csmenv")
BUCKET_ITEMS = ("debug", "cpu", "gpu", "network", "default", "environmental", "ssd")
DEFAULT_MAX_MESSAGE = 16 * 1024 * 1024 - 72
DEFAULT_ACL_FILE = "/etc/ibm/csm/csm_api.acl"
DEFAULT_API_FILE = "/etc/ibm/csm/csm_api.cfg"
DEFAULT_INV_LOG_DIR = "/var/log/ibm/csm/inv"
DEFAULT_RECOVERY_SCRIPT = "/opt/ibm/csm/recovery/soft_failure_recovery"
DEFAULT_PROLOG = "/opt/ibm/csm/prologs/privileged_prolog"
DEFAULT_EPILOG = "/opt/ibm/csm/prologs/privileged_epilog"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup/csm"
DEFAULT_JSRUN_CMD = "/opt/ibm/spectrum_mpi/jsm_pmix/bin/jsm"
DEFAULT_BB_CMD = "/opt/ibm/bb/bin/bbcmd"
DEFAULT_API_TIMEOUT = 30.0
MIN_API_TIMEOUT = 5.0


class ConfigError(Exception):
    """A configuration problem; ``str()`` is one line naming the file and key."""

    def __init__(self, path, key, message, line=None, column=None):
        self.path, self.key, self.line, self.message = path, key, line, message
        where = path if line is None else "%s:%d:%d" % (path, line, column or 0)
        text = "%s: %s: %s" % (where, key, message) if key else "%s: %s" % (where, message)
        super().__init__(text)


def _default_warn(text):
    from twisted.logger import Logger
    Logger(namespace="csmd").warn("{text}", text=text)


# -- models -----------------------------------------------------------------------------

@attrs.frozen
class Endpoint:
    host: str
    port: int


@attrs.frozen
class LocalListen:
    socket: str = "/run/csmd.sock"
    permissions: int = 0o777
    group: str = ""


@attrs.frozen
class SSLConfig:
    ca_file: str = ""
    cred_pem: str = ""

    @property
    def enabled(self):
        """TLS only when both files are set (CAST's code; its doc says either)."""
        return bool(self.ca_file and self.cred_pem)


@attrs.frozen
class NetConfig:
    heartbeat_interval: int = 15
    local_client_listen: LocalListen = LocalListen()
    aggregator_listen: Endpoint = None
    utility_listen: Endpoint = None
    compute_listen: Endpoint = None
    master: Endpoint = None
    aggregatorA: Endpoint = None
    aggregatorB: Endpoint = None
    ssl: SSLConfig = SSLConfig()
    max_message_size: int = DEFAULT_MAX_MESSAGE
    failback_after: int = 0
    metrics_listen: Endpoint = None


@attrs.frozen
class LogConfig:
    format: str = "%TimeStamp% %SubComponent%::%Severity% | %Message%"
    consoleLog: bool = True
    fileLog: str = "none"
    fileAppend: bool = False
    rotationSize: int = -1
    sysLog: bool = False
    server: str = "127.0.0.1"
    port: int = 514
    default_sev: str = "info"
    levels: dict = attrs.field(factory=dict)
    transaction: bool = True
    transaction_file: str = "none"
    transaction_rotation_size: int = -1
    allocation_metrics: bool = True
    allocation_metrics_file: str = "none"
    allocation_metrics_rotation_size: int = -1


@attrs.frozen
class DBConfig:
    connection_pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "csmdb"
    user: str = "csmdb"
    password: str = ""
    schema_name: str = ""

    @property
    def enabled(self):
        """A host of ``NONE`` runs the master without a database (a lab mode, beyond CAST)."""
        return bool(self.host) and self.host.upper() != "NONE"


@attrs.frozen
class BDSConfig:
    host: str = None
    port: int = 10522
    reconnect_interval_max: int = 5
    data_cache_expiration: int = 600


@attrs.frozen
class RasActionConfig:
    scriptdir: str = "/opt/ibm/csm/ras/actions"
    fatal_event: str = "fatal_event.sh"
    logdir: str = "/var/log/ibm/csm/ras/actions"
    maxactions: int = 100
    timeout: int = 20


@attrs.frozen
class RasConfig:
    action: RasActionConfig = RasActionConfig()
    rest: Endpoint = None
    #: JSON lines of every RAS event the master processes (for the BDS); "" = off
    event_log: str = ""


@attrs.frozen
class SoftFailRecovery:
    enabled: bool = False
    interval: float = 60.0
    retry: int = 3


@attrs.frozen
class RecurringTasks:
    enabled: bool = False
    soft_fail_recovery: SoftFailRecovery = SoftFailRecovery()


@attrs.frozen
class Bucket:
    execution_interval: float
    item_list: tuple


@attrs.frozen
class DataCollection:
    granularity: float = 1.0
    buckets: tuple = ()


@attrs.frozen
class JitterMitigation:
    enabled: bool = True
    blink_enabled: bool = True
    system_smt: int = 0
    irq_affinity: bool = True
    core_isolation_max: int = 4
    socket_order: str = ""


@attrs.frozen
class InventoryConfig:
    csm_inv_log_dir: str = DEFAULT_INV_LOG_DIR
    ufm: dict = attrs.field(factory=dict)


@attrs.frozen
class UFMConfig:
    rest_address: str = ""
    rest_port: int = 80
    ufm_ssl_file_path: str = "/etc/ibm/csm"
    ufm_ssl_file_name: str = "csm_ufm_ssl_key.txt"
    #: beyond CAST: seconds between the master's own collections (0: off) and per UFM request
    collection_interval: int = 0
    timeout: int = 30


@attrs.frozen
class ManholeConfig:
    socket: str = ""
    ssh_port: int = 0
    ssh_host: str = "127.0.0.1"
    authorized_keys: str = ""
    host_key: str = ""

    @property
    def enabled(self):
        return bool(self.socket or self.ssh_port)


@attrs.frozen
class DaemonConfig:
    path: str
    role: str
    node_name: str
    thread_pool_size: int = 1
    api_permission_file: str = DEFAULT_ACL_FILE
    api_configuration_file: str = DEFAULT_API_FILE
    log: LogConfig = LogConfig()
    net: NetConfig = NetConfig()
    db: DBConfig = DBConfig()
    bds: BDSConfig = BDSConfig()
    ras: RasConfig = RasConfig()
    recurring_tasks: RecurringTasks = RecurringTasks()
    data_collection: DataCollection = DataCollection()
    jitter_mitigation: JitterMitigation = JitterMitigation()
    inventory: InventoryConfig = InventoryConfig()
    ufm: UFMConfig = UFMConfig()
    manhole: ManholeConfig = ManholeConfig()
    #: the compute's soft failure recovery script (CAST's fixed path; a key here, beyond CAST)
    recovery_script: str = DEFAULT_RECOVERY_SCRIPT
    #: the compute's privileged prolog and epilog ("none": run nothing), and where its
    #: allocation cgroups go (cgroup v2; "none": no cgroups): keys here, beyond CAST
    prolog: str = DEFAULT_PROLOG
    epilog: str = DEFAULT_EPILOG
    cgroup_root: str = DEFAULT_CGROUP_ROOT
    #: the compute's job launcher (csm_jsrun_cmd) and burst buffer command (csm_bb_cmd):
    #: CAST's fixed paths, keys here
    jsrun_cmd: str = DEFAULT_JSRUN_CMD
    bb_cmd: str = DEFAULT_BB_CMD


# -- reading ------------------------------------------------------------------------------

def _read_json(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(path, None, "cannot read: %s" % (exc.strerror or exc)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, "not UTF-8 text (byte %d)" % exc.start) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, None, "invalid JSON: %s" % exc.msg, exc.lineno, exc.colno) from None


def _duration(text):
    """``HH:MM:SS`` (hours may exceed 24) -> seconds."""
    match = re.fullmatch(r"\s*(\d+):([0-5]?\d):([0-5]?\d(?:\.\d+)?)\s*", str(text))
    if not match:
        raise ValueError("expected HH:MM:SS")
    hours, minutes, seconds = match.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _boolean(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _integer(value):
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError("expected an integer")
    return int(str(value).strip()) if isinstance(value, str) else int(value)


def _octal(value):
    text = str(value).strip()
    return int(text, 8) if text else 0


def _string(value):
    if isinstance(value, (dict, list)):
        raise ValueError("expected a string")
    return "" if value is None else str(value)


KINDS = {str: _string, int: _integer, bool: _boolean, float: float, "octal": _octal,
         "duration": _duration}
KIND_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number",
              "octal": "octal permissions", "duration": "a duration HH:MM:SS"}


class _Reader:
    """Reads one file's sections, naming key paths in errors and warnings."""

    def __init__(self, path, warn):
        self.path = path
        self.warn = warn
        self.base = os.path.dirname(os.path.abspath(path))

    def error(self, key, message):
        return ConfigError(self.path, key, message)

    def section(self, data, key):
        value = data.get(key.rsplit(".", 1)[-1]) if isinstance(data, dict) else None
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(key, "expected an object")
        return value

    def value(self, data, prefix, name, kind, default):
        if name not in data or data[name] is None:
            return default
        try:
            return KINDS[kind](data[name])
        except (TypeError, ValueError):
            raise self.error("%s.%s" % (prefix, name), "expected %s, got %s"
                             % (KIND_NAMES[kind], json.dumps(data[name]))) from None

    def fields(self, data, prefix, cls, kinds, skip=()):
        """Read every field of attrs class ``cls`` whose kind is in ``kinds``."""
        known = set(kinds) | set(skip)
        self.unknown(data, prefix, known)
        defaults = cls() if not attrs.fields(cls)[0].default is attrs.NOTHING else None
        values = {}
        for name, kind in kinds.items():
            default = getattr(defaults, name) if defaults is not None else None
            values[name] = self.value(data, prefix, name, kind, default)
        return values

    def unknown(self, data, prefix, known):
        for key in data:
            if key.startswith("#") or key in known:
                continue
            self.warn("%s: unknown key %s.%s ignored" % (self.path, prefix, key))

    def path_value(self, value):
        if not value or value.lower() == "none" or os.path.isabs(value):
            return value
        return os.path.join(self.base, value)

    def endpoint(self, data, prefix, name):
        section = self.section(data, "%s.%s" % (prefix, name))
        if not section:
            return None
        key = "%s.%s" % (prefix, name)
        self.unknown(section, key, {"host", "port"})
        host = self.value(section, key, "host", str, "").strip()
        if not host or host.upper() == "NONE":
            return None
        port = self.value(section, key, "port", int, None)
        if port is None or not 0 <= port <= 65535:
            raise self.error(key + ".port", "expected a port number 0-65535")
        return Endpoint(host, port)


def _log(reader, data):
    prefix = "csm.log"
    section = reader.section(data, prefix)
    kinds = {name: kind for name, kind in (
        ("format", str), ("consoleLog", bool), ("fileLog", str), ("fileAppend", bool),
        ("rotationSize", int), ("sysLog", bool), ("server", str), ("port", int), ("default_sev", str),
        ("transaction", bool), ("transaction_file", str), ("transaction_rotation_size", int),
        ("allocation_metrics", bool), ("allocation_metrics_file", str),
        ("allocation_metrics_rotation_size", int))}
    values = reader.fields(section, prefix, LogConfig, kinds,
                           skip=SUBCOMPONENTS + ("archiveLogs", "archiveSize", "archiveMinDiskSize"))
    values["default_sev"] = _level(reader, prefix + ".default_sev", values["default_sev"], "info")
    values["levels"] = {sub: _level(reader, "%s.%s" % (prefix, sub),
                                    reader.value(section, prefix, sub, str, values["default_sev"]),
                                    values["default_sev"]) for sub in SUBCOMPONENTS}
    for name in ("fileLog", "transaction_file", "allocation_metrics_file"):
        values[name] = reader.path_value(values[name])
    return LogConfig(**values)


def _level(reader, key, value, default):
    if value.lower() in LOG_LEVELS:
        return value.lower()
    reader.warn("%s: %s: unknown log level %r, using %s" % (reader.path, key, value, default))
    return default


def _net(reader, data, role):
    prefix = "csm.net"
    section = reader.section(data, prefix)
    links = ("aggregator_listen", "utility_listen", "compute_listen", "master", "aggregatorA",
             "aggregatorB", "metrics_listen")
    values = reader.fields(section, prefix, NetConfig,
                           {"heartbeat_interval": int, "max_message_size": int, "failback_after": int},
                           skip=links + ("local_client_listen", "ssl"))
    interval = values["heartbeat_interval"]
    if not 3 <= interval <= 3600:
        reader.warn("%s: csm.net.heartbeat_interval %d is outside 3..3600; using 15" % (reader.path, interval))
        values["heartbeat_interval"] = 15
    if values["max_message_size"] < 4096:
        raise reader.error(prefix + ".max_message_size", "must be at least 4096 bytes")
    listen = reader.section(section, prefix + ".local_client_listen")
    local = reader.fields(listen, prefix + ".local_client_listen", LocalListen,
                          {"socket": str, "permissions": "octal", "group": str})
    local["permissions"] = local["permissions"] or 0o777
    local["socket"] = reader.path_value(local["socket"])
    values["local_client_listen"] = LocalListen(**local)
    ssl = reader.fields(reader.section(section, prefix + ".ssl"), prefix + ".ssl", SSLConfig,
                        {"ca_file": str, "cred_pem": str})
    values["ssl"] = SSLConfig(**{k: reader.path_value(v) for k, v in ssl.items()})
    for name in links:
        values[name] = reader.endpoint(section, prefix, name)
    _aggregator_b(reader, section, values)
    return NetConfig(**values)


def _aggregator_b(reader, section, values):
    raw = reader.section(section, "csm.net.aggregatorB").get("host", "")
    if values["aggregatorB"] is not None and (" " in str(raw) or "_" in str(raw)):
        reader.warn("%s: csm.net.aggregatorB host %r looks like a template; single aggregator mode"
                    % (reader.path, raw))
        values["aggregatorB"] = None
    a, b = values["aggregatorA"], values["aggregatorB"]
    if a is not None and b is not None and (a.host, a.port) == (b.host, b.port):
        raise reader.error("csm.net.aggregatorB", "is the same as aggregatorA (%s:%d)" % (a.host, a.port))


REQUIRED_LINKS = {
    "master": ("aggregator_listen", "utility_listen"),
    "aggregator": ("master", "compute_listen"),
    "utility": ("master",),
    "compute": ("aggregatorA",),
}


def _check_required(reader, data, role):
    section = reader.section(reader.section(data, "csm"), "csm.net")
    for name in REQUIRED_LINKS[role]:
        if name not in section:
            raise reader.error("csm.net." + name, "required for the %s role" % role)
    if role == "compute" and reader.endpoint(section, "csm.net", "aggregatorA") is None:
        raise reader.error("csm.net.aggregatorA", "a compute needs aggregatorA")


def _role(reader, csm, override):
    if override:
        letter = str(override)[:1].lower()
        for role in ROLES:
            if role[0] == letter:
                return role
        raise ConfigError(reader.path, "--role", "unknown role %r (master, aggregator, utility, compute)"
                          % override)
    value = str(csm.get("role", "master")).strip().lower()
    if value not in ROLES:
        raise reader.error("csm.role", "unknown role %r (master, aggregator, utility, compute)"
                           % csm.get("role"))
    return value


def _buckets(reader, section):
    buckets = []
    raw = section.get("buckets") or []
    if not isinstance(raw, list):
        raise reader.error("csm.data_collection.buckets", "expected a list")
    for index, entry in enumerate(raw):
        key = "csm.data_collection.buckets[%d]" % index
        if not isinstance(entry, dict):
            raise reader.error(key, "expected an object")
        reader.unknown(entry, key, {"execution_interval", "item_list"})
        try:
            interval = _duration(entry.get("execution_interval", ""))
        except ValueError:
            reader.warn("%s: %s.execution_interval %r is not HH:MM:SS; bucket skipped"
                        % (reader.path, key, entry.get("execution_interval")))
            continue
        items = []
        for item in entry.get("item_list") or []:
            if str(item).lower() in BUCKET_ITEMS:
                items.append(str(item).lower())
            else:
                reader.warn("%s: %s: unknown item %r ignored" % (reader.path, key, item))
        if interval <= 0 or not items:
            reader.warn("%s: %s has no valid item or interval; bucket skipped" % (reader.path, key))
            continue
        buckets.append(Bucket(interval, tuple(items)))
    return tuple(buckets)


def _data_collection(reader, csm):
    section = reader.section(csm, "csm.data_collection")
    reader.unknown(section, "csm.data_collection", {"buckets", "granularity"})
    granularity = reader.value(section, "csm.data_collection", "granularity", "duration", 1.0)
    if granularity <= 0.5:
        granularity = 1.0
    return DataCollection(granularity, _buckets(reader, section))


def _recurring(reader, csm):
    prefix = "csm.recurring_tasks"
    section = reader.section(csm, prefix)
    enabled = reader.value(section, prefix, "enabled", bool, False)
    reader.unknown(section, prefix, {"enabled", "soft_fail_recovery"})
    sub_prefix = prefix + ".soft_fail_recovery"
    sub = reader.section(section, sub_prefix)
    values = reader.fields(sub, sub_prefix, SoftFailRecovery,
                           {"enabled": bool, "interval": "duration", "retry": int})
    if enabled and values["enabled"]:
        if values["interval"] <= 0:
            raise reader.error(sub_prefix + ".interval", "must be more than 0")
        if values["retry"] <= 0:
            raise reader.error(sub_prefix + ".retry", "must be more than 0")
    return RecurringTasks(enabled, SoftFailRecovery(**values))


def _bds(reader, csm):
    prefix = "csm.bds"
    section = reader.section(csm, prefix)
    values = reader.fields(section, prefix, BDSConfig,
                           {"host": str, "port": int, "reconnect_interval_max": int,
                            "data_cache_expiration": int})
    host = (values["host"] or "").strip()
    values["host"] = None if not host or host.upper() == "NONE" else host
    if values["host"] and not 1 <= values["port"] <= 65535:
        raise reader.error(prefix + ".port", "expected a port number 1-65535")
    return BDSConfig(**values)


def _simple(reader, csm, name, cls, kinds, skip=()):
    prefix = "csm." + name
    return cls(**reader.fields(reader.section(csm, prefix), prefix, cls, kinds, skip))


def load_daemon_config(path, role_override=None, warn=None):
    """Read ``csm_<role>.cfg`` into a ``DaemonConfig`` (``ConfigError`` when bad)."""
    reader = _Reader(path, warn or _default_warn)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("csm"), dict):
        raise reader.error("csm", "the file must hold an object with a \"csm\" block")
    csm = data["csm"]
    reader.unknown(data, "", {"csm"})
    role = _role(reader, csm, role_override)
    top = reader.fields(csm, "csm", DaemonConfig,
                        {"node_name": str, "thread_pool_size": int, "api_permission_file": str,
                         "api_configuration_file": str, "recovery_script": str, "prolog": str,
                         "epilog": str, "cgroup_root": str, "jsrun_cmd": str, "bb_cmd": str},
                        skip=("role", "log", "db", "inventory", "net", "ras", "ufm", "bds",
                              "recurring_tasks", "data_collection", "jitter_mitigation", "manhole",
                              "tuning"))
    _check_required(reader, data, role)
    ras = reader.section(csm, "csm.ras")
    reader.unknown(ras, "csm.ras", {"action", "rest", "event_log"})
    action = reader.fields(reader.section(ras, "csm.ras.action"), "csm.ras.action", RasActionConfig,
                           {"scriptdir": str, "fatal_event": str, "logdir": str, "maxactions": int,
                            "timeout": int})
    for name in ("scriptdir", "logdir"):
        action[name] = reader.path_value(action[name])
    manhole = _simple(reader, csm, "manhole", ManholeConfig,
                      {"socket": str, "ssh_port": int, "ssh_host": str, "authorized_keys": str,
                       "host_key": str})
    inventory = reader.section(csm, "csm.inventory")
    return DaemonConfig(
        path=os.path.abspath(path),
        role=role,
        node_name=top["node_name"] or socket.gethostname(),
        thread_pool_size=top["thread_pool_size"] or 1,
        api_permission_file=reader.path_value(top["api_permission_file"] or DEFAULT_ACL_FILE),
        api_configuration_file=reader.path_value(top["api_configuration_file"] or DEFAULT_API_FILE),
        log=_log(reader, csm),
        net=_net(reader, csm, role),
        db=_simple(reader, csm, "db", DBConfig,
                   {"connection_pool_size": int, "host": str, "port": int, "name": str, "user": str,
                    "password": str, "schema_name": str}),
        bds=_bds(reader, csm),
        ras=RasConfig(RasActionConfig(**action), reader.endpoint(ras, "csm.ras", "rest"),
                      reader.path_value(reader.value(ras, "csm.ras", "event_log", str, ""))),
        recurring_tasks=_recurring(reader, csm),
        data_collection=_data_collection(reader, csm),
        jitter_mitigation=_simple(reader, csm, "jitter_mitigation", JitterMitigation,
                                  {"enabled": bool, "blink_enabled": bool, "system_smt": int,
                                   "irq_affinity": bool, "core_isolation_max": int, "socket_order": str}),
        inventory=InventoryConfig(str(inventory.get("csm_inv_log_dir", DEFAULT_INV_LOG_DIR)),
                                  dict(inventory.get("ufm") or {})),
        ufm=_simple(reader, csm, "ufm", UFMConfig,
                    {"rest_address": str, "rest_port": int, "ufm_ssl_file_path": str,
                     "ufm_ssl_file_name": str, "collection_interval": int, "timeout": int}),
        recovery_script=reader.path_value(top["recovery_script"] or DEFAULT_RECOVERY_SCRIPT),
        prolog=_script_path(reader, top["prolog"], DEFAULT_PROLOG),
        epilog=_script_path(reader, top["epilog"], DEFAULT_EPILOG),
        cgroup_root=_script_path(reader, top["cgroup_root"], DEFAULT_CGROUP_ROOT),
        jsrun_cmd=_script_path(reader, top["jsrun_cmd"], DEFAULT_JSRUN_CMD),
        bb_cmd=_script_path(reader, top["bb_cmd"], DEFAULT_BB_CMD),
        manhole=attrs.evolve(manhole, socket=reader.path_value(manhole.socket),
                             authorized_keys=reader.path_value(manhole.authorized_keys),
                             host_key=reader.path_value(manhole.host_key)),
    )


def _script_path(reader, value, default):
    """A path key where ``none`` turns the feature off (kept as ``""``)."""
    if value is None or value == "":
        return default
    if str(value).strip().lower() == "none":
        return ""
    return reader.path_value(value)


# -- csm_api.acl ------------------------------------------------------------------------

@attrs.frozen
class ApiAcl:
    """Who is privileged, and which APIs are private or public (the rest are privileged)."""

    privileged_users: frozenset = frozenset({0})
    privileged_groups: frozenset = frozenset({0})
    private: frozenset = frozenset()
    public: frozenset = frozenset()
    everyone_privileged: bool = False

    @classmethod
    def allow_all(cls):
        return cls(everyone_privileged=True)

    @classmethod
    def default(cls):
        return cls(private=frozenset(DEFAULT_PRIVATE), public=frozenset(DEFAULT_PUBLIC))

    def access_class(self, api_name):
        name = api_name.lower()
        if name in self.public:
            return "public"
        if name in self.private:
            return "private"
        return "privileged"

    def is_privileged(self, uid, gid):
        if self.everyone_privileged or uid == 0 or gid == 0:
            return True
        if uid in self.privileged_users or gid in self.privileged_groups:
            return True
        if not self.privileged_groups:
            return False
        try:
            groups = os.getgrouplist(pwd.getpwuid(uid).pw_name, gid)
        except (KeyError, OSError):
            return False
        return any(g in self.privileged_groups for g in groups)


DEFAULT_PRIVATE = ("csm_allocation_query_details", "csm_allocation_delete", "csm_allocation_update_state",
                   "csm_bb_cmd", "csm_jsrun_cmd", "csm_allocation_step_query_details")
DEFAULT_PUBLIC = ("csm_allocation_step_cgroup_create", "csm_allocation_step_cgroup_delete",
                  "csm_allocation_query", "csm_allocation_query_active_all",
                  "csm_allocation_resources_query", "csm_allocation_step_begin",
                  "csm_allocation_step_end", "csm_allocation_step_query",
                  "csm_allocation_step_query_active_all", "csm_diag_run_query",
                  "csm_node_attributes_query", "csm_node_attributes_query_history",
                  "csm_node_resources_query", "csm_node_resources_query_all")


def _ids(reader, data, key, lookup):
    raw = data.get(key, [])
    names = [raw] if isinstance(raw, (str, int)) else raw
    if not isinstance(names, list):
        raise reader.error(key, "expected a name or a list of names")
    ids = set()
    for name in names:
        if isinstance(name, int) or str(name).isdigit():
            ids.add(int(name))
            continue
        try:
            ids.add(lookup(str(name)))
        except KeyError:
            reader.warn("%s: %s: unknown name %r ignored" % (reader.path, key, name))
    return frozenset(ids | {0})


def _api_names(reader, data, key):
    raw = data.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        raise reader.error(key, "expected a list of API names")
    return frozenset(name.strip().lower() for name in raw)


def load_acl(path, warn=None):
    """Read ``csm_api.acl``; a missing file lets every caller in (CAST's behaviour), with a warning."""
    warn = warn or _default_warn
    if not path or not os.path.exists(path):
        warn("%s: ACL file not found: every local caller is treated as privileged" % path)
        return ApiAcl.allow_all()
    reader = _Reader(path, warn)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise reader.error(None, "expected a JSON object")
    reader.unknown(data, "acl", {"privileged_user_id", "privileged_group_id", "private", "public"})
    return ApiAcl(
        privileged_users=_ids(reader, data, "privileged_user_id", lambda n: pwd.getpwnam(n).pw_uid),
        privileged_groups=_ids(reader, data, "privileged_group_id", lambda n: grp.getgrnam(n).gr_gid),
        private=_api_names(reader, data, "private"),
        public=_api_names(reader, data, "public"),
    )


# -- csm_api.cfg ------------------------------------------------------------------------

@attrs.frozen
class ApiTimeouts:
    """Per-API timeouts in seconds; 30 s for any API not listed."""

    values: dict = attrs.field(factory=dict)
    default: float = DEFAULT_API_TIMEOUT

    def timeout(self, api_name):
        return self.values.get(api_name.lower(), self.default)

    def as_dict(self):
        return {name: value for name, value in self.values.items() if value != self.default}


def load_api_timeouts(path, warn=None):
    """Read ``csm_api.cfg``: ``{"csm_<api>": seconds}``; values under 5 s keep the default."""
    warn = warn or _default_warn
    if not path or not os.path.exists(path):
        warn("%s: API configuration not found: every API times out after %gs" % (path, DEFAULT_API_TIMEOUT))
        return ApiTimeouts()
    data = _read_json(path)
    reader = _Reader(path, warn)
    if not isinstance(data, dict):
        raise reader.error(None, "expected a JSON object")
    values = {}
    for key, raw in data.items():
        if "#" in key:
            continue
        try:
            seconds = float(raw)
        except (TypeError, ValueError):
            warn("%s: %s: %r is not a number of seconds; default kept" % (path, key, raw))
            continue
        if seconds < MIN_API_TIMEOUT:
            warn("%s: %s: %gs is under the %gs minimum; default kept" % (path, key, seconds, MIN_API_TIMEOUT))
            continue
        values[key.lower()] = seconds
    return ApiTimeouts(values)
