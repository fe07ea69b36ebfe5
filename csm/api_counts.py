"""API calls and seconds by command, kept in plain counters where no Prometheus exporter is
configured (``csm.net.metrics_listen`` unset, the default): ``csm_ctrl_cmd --dump_perf_data``
reads them, and prometheus-client is never imported (a compute daemon saves ~2 MB; csm-sim
a registry per simulated node)."""


class ApiCounts:
    """What ``csm.metrics.ApiStats`` counts, for the router to feed."""

    def __init__(self):
        self._by_api = {}

    def observe(self, api, seconds, ok):
        entry = self._by_api.get(api)
        if entry is None:
            entry = self._by_api[api] = [0, 0, 0.0]
        entry[0 if ok else 1] += 1
        entry[2] += seconds

    def perf_data(self):
        """Calls and total seconds by API (CAST's --dump_perf_data)."""
        return {api: {"ok": ok, "error": error, "seconds": round(seconds, 6)}
                for api, (ok, error, seconds) in self._by_api.items()}
