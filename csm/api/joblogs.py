"""The master's transaction log and allocation metrics log (``csm.log`` keys), as JSON lines.

Transaction records: ``{"type": "allocation"|"allocation-step", "traceid", "uid",
"timestamp", "data"}`` on every allocation create, delete and state change and
every step begin and end. Metrics records, per node at an allocation's end:
``allocation-cpu`` (busy ns per CPU) and ``allocation-gpu`` (per GPU: busy µs and
the memory high-water mark).
"""

import time

from csm.logfile import JsonLines


def _stamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class JobLogs:
    """Both logs of one master; a log whose file is ``none`` or that is turned off writes nothing."""

    def __init__(self, log_config, clock=None):
        def open_log(enabled, path, size):
            return JsonLines(path, size, clock) if enabled and path and path.lower() != "none" else None
        self.transactions = open_log(log_config.transaction, log_config.transaction_file,
                                     log_config.transaction_rotation_size)
        self.metrics = open_log(log_config.allocation_metrics, log_config.allocation_metrics_file,
                                log_config.allocation_metrics_rotation_size)

    def transaction(self, kind, uid, traceid, data):
        if self.transactions is not None:
            self.transactions.write({"type": kind, "traceid": traceid, "uid": uid, "timestamp": _stamp(),
                                     "data": data})

    def allocation_metrics(self, allocation_id, results):
        """``results``: a multicast's {node: result} whose outputs carry ``cpus`` and ``gpus``."""
        if self.metrics is None:
            return
        stamp = _stamp()
        for node, result in sorted(results.items()):
            output = result.get("output") or {}
            if result.get("errcode") or not output:
                continue
            for gpu in output.get("gpus") or ():
                self.metrics.write({"type": "allocation-gpu", "timestamp": stamp, "source": node,
                                    "data": dict(gpu, allocation_id=allocation_id)})
            cpus = output.get("cpus") or {}
            if cpus:
                self.metrics.write({"type": "allocation-cpu", "timestamp": stamp, "source": node,
                                    "data": dict(cpus, allocation_id=allocation_id)})

    def flush(self):
        for log in (self.transactions, self.metrics):
            if log is not None:
                log.flush()

    def close(self):
        for log in (self.transactions, self.metrics):
            if log is not None:
                log.close()
