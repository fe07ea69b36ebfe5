"""``load_daemon_config``: ``csm_<role>.cfg`` into a ``DaemonConfig``.

The models read themselves (``Reader.model``); what is left here are the rules that span
keys: the role, the links each role needs, log levels, buckets, and range checks.
"""

import os
import socket

import attrs

from csm.config.errors import ConfigError, default_warn
from csm.config.models import SUBCOMPONENTS, Bucket, DaemonConfig, DataCollection
from csm.config.reader import Reader, duration, read_json

ROLES = ("master", "aggregator", "utility", "compute")
LOG_LEVELS = ("off", "trace", "debug", "info", "warning", "error", "critical", "always", "disable")
BUCKET_ITEMS = ("debug", "cpu", "gpu", "network", "default", "environmental", "ssd")
REQUIRED_LINKS = {
    "master": ("aggregator_listen", "utility_listen"),
    "aggregator": ("master", "compute_listen"),
    "utility": ("master",),
    "compute": ("aggregatorA",),
}


def load_daemon_config(path, role_override=None, warn=None):
    """Read ``csm_<role>.cfg`` into a ``DaemonConfig`` (``ConfigError`` when bad)."""
    reader = Reader(path, warn or default_warn)
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("csm"), dict):
        raise reader.error("csm", "the file must hold an object with a \"csm\" block")
    csm = data["csm"]
    reader.unknown(data, "", {"csm"})
    role = _role(reader, csm, role_override)
    _check_required(reader, csm, role)
    values = reader.model(csm, "csm", DaemonConfig)
    config = DaemonConfig(path=os.path.abspath(path), role=role, unused=tuple(reader.unused), **values)
    return attrs.evolve(
        config,
        node_name=config.node_name or socket.gethostname(),
        thread_pool_size=config.thread_pool_size or 1,
        log=_log(reader, csm, config.log),
        net=_net(reader, csm, config.net),
        bds=_bds(reader, config.bds),
        recurring_tasks=_recurring(reader, config.recurring_tasks),
        data_collection=_data_collection(reader, csm, config.data_collection),
    )


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


def _check_required(reader, csm, role):
    section = reader.section(csm, "csm.net")
    for name in REQUIRED_LINKS[role]:
        if name not in section:
            raise reader.error("csm.net." + name, "required for the %s role" % role)
    if role == "compute" and reader.endpoint(section, "csm.net", "aggregatorA") is None:
        raise reader.error("csm.net.aggregatorA", "a compute needs aggregatorA")


def _log(reader, csm, log):
    prefix = "csm.log"
    section = reader.section(csm, prefix)
    default = _level(reader, prefix + ".default_sev", log.default_sev, "info")
    levels = {sub: _level(reader, "%s.%s" % (prefix, sub), reader.value(section, prefix, sub, str, default),
                          default) for sub in SUBCOMPONENTS}
    return attrs.evolve(log, default_sev=default, levels=levels)


def _level(reader, key, value, default):
    if value.lower() in LOG_LEVELS:
        return value.lower()
    reader.warn("%s: %s: unknown log level %r, using %s" % (reader.path, key, value, default))
    return default


def _net(reader, csm, net):
    interval = net.heartbeat_interval
    if not 3 <= interval <= 3600:
        reader.warn("%s: csm.net.heartbeat_interval %d is outside 3..3600; using 15" % (reader.path, interval))
        net = attrs.evolve(net, heartbeat_interval=15)
    if net.max_message_size < 4096:
        raise reader.error("csm.net.max_message_size", "must be at least 4096 bytes")
    listen = net.local_client_listen
    net = attrs.evolve(net, local_client_listen=attrs.evolve(listen, permissions=listen.permissions or 0o777))
    raw = reader.section(reader.section(csm, "csm.net"), "csm.net.aggregatorB").get("host", "")
    if net.aggregatorB is not None and (" " in str(raw) or "_" in str(raw)):
        reader.warn("%s: csm.net.aggregatorB host %r looks like a template; single aggregator mode"
                    % (reader.path, raw))
        net = attrs.evolve(net, aggregatorB=None)
    net = attrs.evolve(net, masters=_masters(reader, reader.section(csm, "csm.net").get("masters")))
    a, b = net.aggregatorA, net.aggregatorB
    if a is not None and b is not None and (a.host, a.port) == (b.host, b.port):
        raise reader.error("csm.net.aggregatorB", "is the same as aggregatorA (%s:%d)" % (a.host, a.port))
    return net


def _masters(reader, raw):
    """``csm.net.masters``: a list of ``{"host", "port"}`` (beyond CAST)."""
    if raw in (None, ""):
        return ()
    if not isinstance(raw, list):
        raise reader.error("csm.net.masters", "expected a list of {\"host\", \"port\"}")
    masters = []
    for index, entry in enumerate(raw):
        name = "masters[%d]" % index
        endpoint = reader.endpoint({name: entry}, "csm.net", name)
        if endpoint is not None:
            masters.append(endpoint)
    return tuple(masters)


def _bds(reader, bds):
    host = (bds.host or "").strip()
    bds = attrs.evolve(bds, host=None if not host or host.upper() == "NONE" else host)
    if bds.host and not 1 <= bds.port <= 65535:
        raise reader.error("csm.bds.port", "expected a port number 1-65535")
    return bds


def _recurring(reader, tasks):
    recovery = tasks.soft_fail_recovery
    if tasks.enabled and recovery.enabled:
        key = "csm.recurring_tasks.soft_fail_recovery."
        if recovery.interval <= 0:
            raise reader.error(key + "interval", "must be more than 0")
        if recovery.retry <= 0:
            raise reader.error(key + "retry", "must be more than 0")
    return tasks


def _data_collection(reader, csm, collection):
    section = reader.section(csm, "csm.data_collection")
    granularity = collection.granularity if collection.granularity > 0.5 else 1.0
    return DataCollection(granularity, _buckets(reader, section))


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
            interval = duration(entry.get("execution_interval", ""))
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


def report_unused(config, log):
    """One line at start naming the CAST keys the file sets that this implementation does not use."""
    if config.unused:
        log.info("{path}: CAST keys read but not used here: {keys}", path=config.path,
                 keys=", ".join(config.unused))
