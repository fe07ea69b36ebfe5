"""Prometheus beside a local CSM tree (``csm-demo`` and the tests).

Writes a file-based service discovery file naming every daemon's ``/metrics``
endpoint (labels ``csm_role`` and ``csm_node``, which the shipped rules in
``conf/prometheus/`` expect), a server config that scrapes it and loads those
rules, and runs Debian's ``prometheus`` on loopback with its data in a folder
of the run directory.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request

from csm import exitcleanup
from csm.cluster import PROJECT, free_port, terminate

RULES = os.path.join(PROJECT, "conf", "prometheus", "csm_rules.yml")
DASHBOARD = os.path.join(PROJECT, "conf", "prometheus", "csm_overview.json")
#: The port Prometheus usually has; the demo takes it when it is free.
DEFAULT_PORT = 9090
_FOR = re.compile(r"(?m)^([ \t]+for:)[ \t]*\S+[ \t]*$")


def binary():
    """The ``prometheus`` program, or None when it is not installed."""
    return shutil.which("prometheus")


def targets(cluster):
    """Service discovery entries for the daemons of ``cluster`` that export metrics."""
    entries = []
    for daemon in cluster.daemons.values():
        endpoint = daemon.config["csm"]["net"].get("metrics_listen")
        if endpoint:
            entries.append({"targets": ["%s:%d" % (endpoint["host"], endpoint["port"])],
                            "labels": {"csm_role": daemon.role, "csm_node": daemon.name}})
    return entries


def write_targets(path, cluster):
    """Write the service discovery file atomically (Prometheus re-reads it on change)."""
    with open(path + ".tmp", "w") as f:
        json.dump(targets(cluster), f, indent=2)
    os.replace(path + ".tmp", path)
    return path


def rules_with_hold(source, destination, hold):
    """A copy of the rules file ``source`` with every alert's ``for:`` set to ``hold``
    (tests wait seconds, not the minutes a site wants)."""
    with open(source) as f:
        text = f.read()
    with open(destination, "w") as f:
        f.write(_FOR.sub(r"\1 %s" % hold, text))
    return destination


class PrometheusServer:
    """A ``prometheus`` process scraping the daemons listed in ``targets_file``."""

    def __init__(self, directory, targets_file, port=None, interval="5s", rules=(RULES,), program=None):
        self.directory = directory
        self.targets_file = targets_file
        self.port = port or free_port()
        self.interval = interval
        self.rules = list(rules)
        self.program = program or binary()
        self.config = os.path.join(directory, "prometheus.yml")
        self.log = os.path.join(directory, "prometheus.log")
        self.process = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def write_config(self):
        config = {"global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
                  "rule_files": self.rules,
                  "scrape_configs": [{"job_name": "csm", "file_sd_configs": [
                      {"files": [self.targets_file], "refresh_interval": self.interval}]}]}
        with open(self.config, "w") as f:
            json.dump(config, f, indent=2)  # JSON is YAML

    def start(self, timeout=30.0):
        """Start Prometheus and wait until it answers ``/-/ready``."""
        if self.program is None:
            raise RuntimeError("prometheus is not installed (Debian's 'prometheus' package)")
        os.makedirs(self.directory, exist_ok=True)
        self.write_config()
        exitcleanup.register(self.stop)
        cmd = [self.program, "--config.file=" + self.config,
               "--storage.tsdb.path=" + os.path.join(self.directory, "data"),
               "--web.listen-address=127.0.0.1:%d" % self.port]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(cmd, cwd=self.directory, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=log, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:  # not ready, exited, or Ctrl-C: leave no process behind
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("prometheus exited with %s; see %s" % (self.process.returncode, self.log))
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prometheus was not ready within %gs; see %s" % (timeout, self.log))

    def stop(self, timeout=15.0):
        """SIGTERM (SIGKILL after ``timeout``); the exit status, or None if never started."""
        exitcleanup.unregister(self.stop)
        return None if self.process is None else terminate(self.process, timeout)


def port_free(port):
    """Whether nothing listens on loopback ``port``."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def targets_beside(cluster):
    """Write ``cluster``'s service discovery file into ``<run_dir>/prometheus``; its path."""
    directory = os.path.join(cluster.run_dir, "prometheus")
    os.makedirs(directory, exist_ok=True)
    return write_targets(os.path.join(directory, "csm_targets.json"), cluster)


def server_beside(cluster, targets_file, port=DEFAULT_PORT):
    """A started Prometheus scraping ``targets_file``, its files in ``<run_dir>/prometheus``,
    on ``port`` when that is free (RuntimeError when it does not start)."""
    server = PrometheusServer(os.path.join(cluster.run_dir, "prometheus"), targets_file,
                              port=port if port_free(port) else None)
    return server.start()
