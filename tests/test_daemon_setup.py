"""Daemon start with a bad set-up: one line naming the file and key, exit 1, no traceback."""

import json
import os
import subprocess
import sys
import tempfile
import time

from twisted.trial.unittest import SynchronousTestCase

from csm.client import Client
from csm.cluster import PROJECT, free_port
from csm.net.certs import make_pki
from tests.clusters import held_port


def twistd_command(path):
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--nodaemon", "--pidfile=",
            "--logfile=" + path + ".twistd", "csm-utility", "--config", path]


class SetupTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="csm-setup-")
        self.socket = os.path.join(self.dir, "u.sock")

    def config(self, **changes):
        """A utility's config file (its master is nowhere: it starts anyway); ``changes`` by key path."""
        config = {"csm": {"role": "Utility", "node_name": "util-a",
                          "api_permission_file": self.write("acl.json", {"privileged_user_id": "root"}),
                          "api_configuration_file": self.write("api.cfg", {"csm_node_delete": 60}),
                          "log": {"fileLog": os.path.join(self.dir, "u.log")},
                          "net": {"local_client_listen": {"socket": self.socket},
                                  "master": {"host": "127.0.0.1", "port": free_port()}}}}
        for key, value in changes.items():
            *parents, last = key.split(".")
            block = config["csm"]
            for name in parents:
                block = block.setdefault(name, {})
            block[last] = value
        return self.write("u.cfg", config)

    def write(self, name, content):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))
        return path

    def start(self, path, expect_line):
        result = subprocess.run(twistd_command(path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=PROJECT), stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stderr.splitlines(), ["csm-utility: %s: %s" % (path, expect_line)], result.stderr)
        return result

    def tls(self):
        return make_pki(os.path.join(self.dir, "tls"))

    def test_ca_file_missing(self):
        missing = os.path.join(self.dir, "no-ca.pem")
        _ca, cred = self.tls()
        self.start(self.config(**{"net.ssl": {"ca_file": missing, "cred_pem": cred}}),
                   "csm.net.ssl.ca_file: cannot read %s: No such file or directory" % missing)
        self.assertFalse(os.path.exists(self.socket))

    def test_ca_file_not_pem(self):
        _ca, cred = self.tls()
        junk = self.write("junk.pem", "not a certificate\n")
        self.start(self.config(**{"net.ssl": {"ca_file": junk, "cred_pem": cred}}),
                   "csm.net.ssl.ca_file: %s is not a certificate in PEM format" % junk)

    def test_cred_pem_missing_or_without_its_key(self):
        ca, _cred = self.tls()
        missing = os.path.join(self.dir, "no-cred.pem")
        self.start(self.config(**{"net.ssl": {"ca_file": ca, "cred_pem": missing}}),
                   "csm.net.ssl.cred_pem: cannot read %s: No such file or directory" % missing)
        self.start(self.config(**{"net.ssl": {"ca_file": ca, "cred_pem": ca}}),
                   "csm.net.ssl.cred_pem: %s is not a certificate with its private key in PEM format" % ca)

    def test_file_log_in_a_missing_directory(self):
        log = os.path.join(self.dir, "no-such-dir", "u.log")
        self.start(self.config(**{"log.fileLog": log}),
                   "csm.log.fileLog: cannot write %s: No such file or directory" % log)

    def test_acl_that_is_not_json_stops_the_daemon(self):
        acl = self.write("bad.acl", '{"privileged_user_id": "root",\n "public": [}\n')
        self.start(self.config(api_permission_file=acl),
                   "csm.api_permission_file: %s:2:13: invalid JSON: Expecting value" % acl)
        self.assertFalse(os.path.exists(self.socket))

    def test_acl_that_is_not_utf8(self):
        acl = os.path.join(self.dir, "latin1.acl")
        with open(acl, "wb") as f:
            f.write(b'{"privileged_user_id": "r\xe9seau"}')
        self.start(self.config(api_permission_file=acl),
                   "csm.api_permission_file: %s: not UTF-8 text (byte 25)" % acl)

    def test_socket_where_no_directory_can_be_made(self):
        blocker = self.write("a-file", "")
        self.start(self.config(**{"net.local_client_listen.socket": os.path.join(blocker, "u.sock")}),
                   "csm.net.local_client_listen.socket: cannot make the directory %s: File exists" % blocker)

    def test_api_timeouts_that_are_not_json(self):
        api = self.write("bad.cfg", '{"csm_node_delete": 60,,}')
        self.start(self.config(api_configuration_file=api),
                   "csm.api_configuration_file: %s:1:24: invalid JSON: Expecting property name enclosed in "
                   "double quotes" % api)

    def test_master_port_in_use(self):
        port = held_port(self)
        path = self.write("m.cfg", {"csm": {
            "role": "Master", "node_name": "master-a", "db": {"host": "NONE"},
            "api_permission_file": self.write("acl.json", {"privileged_user_id": "root"}),
            "api_configuration_file": self.write("api.cfg", {}),
            "log": {"fileLog": os.path.join(self.dir, "m.log")},
            "net": {"local_client_listen": {"socket": self.socket},
                    "aggregator_listen": {"host": "127.0.0.1", "port": port},
                    "utility_listen": {"host": "127.0.0.1", "port": free_port()}}}})
        command = twistd_command(path)
        command[command.index("csm-utility")] = "csm-master"
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONPATH=PROJECT), stdin=subprocess.DEVNULL, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        line = "csm-master: %s: csm.net.aggregator_listen: cannot listen on 127.0.0.1:%d: Address already in use" % (
            path, port)
        self.assertEqual(result.stderr.splitlines(), [line])
        with open(path + ".twistd") as f:
            logged = f.read()
        self.assertIn(line, logged)
        self.assertNotIn("Traceback", logged)

    def test_metrics_and_rest_ports_in_use(self):
        """The Prometheus exporter's and the RAS REST daemon's ports are listeners as the others:
        taken, the daemon stops at start with one line (it ran on without them, after a traceback)."""
        port = held_port(self)
        for key in ("net.metrics_listen", "ras.rest"):
            self.start(self.config(**{key: {"host": "127.0.0.1", "port": port}}),
                       "csm.%s: cannot listen on 127.0.0.1:%d: Address already in use" % (key, port))

    def test_second_daemon_on_a_live_socket_refuses_and_leaves_it(self):
        path = self.config()
        first = subprocess.Popen(twistd_command(path), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=dict(os.environ, PYTHONPATH=PROJECT), stdin=subprocess.DEVNULL)
        self.addCleanup(first.wait, 30)
        self.addCleanup(first.terminate)
        deadline, logged = time.monotonic() + 60, ""
        while "local API listening on %s" % self.socket not in logged:
            self.assertIsNone(first.poll(), "the first daemon exited")
            self.assertLess(time.monotonic(), deadline, "no socket from the first daemon")
            time.sleep(0.1)
            if os.path.exists(os.path.join(self.dir, "u.log")):
                with open(os.path.join(self.dir, "u.log")) as f:
                    logged = f.read()
        self.start(path, "csm.net.local_client_listen.socket: %s is in use by a running daemon (pid %d, utility "
                         "util-a): stop it first, or give this daemon another socket" % (self.socket, first.pid))
        with Client(self.socket) as client:  # the first still answers on its socket
            self.assertEqual(client.call("ctrl_cmd", {"status": True})["status"]["pid"], first.pid)
        with open(os.path.join(self.dir, "u.log")) as f:
            self.assertTrue(f.read().startswith(logged))  # and its log was not truncated

    def test_a_dead_daemons_socket_is_replaced(self):
        import socket
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(self.socket)  # bound, never listening: what a killed daemon leaves
        stale.close()
        daemon = subprocess.Popen(twistd_command(self.config()), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=PROJECT),
                                  stdin=subprocess.DEVNULL)
        self.addCleanup(daemon.wait, 30)
        self.addCleanup(daemon.terminate)
        deadline = time.monotonic() + 60
        while True:
            try:
                with Client(self.socket) as client:
                    self.assertEqual(client.call("ctrl_cmd", {"status": True})["status"]["pid"], daemon.pid)
                break
            except Exception:
                self.assertIsNone(daemon.poll(), "the daemon exited")
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.2)
