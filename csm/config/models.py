"""The ``csm_<role>.cfg`` sections as attrs models: the one source of each key's type and default.

A field's annotation is its type and its default the key's default. ``setting()`` adds
what a type cannot say (read by ``csm.config.reader.Reader.model``):

- ``kind``: a reading other than the annotation's (``"octal"``, ``"duration"``, ``"object"``);
- ``path``: a path, relative ones taken from the config file's folder;
- ``empty_default``: ``""`` means the default; ``none_off``: ``none`` turns the feature off (``""``);
- ``derived``: not a key of its own; the loader fills it in;
- ``unused``: a CAST key this implementation reads but does not use (reported at start).

A class attribute ``other_keys`` names keys CAST puts in the section that the model
does not hold (read elsewhere, or meaningless here), so they are not warned about.
"""

import attrs

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
SUBCOMPONENTS = ("csmdb", "csmnet", "csmd", "csmras", "csmapi", "csmenv")


def setting(default=attrs.NOTHING, factory=None, **meta):
    """An attrs field carrying the loader's metadata (see the module docstring)."""
    if factory is not None:
        return attrs.field(factory=factory, metadata=meta)
    return attrs.field(default=default, metadata=meta)


def file_path(default, **meta):
    return setting(default, path=True, **meta)


def script(default):
    """A path where ``""`` keeps the default and ``none`` turns the feature off."""
    return setting(default, path=True, empty_default=True, none_off=True)


@attrs.frozen
class Endpoint:
    host: str
    port: int


@attrs.frozen
class LocalListen:
    socket: str = file_path("/run/csmd.sock")
    permissions: int = setting(0o777, kind="octal")
    group: str = ""


@attrs.frozen
class SSLConfig:
    ca_file: str = file_path("")
    cred_pem: str = file_path("")

    @property
    def enabled(self):
        """TLS only when both files are set (CAST's code; its doc says either)."""
        return bool(self.ca_file and self.cred_pem)


@attrs.frozen
class NetConfig:
    other_keys = ("masters",)

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
    #: beyond CAST: more masters than ``master`` (high availability), tried in turn
    masters: tuple = setting((), derived=True)

    @property
    def master_list(self):
        """Every master an aggregator or utility may reach: ``master`` first, then ``masters``."""
        first = () if self.master is None else (self.master,)
        return first + tuple(m for m in self.masters if m != self.master)


@attrs.frozen
class LogConfig:
    other_keys = SUBCOMPONENTS + ("archiveLogs", "archiveSize", "archiveMinDiskSize")

    format: str = "%TimeStamp% %SubComponent%::%Severity% | %Message%"
    consoleLog: bool = True
    fileLog: str = file_path("none")
    fileAppend: bool = False
    rotationSize: int = -1
    sysLog: bool = False
    server: str = "127.0.0.1"
    port: int = 514
    default_sev: str = "info"
    levels: dict = setting(factory=dict, derived=True)
    transaction: bool = True
    transaction_file: str = file_path("none")
    transaction_rotation_size: int = -1
    allocation_metrics: bool = True
    allocation_metrics_file: str = file_path("none")
    allocation_metrics_rotation_size: int = -1


@attrs.frozen
class DBConfig:
    connection_pool_size: int = 10
    host: str = "127.0.0.1"
    port: int = 5432
    name: str = "csmdb"
    user: str = "csmdb"
    password: str = ""
    schema_name: str = setting("", unused=True)

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
    scriptdir: str = file_path("/opt/ibm/csm/ras/actions")
    fatal_event: str = "fatal_event.sh"
    logdir: str = file_path("/var/log/ibm/csm/ras/actions")
    maxactions: int = 100
    timeout: int = 20


@attrs.frozen
class RasSlurmConfig:
    """Beyond CAST: drain Slurm nodes CSM failed, resume them when back (``csm.ras.slurm``)."""
    enabled: bool = False
    scontrol: str = "scontrol"
    #: slurm.conf when not Slurm's default (SLURM_CONF for scontrol and sinfo)
    slurm_conf: str = file_path("")


@attrs.frozen
class RasConfig:
    action: RasActionConfig = RasActionConfig()
    slurm: RasSlurmConfig = RasSlurmConfig()
    rest: Endpoint = None
    #: JSON lines of every RAS event the master processes (for the BDS); "" = off
    event_log: str = file_path("")


@attrs.frozen
class SoftFailRecovery:
    enabled: bool = False
    interval: float = setting(60.0, kind="duration")
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
    granularity: float = setting(1.0, kind="duration")
    buckets: tuple = setting((), derived=True)
    other_keys = ("buckets",)


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
    #: file names for the records a UFM collection leaves out (csm.ufm_collection)
    ufm: dict = setting(factory=dict, kind="object")


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
    socket: str = file_path("")
    ssh_port: int = 0
    ssh_host: str = "127.0.0.1"
    authorized_keys: str = file_path("")
    host_key: str = file_path("")

    @property
    def enabled(self):
        return bool(self.socket or self.ssh_port)


@attrs.frozen
class HAConfig:
    """Beyond CAST: masters elected through the database (``csm.election``)."""

    enabled: bool = False
    #: seconds a silent active master keeps its lease (0: the heartbeat interval)
    lease_seconds: float = 0.0


@attrs.frozen
class DaemonConfig:
    other_keys = ("role", "tuning")

    path: str = setting(derived=True)
    role: str = setting(derived=True)
    node_name: str = setting()
    thread_pool_size: int = setting(1, unused=True)
    api_permission_file: str = file_path(DEFAULT_ACL_FILE, empty_default=True)
    api_configuration_file: str = file_path(DEFAULT_API_FILE, empty_default=True)
    log: LogConfig = LogConfig()
    net: NetConfig = NetConfig()
    db: DBConfig = DBConfig()
    bds: BDSConfig = BDSConfig()
    ras: RasConfig = RasConfig()
    recurring_tasks: RecurringTasks = RecurringTasks()
    data_collection: DataCollection = DataCollection()
    jitter_mitigation: JitterMitigation = setting(JitterMitigation(), unused=True)
    inventory: InventoryConfig = InventoryConfig()
    ufm: UFMConfig = UFMConfig()
    manhole: ManholeConfig = ManholeConfig()
    ha: HAConfig = HAConfig()
    #: the compute's soft failure recovery script (CAST's fixed path; a key here, beyond CAST)
    recovery_script: str = file_path(DEFAULT_RECOVERY_SCRIPT, empty_default=True)
    #: the compute's privileged prolog and epilog ("none": run nothing), and where its
    #: allocation cgroups go (cgroup v2; "none": no cgroups): keys here, beyond CAST
    prolog: str = script(DEFAULT_PROLOG)
    epilog: str = script(DEFAULT_EPILOG)
    cgroup_root: str = script(DEFAULT_CGROUP_ROOT)
    #: the compute's job launcher (csm_jsrun_cmd) and burst buffer command (csm_bb_cmd):
    #: CAST's fixed paths, keys here
    jsrun_cmd: str = script(DEFAULT_JSRUN_CMD)
    bb_cmd: str = script(DEFAULT_BB_CMD)
    #: the CAST keys the file sets that this implementation does not use (reported at start)
    unused: tuple = setting((), derived=True)
