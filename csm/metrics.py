"""Prometheus metrics of a daemon (``csm.net.metrics_listen``; off by default).

Every daemon exports who it is, its links and its API calls and latencies by
command; roles add their own families through ``daemon.metric_families()``
(the aggregator its computes' latest environmental values, the master its
node counts, RAS events and database state).
"""

import re

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

_NAME = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(*parts):
    return _NAME.sub("_", "_".join(p for p in parts if p)).lower()


class ApiStats:
    """API calls and latencies by command, for the router to feed."""

    def __init__(self, registry):
        self.registry = registry
        self.calls = Counter("csm_api_requests", "API requests handled or forwarded",
                             ["api", "result"], registry=registry)
        self.latency = Histogram("csm_api_request_seconds", "API request latency",
                                 ["api"], registry=registry,
                                 buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
        self._children = {}

    def observe(self, api, seconds, ok):
        children = self._children.get(api)
        if children is None:  # labels() takes a lock and builds a key: once per API
            children = self._children[api] = (self.calls.labels(api, "ok"), self.calls.labels(api, "error"),
                                               self.latency.labels(api))
        children[0 if ok else 1].inc()
        children[2].observe(seconds)

    def perf_data(self):
        """Calls and total seconds by API, from the registry (CAST's --dump_perf_data)."""
        data = {}
        for family in self.registry.collect():
            for sample in family.samples:
                api = sample.labels.get("api")
                if api is None:
                    continue
                entry = data.setdefault(api, {"ok": 0, "error": 0, "seconds": 0.0})
                if sample.name == "csm_api_requests_total":
                    entry[sample.labels["result"]] += int(sample.value)
                elif sample.name == "csm_api_request_seconds_sum":
                    entry["seconds"] = round(sample.value, 6)
        return data


class DaemonCollector:
    """Collects the daemon's state at scrape time."""

    def __init__(self, daemon):
        self.daemon = daemon

    def collect(self):
        daemon = self.daemon
        info = GaugeMetricFamily("csm_daemon_info", "The daemon's identity",
                                 labels=["role", "node", "version"])
        info.add_metric([daemon.role, daemon.node_name, daemon.info()["version"]], 1)
        yield info
        uptime = GaugeMetricFamily("csm_daemon_uptime_seconds", "Seconds since the daemon started")
        uptime.add_metric([], daemon.uptime())
        yield uptime
        links = GaugeMetricFamily("csm_link_up", "1 when a daemon link is connected and HAPPY",
                                  labels=["link", "peer", "state"])
        for name, link in daemon.links():
            state = link.state if link is not None else "DISCONNECTED"
            links.add_metric([name, link.peer_node if link else "", state], 1 if state == "HAPPY" else 0)
        yield links
        yield from daemon.metric_families()


class ComputeLinks:
    """``csm_compute_aggregator_links{compute}`` on the master: how many aggregators reach each
    compute (2 redundant, 1 without redundancy, 0 down), for every compute seen since the
    master started (a compute that goes away stays at 0 rather than vanishing)."""

    def __init__(self):
        self.seen = set()

    def family(self, computes):
        """The gauge from the node set's ``{node: ComputeView}``."""
        self.seen.update(computes)
        links = GaugeMetricFamily("csm_compute_aggregator_links",
                                  "Aggregators that reach a compute (2: redundant, 1: no redundancy, 0: down)",
                                  labels=["compute"])
        for node in sorted(self.seen):
            view = computes.get(node)
            links.add_metric([node], len(view.aggregators) if view is not None else 0)
        return links


def make_registry(daemon):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    return registry


def metrics_service(reactor, endpoint, registry, config_key=None):
    """A web server for ``/metrics`` on ``endpoint`` (host, port); the web server is imported
    only here, by the daemons that export (off by default)."""
    from csm.metrics_http import metrics_service as service
    return service(reactor, endpoint, registry, config_key)


def numeric_fields(data):
    """(field, value) pairs of a record's numeric data."""
    for key, value in (data or {}).items():
        if isinstance(value, bool):
            yield key, float(value)
        elif isinstance(value, (int, float)):
            yield key, float(value)


#: csm-gpu-counters fields under dcgm-exporter's names (what Grafana dashboards expect)
DCGM_NAMES = {
    "temperature": ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (C)"),
    "power_usage": ("DCGM_FI_DEV_POWER_USAGE", "Power draw (W)"),
    "energy": ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "Total energy since boot (mJ)"),
    "gpu_utilization": ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (%)"),
    "memory_utilization": ("DCGM_FI_DEV_MEM_COPY_UTIL", "Memory utilization (%)"),
    "memory_used": ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (bytes)"),
    "sm_clock": ("DCGM_FI_DEV_SM_CLOCK", "SM clock (MHz)"),
    "memory_clock": ("DCGM_FI_DEV_MEM_CLOCK", "Memory clock (MHz)"),
    "ecc_volatile_uncorrected": ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "Uncorrected ECC errors since reset"),
    "ecc_volatile_corrected": ("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "Corrected ECC errors since reset"),
}


def environment_families(latest):
    """Gauges of the latest records per node: GPU counters under dcgm-exporter's names
    (labels gpu, UUID, Hostname), everything else as ``csm_env_<type>_<field>``."""
    families = {}

    def gauge(name, help_text, labels):
        if name not in families:
            families[name] = GaugeMetricFamily(name, help_text, labels=list(labels))
        return families[name]

    for node, records in sorted(latest.items()):
        for record in records.values():
            data = record.get("data") or {}
            if record["type"] == "csm-gpu-counters":
                labels = [str(data.get("gpu_id", "")), str(data.get("uuid") or data.get("serial_number") or ""), node]
                for field, value in numeric_fields(data):
                    if field in DCGM_NAMES:
                        name, help_text = DCGM_NAMES[field]
                        gauge(name, help_text, ("gpu", "UUID", "Hostname")).add_metric(labels, value)
                continue
            for field, value in numeric_fields(data):
                name = metric_name("csm_env", record["type"], field)
                gauge(name, "%s %s" % (record["type"], field), ("Hostname",)).add_metric([node], value)
    return list(families.values())
