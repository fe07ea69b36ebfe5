"""csm-db against a real PostgreSQL."""

import io
import json
import os
import tempfile

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.db import admin, schema
from tests import dbfixture

MASTER_CFG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "csm_master.cfg")


class AdminTests(SynchronousTestCase):
    def setUp(self):
        self.server = dbfixture.server()
        self.dbname = "csmdb_%d_%d" % (os.getpid(), id(self) % 100000)
        self.base = ["--port", str(self.server.port), "--dbname", self.dbname, "--user", "csmadm"]
        self.addCleanup(dbfixture.drop_database, self.dbname)

    def run_cli(self, *args):
        out, self.err = io.StringIO(), io.StringIO()
        rc = admin.main(self.base + list(args), out, self.err)
        return rc, out.getvalue()

    def assertOneLineError(self, text):
        lines = self.err.getvalue().splitlines()
        self.assertEqual(len(lines), 1, lines)
        self.assertIn(text, lines[0])

    def query(self, statement, *args):
        return self.server.query(statement, args, dbname=self.dbname)

    def test_create_installs_schema_and_ras_types(self):
        rc, out = self.run_cli("create")
        self.assertEqual(rc, 0, out)
        self.assertIn("schema %s" % schema.SCHEMA_VERSION, out)
        self.assertEqual(self.query("SELECT version FROM csm_db_schema_version"), [(schema.SCHEMA_VERSION,)])
        count = self.query("SELECT count(*) FROM csm_ras_type")[0][0]
        self.assertGreater(count, 30)
        self.assertEqual(self.query("SELECT set_state FROM csm_ras_type WHERE msg_id = 'csm.status.down'"),
                         [("SOFT_FAILURE",)])
        rc, _ = self.run_cli("create")
        self.assertEqual(rc, 1)
        self.assertOneLineError("already exists")

    def test_load_ras_types_twice_is_idempotent_and_audited(self):
        self.run_cli("create", "--no-ras-types")
        path = os.path.join(tempfile.mkdtemp(), "types.csv")
        with open(path, "w") as f:
            f.write("msg_id,severity,message,description,control_action,threshold_count,threshold_period,"
                    "enabled,set_state,visible_to_users\n"
                    "site.test.one,WARNING,\"Problem on $(location_name)\",d,NONE,1,0,true,,true\n"
                    "site.test.two,FATAL,\"Bad $(location_name), really\",d,NONE,3,10,true,SOFT_FAILURE,false\n")
        rc, out = self.run_cli("load-ras-types", path)
        self.assertEqual(rc, 0, out)
        self.assertIn("2 inserted, 0 updated, 0 unchanged", out)
        rc, out = self.run_cli("load-ras-types", path)
        self.assertIn("0 inserted, 0 updated, 2 unchanged", out)
        self.assertEqual(self.query("SELECT count(*) FROM csm_ras_type_audit")[0][0], 2)
        with open(path, "a") as f:
            f.write("site.test.one,FATAL,\"Problem on $(location_name)\",d,NONE,1,0,true,,true\n")
        rc, out = self.run_cli("load-ras-types", path)
        self.assertIn("0 inserted, 1 updated, 2 unchanged", out)  # the last line wins
        self.assertEqual(self.query("SELECT operation, severity FROM csm_ras_type_audit WHERE msg_id = 'site.test.one' "
                                    "ORDER BY msg_id_seq"), [("I", "WARNING"), ("U", "FATAL")])

    def test_bad_csv_names_line(self):
        self.run_cli("create", "--no-ras-types")
        path = os.path.join(tempfile.mkdtemp(), "bad.csv")
        with open(path, "w") as f:
            f.write("a.b.c,LOUD,m,d,NONE,1,0,true,,true\n")
        rc, _ = self.run_cli("load-ras-types", path)
        self.assertEqual(rc, 1)
        self.assertOneLineError("bad.csv:1: severity 'LOUD'")
        self.assertRaises(admin.AdminError, admin.parse_ras_types, path)

    def test_archive_and_delete(self):
        self.run_cli("create", "--no-ras-types")
        for n in range(5):
            self.query("INSERT INTO csm_node (node_name, state, type) VALUES (%s, 'DISCOVERED', 'compute')", "n%d" % n)
        directory = tempfile.mkdtemp()
        rc, out = self.run_cli("archive", "--count", "3", "--dir", directory)
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.query("SELECT count(*) FROM csm_node_history WHERE archive_history_time IS NOT NULL")[0][0], 3)
        files = [f for f in os.listdir(directory) if f.startswith("csm_node_history.archive.")]
        lines = [json.loads(line) for line in open(os.path.join(directory, files[0]))]
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[0]["type"], "db-csm_node_history")
        self.assertIn(lines[0]["data"]["node_name"], {"n0", "n1", "n2", "n3", "n4"})
        self.run_cli("archive", "--count", "3", "--dir", directory)
        self.assertEqual(self.query("SELECT count(*) FROM csm_node_history WHERE archive_history_time IS NULL")[0][0], 0)
        rc, out = self.run_cli("delete-archived", "--older-than", "60")
        self.assertEqual(self.query("SELECT count(*) FROM csm_node_history")[0][0], 5)  # too recent
        rc, out = self.run_cli("delete-archived", "--older-than", "0")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.query("SELECT count(*) FROM csm_node_history")[0][0], 0)
        self.assertEqual(self.query("SELECT count(*) FROM csm_node")[0][0], 5)

    def test_drop_refuses_while_connected(self):
        self.run_cli("create", "--no-ras-types")
        held = psycopg2.connect(self.server.dsn_for(self.dbname))
        self.addCleanup(held.close)
        rc, _ = self.run_cli("drop")
        self.assertEqual(rc, 1)
        self.assertOneLineError("1 connection(s) to %s are open" % self.dbname)
        self.assertEqual(self.query("SELECT 1"), [(1,)])
        rc, out = self.run_cli("drop", "--force")
        self.assertEqual(rc, 0, out)

    def test_truncate_keeps_ras_types(self):
        self.run_cli("create")
        self.query("INSERT INTO csm_node (node_name, state, type) VALUES ('n1', 'DISCOVERED', 'compute')")
        rc, out = self.run_cli("truncate")
        self.assertEqual(rc, 0, out)
        self.assertEqual(self.query("SELECT count(*) FROM csm_node")[0][0], 0)
        self.assertGreater(self.query("SELECT count(*) FROM csm_ras_type")[0][0], 0)

    def test_connection_settings_from_dsn_and_config(self):
        self.run_cli("create", "--no-ras-types")
        out = io.StringIO()
        dsn = "host=127.0.0.1 port=%d dbname=%s user=csmadm" % (self.server.port, self.dbname)
        self.assertEqual(admin.main(["--dsn", dsn, "stats"], out), 0)
        self.assertIn("schema version: %s" % schema.SCHEMA_VERSION, out.getvalue())
        self.assertIn("csm_node ", out.getvalue())
        with open(MASTER_CFG) as f:
            config = json.load(f)
        config["csm"]["db"].update(port=self.server.port, name=self.dbname, user="csmadm")
        path = os.path.join(tempfile.mkdtemp(), "csm_master.cfg")
        with open(path, "w") as f:
            json.dump(config, f)
        self.base = ["--config", path]
        rc, out = self.run_cli("stats")
        self.assertEqual(rc, 0, out)
        rc, _ = self.run_cli("--dbname", "no_such_db", "stats")
        self.assertEqual(rc, 1)
        self.assertOneLineError("cannot connect to no_such_db")
        with open(path, "w") as f:
            f.write("{not json")
        rc, _ = self.run_cli("stats")
        self.assertEqual(rc, 1)
        self.assertOneLineError("invalid JSON")

    def test_upgrade_from_19_0(self):
        dbfixture.admin_execute("CREATE DATABASE %s" % self.dbname)
        connection = psycopg2.connect(self.server.dsn_for(self.dbname))
        with connection, connection.cursor() as cur:
            schema.install(cur, upto="19.0")
            cur.execute("INSERT INTO csm_node (node_name, state, type) VALUES ('n1', 'IN_SERVICE', 'compute')")
        connection.close()
        self.base[-1] = "postgres"
        rc, out = self.run_cli("upgrade")
        self.assertEqual((rc, out), (0, "schema 19.0 -> %s\n" % schema.SCHEMA_VERSION))
        rc, out = self.run_cli("upgrade")
        self.assertEqual((rc, out), (0, "schema is %s already\n" % schema.SCHEMA_VERSION))
        self.assertEqual(self.query("SELECT node_name, state FROM csm_node"), [("n1", "IN_SERVICE")])

    def test_ras_events_are_archived_like_history(self):
        self.run_cli("create")
        self.query("INSERT INTO csm_ras_event_action (msg_id, msg_id_seq, time_stamp, master_time_stamp, location_name) "
                   "SELECT msg_id, max(msg_id_seq), now(), now(), 'c01' FROM csm_ras_type_audit "
                   "WHERE msg_id = 'csm.status.down' GROUP BY msg_id")
        directory = tempfile.mkdtemp()
        rc, out = self.run_cli("archive", "--dir", directory)
        self.assertEqual(rc, 0, out)
        [name] = [f for f in os.listdir(directory) if f.startswith("csm_ras_event_action.")]
        [line] = [json.loads(line) for line in open(os.path.join(directory, name))]
        self.assertEqual((line["type"], line["data"]["location_name"]), ("db-csm_ras_event_action", "c01"))
        self.run_cli("delete-archived", "--older-than", "0")
        self.assertEqual(self.query("SELECT count(*) FROM csm_ras_event_action")[0][0], 0)
        self.assertGreater(self.query("SELECT count(*) FROM csm_ras_type_audit")[0][0], 0)
