"""The schema against a real PostgreSQL: history triggers, enums, migration."""

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.db import schema
from tests import dbfixture


class SchemaTestCase(SynchronousTestCase):
    def setUp(self):
        self.name, self.dsn = dbfixture.fresh_database(self)
        self.db = dbfixture.connect(self.dsn)
        self.addCleanup(self.db.close)
        self.cur = self.db.cursor()

    def rows(self, query, *args):
        self.cur.execute(query, args)
        return self.cur.fetchall()

    def count(self, table):
        return self.rows("SELECT count(*) FROM %s" % table)[0][0]

    def add_node(self, name="c01", state="DISCOVERED"):
        self.cur.execute("INSERT INTO csm_node (node_name, state, type, machine_model) VALUES (%s, %s, 'compute', 'm1')",
                         (name, state))


class NodeHistoryTests(SchemaTestCase):
    def test_insert_update_delete_write_history(self):
        self.add_node()
        self.cur.execute("UPDATE csm_node SET comment = 'rack 3' WHERE node_name = 'c01'")
        self.cur.execute("DELETE FROM csm_node WHERE node_name = 'c01'")
        self.assertEqual(self.rows("SELECT operation, comment FROM csm_node_history ORDER BY history_time, operation DESC"),
                         [("I", None), ("U", "rack 3"), ("D", "rack 3")])

    def test_update_without_change_writes_nothing(self):
        self.add_node()
        self.cur.execute("UPDATE csm_node SET comment = NULL, machine_model = 'm1' WHERE node_name = 'c01'")
        self.assertEqual(self.count("csm_node_history"), 1)

    def test_update_time_stamped(self):
        self.add_node()
        self.cur.execute("UPDATE csm_node SET comment = 'x' WHERE node_name = 'c01'")
        self.assertIsNotNone(self.rows("SELECT update_time FROM csm_node")[0][0])

    def test_state_history_only_on_change_with_cause(self):
        self.add_node()
        self.cur.execute("UPDATE csm_node SET state = 'DISCOVERED' WHERE node_name = 'c01'")
        self.cur.execute("UPDATE csm_node SET state = 'IN_SERVICE' WHERE node_name = 'c01'")
        self.cur.execute("BEGIN; SELECT set_config('csm.alteration', 'RAS EVENT', true), "
                         "set_config('csm.ras_rec_id', '42', true), set_config('csm.ras_msg_id', 'csm.status.down', true);"
                         "UPDATE csm_node SET state = 'SOFT_FAILURE' WHERE node_name = 'c01'; COMMIT")
        self.assertEqual(self.rows("SELECT state, operation, alteration, ras_rec_id, ras_msg_id FROM csm_node_state_history "
                                   "ORDER BY history_time"),
                         [("DISCOVERED", "I", "CSM INVENTORY", None, None),
                          ("IN_SERVICE", "U", "CSM API", None, None),
                          ("SOFT_FAILURE", "U", "RAS EVENT", 42, "csm.status.down")])
        # a state change is not a csm_node_history row
        self.assertEqual(self.count("csm_node_history"), 1)

    def test_enum_rejects_bad_state(self):
        with self.assertRaises(psycopg2.DataError):
            self.add_node(state="BROKEN")

    def test_blank_node_name_rejected(self):
        with self.assertRaises(psycopg2.IntegrityError):
            self.add_node(name="  ")


class ChildHistoryTests(SchemaTestCase):
    def test_gpu_history(self):
        self.add_node()
        self.cur.execute("INSERT INTO csm_gpu VALUES ('s0', 'c01', 0, 'H100', 'ir', 80, '0000:01', 'u0', 'vb')")
        self.cur.execute("UPDATE csm_gpu SET vbios = 'vb' WHERE gpu_id = 0")
        self.cur.execute("UPDATE csm_gpu SET vbios = 'vb2' WHERE gpu_id = 0")
        self.cur.execute("DELETE FROM csm_gpu")
        self.assertEqual(self.rows("SELECT operation, vbios FROM csm_gpu_history ORDER BY history_time, operation DESC"),
                         [("I", "vb"), ("U", "vb2"), ("D", "vb2")])

    def test_ssd_wear_goes_to_wear_history(self):
        self.add_node()
        self.cur.execute("INSERT INTO csm_ssd (serial_number, node_name, size, wear_lifespan_used) VALUES ('d1', 'c01', 100, 1)")
        self.cur.execute("UPDATE csm_ssd SET wear_lifespan_used = 1 WHERE serial_number = 'd1'")
        self.cur.execute("UPDATE csm_ssd SET wear_lifespan_used = 2 WHERE serial_number = 'd1'")
        self.assertEqual(self.rows("SELECT wear_lifespan_used FROM csm_ssd_wear_history"), [(2.0,)])
        self.assertEqual(self.rows("SELECT operation FROM csm_ssd_history"), [("I",)])
        self.cur.execute("UPDATE csm_ssd SET fw_ver = 'f2' WHERE serial_number = 'd1'")
        self.assertEqual(self.rows("SELECT operation FROM csm_ssd_history ORDER BY history_time"), [("I",), ("U",)])


class AllocationHistoryTests(SchemaTestCase):
    def test_state_history_and_node_history_on_delete(self):
        self.add_node()
        self.cur.execute(
            "INSERT INTO csm_allocation (primary_job_id, launch_node_name, num_nodes, num_processors, num_gpus, "
            "projected_memory, state, type, job_type, user_name, user_id, user_group_id, user_script, begin_time, "
            "account, job_submit_time, time_limit) VALUES (1, 'c01', 1, 0, 0, 0, 'staging-in', 'user-managed', "
            "'batch', 'u', 1000, 1000, '', now(), '', now(), 0) RETURNING allocation_id")
        allocation = self.cur.fetchone()[0]
        self.cur.execute("UPDATE csm_allocation SET state = 'staging-in'")
        self.cur.execute("UPDATE csm_allocation SET state = 'running'")
        self.cur.execute("INSERT INTO csm_allocation_node (allocation_id, node_name, state) VALUES (%s, 'c01', 'running')",
                         (allocation,))
        self.cur.execute("DELETE FROM csm_allocation_node")
        self.assertEqual(self.rows("SELECT state FROM csm_allocation_state_history ORDER BY history_time"),
                         [("staging-in",), ("running",)])
        self.assertEqual(self.rows("SELECT node_name, operation FROM csm_allocation_node_history"), [("c01", "D")])


class RasTypeAuditTests(SchemaTestCase):
    def test_audit_only_on_change(self):
        before = self.count("csm_ras_type_audit")
        self.cur.execute("UPDATE csm_ras_type SET enabled = enabled WHERE msg_id = 'csm.status.up'")
        self.assertEqual(self.count("csm_ras_type_audit"), before)
        self.cur.execute("UPDATE csm_ras_type SET enabled = false WHERE msg_id = 'csm.status.up'")
        self.assertEqual(self.rows("SELECT operation, enabled FROM csm_ras_type_audit ORDER BY msg_id_seq DESC LIMIT 1"),
                         [("U", False)])

    def test_severity_enum(self):
        with self.assertRaises(psycopg2.DataError):
            self.cur.execute("INSERT INTO csm_ras_type (msg_id, severity) VALUES ('x.y.z', 'LOUD')")


class MigrationTests(SynchronousTestCase):
    def test_19_0_to_19_1_on_a_populated_database(self):
        name, dsn = dbfixture.fresh_database(self, template="template0")
        db = dbfixture.connect(dsn)
        self.addCleanup(db.close)
        cur = db.cursor()
        schema.install(cur, upto="19.0")
        self.assertEqual(schema.current_version(cur), "19.0")
        cur.execute("INSERT INTO csm_node (node_name, state, type) VALUES ('c01', 'DISCOVERED', 'compute')")
        cur.execute("INSERT INTO csm_ras_type (msg_id, severity) VALUES ('a.b.c', 'INFO')")
        cur.execute("INSERT INTO csm_ras_event_action (msg_id, msg_id_seq, time_stamp, master_time_stamp, location_name) "
                    "SELECT 'a.b.c', max(msg_id_seq), now(), now(), 'c01' FROM csm_ras_type_audit")
        self.assertRaises(schema.SchemaError, schema.check_version, "19.0")
        self.assertEqual(schema.upgrade(cur), "19.1")
        schema.check_version(schema.current_version(cur))
        cur.execute("SELECT node_name, state FROM csm_node")
        self.assertEqual(cur.fetchall(), [("c01", "DISCOVERED")])
        cur.execute("SELECT msg_id, acked_by FROM csm_ras_event_action_view")
        self.assertEqual(cur.fetchall(), [("a.b.c", None)])
        cur.execute("UPDATE csm_node SET state = 'IN_SERVICE'")
        cur.execute("SELECT alteration FROM csm_node_state_history ORDER BY history_time DESC LIMIT 1")
        self.assertEqual(cur.fetchone(), ("CSM API",))
        cur.execute("SELECT version FROM csm_db_schema_version_history")
        self.assertEqual(cur.fetchall(), [("19.1",)])  # every version of the row, as all history tables

    def test_unknown_versions_refused(self):
        self.assertRaises(schema.SchemaError, schema.check_version, None)
        self.assertRaises(schema.SchemaError, schema.check_version, "18.0")
        schema.check_version(schema.SCHEMA_VERSION)
