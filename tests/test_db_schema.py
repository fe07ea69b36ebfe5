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
    def check_child(self, table, row, column, value):
        """Insert ``row``, set ``column`` to what it holds, then to ``value``, then delete:
        history gets I, U (only for the real change), D."""
        self.add_node()
        self.cur.execute("INSERT INTO %s (%s) VALUES (%s)" % (table, ", ".join(row), ", ".join(["%s"] * len(row))),
                         tuple(row.values()))
        self.cur.execute("UPDATE %s SET %s = %%s" % (table, column), (row[column],))
        self.cur.execute("UPDATE %s SET %s = %%s" % (table, column), (value,))
        self.cur.execute("DELETE FROM %s" % table)
        self.assertEqual(self.rows("SELECT operation, %s FROM %s_history ORDER BY history_time, operation DESC"
                                   % (column, table)),
                         [("I", row[column]), ("U", value), ("D", value)])

    def test_gpu_history(self):
        self.check_child("csm_gpu", {"serial_number": "s0", "node_name": "c01", "gpu_id": 0, "device_name": "H100",
                                     "inforom_image_version": "ir", "pci_bus_id": "0000:01", "uuid": "u0",
                                     "vbios": "vb"}, "vbios", "vb2")

    def test_processor_socket_history(self):
        self.check_child("csm_processor_socket", {"serial_number": "p0", "node_name": "c01", "discovered_cores": 22},
                         "discovered_cores", 20)

    def test_hca_history(self):
        self.check_child("csm_hca", {"serial_number": "h0", "node_name": "c01", "pci_bus_id": "0000:08",
                                     "guid": "0x1", "fw_ver": "16.1"}, "fw_ver", "16.2")

    def test_dimm_history(self):
        self.check_child("csm_dimm", {"serial_number": "d0", "node_name": "c01", "size": 32768,
                                      "physical_location": "DIMM 0"}, "physical_location", "DIMM 1")

    def test_ssd_history(self):
        self.check_child("csm_ssd", {"serial_number": "d1", "node_name": "c01", "size": 100, "fw_ver": "f1"},
                         "fw_ver", "f2")

    def test_ssd_wear_goes_to_wear_history(self):
        self.add_node()
        self.cur.execute("INSERT INTO csm_ssd (serial_number, node_name, size, wear_lifespan_used) VALUES ('d1', 'c01', 100, 1)")
        self.cur.execute("UPDATE csm_ssd SET wear_lifespan_used = 1 WHERE serial_number = 'd1'")
        self.assertEqual(self.count("csm_ssd_wear_history"), 0)
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


def _allocation(cur, node="c01"):
    cur.execute(
        "INSERT INTO csm_allocation (primary_job_id, launch_node_name, num_nodes, num_processors, num_gpus, "
        "projected_memory, state, type, job_type, user_name, user_id, user_group_id, user_script, begin_time, "
        "account, job_submit_time, time_limit, reservation) VALUES (7, %s, 1, 0, 0, 0, 'running', 'user-managed', "
        "'batch', 'u', 1000, 1000, '', now(), '', now(), 0, 'r1') RETURNING allocation_id", (node,))
    allocation = cur.fetchone()[0]
    cur.execute("INSERT INTO csm_allocation_node (allocation_id, node_name, state) VALUES (%s, %s, 'running')",
                (allocation, node))
    return allocation


def _step(cur, allocation, step, node="c01"):
    cur.execute("INSERT INTO csm_step (step_id, allocation_id, begin_time, status, executable, working_directory, "
                "argument, environment_variable, num_nodes, num_processors, num_gpus, projected_memory, num_tasks) "
                "VALUES (%s, %s, now(), 'running', '/bin/true', '/tmp', '', '', 1, 1, 0, 0, 1)", (step, allocation))
    cur.execute("INSERT INTO csm_step_node VALUES (%s, %s, %s)", (step, allocation, node))


class HistoryDumpTests(SchemaTestCase):
    def setUp(self):
        super().setUp()
        self.add_node()
        self.allocation = _allocation(self.cur)
        _step(self.cur, self.allocation, 1)
        _step(self.cur, self.allocation, 2)

    def test_step_end_keeps_its_status_and_statistics(self):
        self.cur.execute("SELECT fn_csm_step_history_dump(1, %s, %s)",
                         (self.allocation, '{"status": "completed", "exit_status": 3, "max_memory": 99, '
                          '"step_id": 42}'))
        self.assertEqual(self.rows("SELECT step_id, status, exit_status, max_memory, end_time IS NOT NULL "
                                   "FROM csm_step_history"), [(1, "completed", 3, 99, True)])
        self.assertEqual(self.rows("SELECT step_id, operation FROM csm_step_node_history"), [(1, "D")])
        self.assertEqual(self.rows("SELECT step_id FROM csm_step"), [(2,)])
        with self.assertRaises(psycopg2.Error):
            self.cur.execute("SELECT fn_csm_step_history_dump(1, %s, NULL)", (self.allocation,))

    def test_allocation_end_closes_steps_and_nodes(self):
        self.cur.execute("SELECT fn_csm_allocation_history_dump(%s, NULL, 0, 'complete')", (self.allocation,))
        self.assertEqual(self.rows("SELECT allocation_id, state, exit_status, reservation, end_time IS NOT NULL "
                                   "FROM csm_allocation_history"), [(self.allocation, "complete", 0, "r1", True)])
        self.assertEqual(self.rows("SELECT step_id, status, error_message FROM csm_step_history ORDER BY step_id"),
                         [(1, "running", "Removed by Allocation."), (2, "running", "Removed by Allocation.")])
        self.assertEqual(self.rows("SELECT node_name, operation FROM csm_allocation_node_history"), [("c01", "D")])
        self.assertEqual(self.count("csm_step_node_history"), 2)
        for table in ("csm_allocation", "csm_allocation_node", "csm_step", "csm_step_node"):
            self.assertEqual(self.count(table), 0, table)
        self.assertEqual(self.rows("SELECT state FROM csm_allocation_state_history"), [("running",)])
        with self.assertRaises(psycopg2.Error):
            self.cur.execute("SELECT fn_csm_allocation_history_dump(%s, NULL, 0, 'complete')", (self.allocation,))


class NodeStateFunctionTests(SchemaTestCase):
    def update(self, nodes, state, alteration, allowed=None, rec_id=None, msg_id=None):
        return [r[0] for r in self.rows("SELECT fn_csm_node_state_update(%s, %s, %s, %s::compute_node_states[], %s, %s)",
                                        nodes, state, alteration, allowed, rec_id, msg_id)]

    def test_changes_with_cause(self):
        for name in ("c01", "c02", "c03"):
            self.add_node(name, state="IN_SERVICE")
        self.cur.execute("UPDATE csm_node SET state = 'MAINTENANCE' WHERE node_name = 'c03'")
        self.assertEqual(self.update(["c01", "c02", "c03", "c99"], "SOFT_FAILURE", "RAS EVENT",
                                     ["DISCOVERED", "IN_SERVICE"], 5, "csm.status.down"), ["c01", "c02"])
        self.assertEqual(self.update(["c01"], "SOFT_FAILURE", "CSM API"), [])  # no change, no history
        self.assertEqual(self.update(["c03"], "IN_SERVICE", "SYSTEM ADMINISTRATOR"), ["c03"])
        self.assertEqual(self.rows("SELECT node_name, state, alteration, ras_rec_id, ras_msg_id "
                                   "FROM csm_node_state_history WHERE operation = 'U' ORDER BY history_time, node_name"),
                         [("c03", "MAINTENANCE", "CSM API", None, None),
                          ("c01", "SOFT_FAILURE", "RAS EVENT", 5, "csm.status.down"),
                          ("c02", "SOFT_FAILURE", "RAS EVENT", 5, "csm.status.down"),
                          ("c03", "IN_SERVICE", "SYSTEM ADMINISTRATOR", None, None)])
        self.assertEqual(self.rows("SELECT current_setting('csm.alteration', true)"), [("",)])


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
        self.assertEqual(schema.upgrade(cur), schema.SCHEMA_VERSION)
        schema.check_version(schema.current_version(cur))
        cur.execute("SELECT node_name, state FROM csm_node")
        self.assertEqual(cur.fetchall(), [("c01", "DISCOVERED")])
        cur.execute("SELECT msg_id, acked_by FROM csm_ras_event_action_view")
        self.assertEqual(cur.fetchall(), [("a.b.c", None)])
        cur.execute("UPDATE csm_node SET state = 'IN_SERVICE'")
        cur.execute("SELECT alteration FROM csm_node_state_history ORDER BY history_time DESC LIMIT 1")
        self.assertEqual(cur.fetchone(), ("CSM API",))
        cur.execute("SELECT version FROM csm_db_schema_version_history")
        self.assertEqual(sorted(cur.fetchall()), [(v,) for v in schema.VERSIONS[1:]])  # every version of the row, as all history tables

    def test_unknown_versions_refused(self):
        self.assertRaises(schema.SchemaError, schema.check_version, None)
        self.assertRaises(schema.SchemaError, schema.check_version, "18.0")
        schema.check_version(schema.SCHEMA_VERSION)
