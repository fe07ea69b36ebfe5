"""Daemon processes: bad config, role override, csm_ctrl_cmd, logs."""

import json
import os
import subprocess
import sys
import tempfile

from twisted.logger import LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from csm import logfile, logs
from csm.cluster import PROJECT, free_port
from csm.config import LogConfig
from tests.clusters import manhole_talk, shared_cluster


def twistd(*args, timeout=30):
    cmd = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--nodaemon",
           "--pidfile=", "--logfile=-"] + list(args)
    env = dict(os.environ, PYTHONPATH=PROJECT)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


class BadConfigTests(SynchronousTestCase):
    def test_bad_config_exits_before_binding(self):
        directory = tempfile.mkdtemp()
        sock = os.path.join(directory, "m.sock")
        port = free_port()
        path = os.path.join(directory, "bad.cfg")
        with open(path, "w") as f:
            json.dump({"csm": {"role": "Master", "net": {
                "heartbeat_interval": "often",
                "local_client_listen": {"socket": sock},
                "aggregator_listen": {"host": "127.0.0.1", "port": port},
                "utility_listen": {"host": "127.0.0.1", "port": free_port()}}}}, f)
        result = twistd("csm-master", "--config", path)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("csm-master: %s: csm.net.heartbeat_interval: expected an integer" % path, result.stderr)
        self.assertFalse(os.path.exists(sock))

    def test_invalid_json_names_line(self):
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "broken.cfg")
        with open(path, "w") as f:
            f.write('{\n "csm": {\n  "role": "Master",,\n }\n}\n')
        result = twistd("csm-master", "--config", path)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("%s:3:" % path, result.stderr)


class SchemaVersionTests(SynchronousTestCase):
    def test_master_refuses_an_old_schema_and_names_the_upgrade(self):
        import psycopg2
        from csm.db import schema
        from tests import dbfixture
        name, dsn = dbfixture.fresh_database(self, template="template0")
        connection = psycopg2.connect(dsn)
        with connection, connection.cursor() as cur:
            schema.install(cur, upto="19.0")
        connection.close()
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "m.cfg")
        with open(path, "w") as f:
            json.dump({"csm": {"role": "Master", "db": {"host": "127.0.0.1", "port": dbfixture.server().port,
                                                         "name": name, "user": "postgres"},
                               "net": {"local_client_listen": {"socket": os.path.join(directory, "m.sock")},
                                       "aggregator_listen": {"host": "127.0.0.1", "port": free_port()},
                                       "utility_listen": {"host": "127.0.0.1", "port": free_port()}}}}, f)
        result = twistd("csm-master", "--config", path)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("schema 19.0 is older than %s: run 'csm-db upgrade'" % schema.SCHEMA_VERSION, result.stderr)
        self.assertFalse(os.path.exists(os.path.join(directory, "m.sock")))


class RunningDaemonTests(SynchronousTestCase):
    def setUp(self):
        self.cluster = shared_cluster("tree", computes=2, aggregators=2, utilities=1, tls=True)

    def test_ctrl_cmd_changes_log_level(self):
        log = self.cluster.daemons["c02"].log
        self.assertNotIn("csmnet::debug", open(log).read())
        rc, out = self.cluster.cli("c02", "csm_ctrl_cmd", "--log.csmnet", "debug")
        self.assertEqual(rc, 0, out)
        self.assertIn("csmnet:", out)
        self.cluster.cli("c02", "csm_ctrl_cmd", "--status")
        self.cluster.wait_for(lambda: "csmnet::debug | link to" in open(log).read(), timeout=10,
                              what="a csmnet debug line")
        rc, out = self.cluster.cli("c02", "csm_ctrl_cmd", "--log.csmnet", "info")
        self.assertEqual(rc, 0, out)

    def test_manhole_status_of_a_running_daemon(self):
        out = manhole_talk(os.path.join(self.cluster.run_dir, "agg01.manhole"), b"status()['links'][0]\r", b"HAPPY")
        self.assertIn(b"'name': 'master'", out)
        out = manhole_talk(os.path.join(self.cluster.run_dir, "agg01.manhole"), b"status()['role']\r", b"aggregator'")
        self.assertIn(b"'aggregator'", out)

    def test_ctrl_cmd_status(self):
        rc, out = self.cluster.cli("agg01", "csm_ctrl_cmd", "--status", "--format", "json")
        self.assertEqual(rc, 0, out)
        status = json.loads(out)["status"]
        self.assertEqual(status["role"], "aggregator")
        names = [link["name"] for link in status["links"]]
        self.assertIn("master", names)
        self.assertEqual({link["state"] for link in status["links"]}, {"HAPPY"})

    def test_ctrl_cmd_memory(self):
        rc, out = self.cluster.cli("master", "csm_ctrl_cmd", "--dump.mem")
        self.assertEqual(rc, 0, out)
        self.assertIn("max_rss_kib:", out)

    def test_agg_reset_on_non_compute_refused(self):
        rc, out = self.cluster.cli("master", "csm_ctrl_cmd", "--agg.reset")
        self.assertEqual(rc, 9, out)


class RoleOverrideTests(SynchronousTestCase):
    def test_role_from_command_line(self):
        """A utility file started as ``--role c``: the compute keys are missing, so it names them."""
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "u.cfg")
        with open(path, "w") as f:
            json.dump({"csm": {"role": "Utility", "net": {
                "local_client_listen": {"socket": os.path.join(directory, "u.sock")},
                "master": {"host": "127.0.0.1", "port": free_port()}}}}, f)
        result = twistd("csm-utility", "--config", path, "--role", "compute")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("csm.net.aggregatorA", result.stderr)


class LogFileTests(SynchronousTestCase):
    def test_levels_and_rotation(self):
        directory = tempfile.mkdtemp()
        path = os.path.join(directory, "csm.log")
        publisher = LogPublisher()
        config = LogConfig(fileLog=path, rotationSize=2000, levels={"csmnet": "warning"})
        observer = logfile.install_file_log(config, publisher)
        logfile.apply_levels(config)
        self.addCleanup(logs.set_level, "csmnet", "info")
        net = logs.logger("csmnet")
        net._log.observer = publisher
        net.info("quiet line")
        net.warn("loud line {n}", n=1)
        self.assertNotIn("quiet", open(path).read())
        self.assertRegex(open(path).read(), r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6} csmnet::warning \| loud line 1")
        for n in range(100):
            net.warn("filler {n}", n=n)
        self.assertTrue(os.path.exists(path + ".1"))
        self.assertLessEqual(os.path.getsize(path), 2200)
        publisher.removeObserver(observer)
