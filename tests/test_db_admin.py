"""csm-db against a real PostgreSQL."""

import io
import json
import os
import tempfile

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.db import admin
from tests import dbfixture


class AdminTests(SynchronousTestCase):
    def setUp(self):
        self.server = dbfixture.server()
        self.dbname = "csmdb_%d_%d" % (os.getpid(), id(self) % 100000)
        self.base = ["--port", str(self.server.port), "--dbname", self.dbname, "--user", "csmadm"]
        self.addCleanup(dbfixture.drop_database, self.dbname)

    def run_cli(self, *args):
        out = io.StringIO()
        rc = admin.main(self.base + list(args), out)
        return rc, out.getvalue()

    def query(self, statement, *args):
        connection = psycopg2.connect(self.server.dsn_for(self.dbname))
        try:
            with connection, connection.cursor() as cur:
                cur.execute(statement, args)
                return cur.fetchall() if cur.description else None
        finally:
            connection.close()

    def test_create_installs_schema_and_ras_types(self):
        rc, out = self.run_cli("create")
        self.assertEqual(rc, 0, out)
        self.assertIn("schema 19.1", out)
        self.assertEqual(self.query("SELECT version FROM csm_db_schema_version"), [("19.1",)])
        count = self.query("SELECT count(*) FROM csm_ras_type")[0][0]
        self.assertGreater(count, 30)
        self.assertEqual(self.query("SELECT set_state FROM csm_ras_type WHERE msg_id = 'csm.status.down'"),
                         [("SOFT_FAILURE",)])
        rc, _ = self.run_cli("create")
        self.assertEqual(rc, 1)  # exists already

    def test_load_ras_types_twice_is_idempotent_and_audited(self):
        self.run_cli("create", "--no-ras-types")
        path = os.path.join(tempfile.mkdtemp(), "types.csv")
        with open(path, "w") as f:
            f.write("#msg_id,severity,message,description,control_action,threshold_count,threshold_period,"
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
