"""Config files: the shipped ones load, and every kind of bad input is named."""

import json
import os
import tempfile
from types import SimpleNamespace

import attrs
from twisted.internet.task import Clock
from twisted.internet.testing import EventLoggingObserver
from twisted.logger import Logger, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from csm.config import (ApiAcl, ConfigError, load_acl, load_api_timeouts, load_daemon_config,
                        report_unused)
from csm.users import PasswdCache

HERE = os.path.dirname(os.path.abspath(__file__))
CONF = os.path.join(os.path.dirname(HERE), "conf")
CAST = os.path.join(HERE, "data", "config")

COMPUTE = {"csm": {"role": "Compute", "net": {
    "aggregatorA": {"host": "127.0.0.1", "port": 9800},
    "local_client_listen": {"socket": "/tmp/x.sock", "permissions": 660}}}}


class ConfigTestCase(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.warnings = []

    def write(self, data, name="csm.cfg"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(data if isinstance(data, str) else json.dumps(data, indent=2))
        return path

    def load(self, data, **kw):
        return load_daemon_config(self.write(data), warn=self.warnings.append, **kw)

    def assertConfigError(self, data, *fragments, **kw):
        exc = self.assertRaises(ConfigError, self.load, data, **kw)
        text = str(exc)
        self.assertEqual(len(text.splitlines()), 1, text)
        self.assertIn("csm.cfg", text)
        for fragment in fragments:
            self.assertIn(fragment, text)
        return exc


class ShippedTests(ConfigTestCase):
    def test_project_defaults_load(self):
        for role in ("master", "aggregator", "utility", "compute"):
            config = load_daemon_config(os.path.join(CONF, "csm_%s.cfg" % role), warn=self.warnings.append)
            self.assertEqual(config.role, role)
            self.assertTrue(os.path.exists(config.api_permission_file))
        self.assertEqual(self.warnings, [])

    def test_cast_files_load(self):
        master = load_daemon_config(os.path.join(CAST, "csm_master.cfg"), warn=self.warnings.append)
        self.assertEqual(master.db.connection_pool_size, 10)
        self.assertEqual(master.ras.action.maxactions, 1000)
        self.assertEqual(master.net.aggregator_listen.port, 9815)
        self.assertEqual(master.log.rotationSize, 1000000000)
        self.assertEqual(master.log.default_sev, "warning")
        agg = load_daemon_config(os.path.join(CAST, "csm_aggregator.cfg"), warn=self.warnings.append)
        self.assertEqual(agg.bds.host, "__LOGSTASH__")
        self.assertEqual(agg.bds.data_cache_expiration, 600)
        compute = load_daemon_config(os.path.join(CAST, "csm_compute.cfg"), warn=self.warnings.append)
        self.assertEqual(compute.thread_pool_size, 4)
        self.assertEqual(compute.jitter_mitigation.core_isolation_max, 4)
        self.assertEqual([b.execution_interval for b in compute.data_collection.buckets], [600, 86400])
        self.assertIsNone(compute.net.aggregatorB)  # the template host
        self.assertTrue(any("aggregatorB" in w for w in self.warnings))


class BadInputTests(ConfigTestCase):
    def test_json_error_names_file_and_line(self):
        exc = self.assertConfigError('{\n  "csm": {\n    "role": "Master",\n    oops\n  }\n}', "invalid JSON")
        self.assertEqual(exc.line, 4)
        self.assertIn("csm.cfg:4:", str(exc))

    def test_missing_file(self):
        exc = self.assertRaises(ConfigError, load_daemon_config, os.path.join(self.dir, "nope.cfg"))
        self.assertIn("nope.cfg", str(exc))

    def test_wrong_type_names_key_path(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["net"]["heartbeat_interval"] = "abc"
        exc = self.assertConfigError(data, "csm.net.heartbeat_interval", "integer")
        self.assertEqual(exc.key, "csm.net.heartbeat_interval")

    def test_wrong_type_for_section(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["log"] = "loud"
        self.assertConfigError(data, "csm.log", "object")

    def test_unknown_role(self):
        self.assertConfigError({"csm": {"role": "Janitor"}}, "csm.role", "Janitor")

    def test_missing_required_keys(self):
        self.assertConfigError({"csm": {"role": "Compute", "net": {}}}, "csm.net.aggregatorA")
        self.assertConfigError({"csm": {"role": "Aggregator", "net": {
            "compute_listen": {"host": "h", "port": 1}}}}, "csm.net.master")
        self.assertConfigError({"csm": {"role": "Utility"}}, "csm.net.master")
        self.assertConfigError({"csm": {"role": "Master", "net": {
            "aggregator_listen": {"host": "h", "port": 1}}}}, "csm.net.utility_listen")

    def test_bad_port(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["net"]["aggregatorA"]["port"] = 70000
        self.assertConfigError(data, "csm.net.aggregatorA.port")

    def test_unknown_key_warns_and_loads(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["net"]["hartbeat_interval"] = 5
        data["csm"]["#comment"] = "fine"
        config = self.load(data)
        self.assertEqual(config.role, "compute")
        self.assertEqual(len(self.warnings), 1)
        self.assertIn("csm.net.hartbeat_interval", self.warnings[0])

    def test_none_host_disables_link(self):
        data = {"csm": {"role": "Master", "net": {"aggregator_listen": {"host": "NONE", "port": 9815},
                                                   "utility_listen": {"host": "127.0.0.1", "port": 9816}}}}
        config = self.load(data)
        self.assertIsNone(config.net.aggregator_listen)
        self.assertEqual(config.net.utility_listen.port, 9816)

    def test_same_aggregators_refused(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["net"]["aggregatorB"] = {"host": "127.0.0.1", "port": 9800}
        self.assertConfigError(data, "csm.net.aggregatorB")

    def test_heartbeat_out_of_range(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["net"]["heartbeat_interval"] = "2"
        self.assertEqual(self.load(data).net.heartbeat_interval, 15)
        self.assertIn("heartbeat_interval", self.warnings[0])

    def test_strings_and_numbers_equal(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["net"]["heartbeat_interval"] = "20"
        data["csm"]["thread_pool_size"] = 4
        config = self.load(data)
        self.assertEqual(config.net.heartbeat_interval, 20)
        self.assertEqual(config.net.local_client_listen.permissions, 0o660)

    def test_buckets(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["data_collection"] = {"buckets": [
            {"execution_interval": "24:00:00", "item_list": ["ssd"]},
            {"execution_interval": "00:00:30", "item_list": ["GPU", "fan"]},
            {"execution_interval": "soon", "item_list": ["cpu"]},
            {"execution_interval": "00:01:00", "item_list": ["fan"]}]}
        buckets = self.load(data).data_collection.buckets
        self.assertEqual([(b.execution_interval, b.item_list) for b in buckets],
                         [(86400, ("ssd",)), (30, ("gpu",))])
        self.assertEqual(len(self.warnings), 4)  # 2 unknown items, 1 bad interval, 1 empty bucket

    def test_recurring_tasks_zero_interval(self):
        data = {"csm": {"role": "Master", "net": {"aggregator_listen": {"host": "h", "port": 1},
                                                   "utility_listen": {"host": "h", "port": 2}},
                        "recurring_tasks": {"enabled": True, "soft_fail_recovery": {
                            "enabled": True, "interval": "00:00:00", "retry": 3}}}}
        self.assertConfigError(data, "csm.recurring_tasks.soft_fail_recovery.interval")

    def test_role_override_by_first_letter(self):
        data = {"csm": {"role": "Compute", "net": {"master": {"host": "h", "port": 9816},
                                                    "aggregatorA": {"host": "a", "port": 1}}}}
        self.assertEqual(self.load(data, role_override="u").role, "utility")
        self.assertEqual(self.load(data).role, "compute")
        self.assertConfigError(data, "--role", role_override="x")

    def test_relative_paths_from_config_dir(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"]["api_permission_file"] = "acl.json"
        self.assertEqual(self.load(data).api_permission_file, os.path.join(self.dir, "acl.json"))


class UnusedKeysTests(ConfigTestCase):
    """CAST keys this implementation reads but does not use are named once at start."""

    def test_cast_compute_names_its_unused_keys(self):
        compute = load_daemon_config(os.path.join(CAST, "csm_compute.cfg"), warn=self.warnings.append)
        self.assertEqual(compute.unused, ("csm.thread_pool_size", "csm.jitter_mitigation"))
        master = load_daemon_config(os.path.join(CAST, "csm_master.cfg"), warn=self.warnings.append)
        self.assertEqual(master.unused, ("csm.thread_pool_size", "csm.db.schema_name"))

    def test_file_without_them_names_none(self):
        config = self.load(COMPUTE)
        self.assertEqual(config.unused, ())
        self.assertEqual(config.thread_pool_size, 1)

    def test_reported_in_one_line(self):
        data = json.loads(json.dumps(COMPUTE))
        data["csm"].update(thread_pool_size=4, jitter_mitigation={"enabled": False}, db={"schema_name": "x"})
        config = self.load(data)
        events = EventLoggingObserver.createWithCleanup(self, globalLogPublisher)
        report_unused(config, Logger(namespace="csmd"))
        self.assertEqual(len(events), 1)
        text = formatEvent(events[0])
        for key in ("csm.thread_pool_size", "csm.jitter_mitigation", "csm.db.schema_name", "csm.cfg"):
            self.assertIn(key, text)
        self.assertEqual(self.warnings, [])
        report_unused(self.load(COMPUTE), Logger(namespace="csmd"))
        self.assertEqual(len(events), 1)


class AclTests(ConfigTestCase):
    def acl(self, data):
        return load_acl(self.write(data, "csm_api.acl"), warn=self.warnings.append)

    def test_classes(self):
        acl = load_acl(os.path.join(CAST, "csm_api.acl"))
        self.assertEqual(acl.access_class("csm_node_attributes_query"), "public")
        self.assertEqual(acl.access_class("CSM_ALLOCATION_DELETE"), "private")
        self.assertEqual(acl.access_class("csm_node_delete"), "privileged")

    def test_privileged_users(self):
        acl = self.acl({"privileged_user_id": "nobody", "privileged_group_id": ["root", "nogroup_xyz"]})
        self.assertTrue(acl.is_privileged(0, 0))
        self.assertTrue(acl.is_privileged(65534, 65534))
        self.assertFalse(acl.is_privileged(4321, 4321))
        self.assertTrue(any("nogroup_xyz" in w for w in self.warnings))

    def test_supplementary_group(self):
        import pwd
        nobody = pwd.getpwnam("nobody")
        acl = self.acl({"privileged_group_id": [4242]})
        self.assertFalse(acl.is_privileged(nobody.pw_uid, nobody.pw_gid))
        # the user's supplementary groups come from the system (getgrouplist)
        acl = attrs.evolve(acl, passwd=PasswdCache(
            grouplist=lambda name, gid: [gid, 4242] if name == "nobody" else [gid]))
        self.assertTrue(acl.is_privileged(nobody.pw_uid, nobody.pw_gid))
        self.assertFalse(acl.is_privileged(123456, 123456))  # unknown uid: no groups

    def test_group_lookups_cached(self):
        """A local caller's groups are looked up once per TTL, not at each connection: NSS may
        wait on LDAP, and the ACL is checked on the reactor thread."""
        clock, calls = Clock(), []

        def by_uid(uid):
            calls.append(("getpwuid", uid))
            if uid != 1001:
                raise KeyError(uid)
            return SimpleNamespace(pw_name="alice")

        def grouplist(name, gid):
            calls.append(("getgrouplist", name))
            return [gid, 4242]
        acl = attrs.evolve(self.acl({"privileged_group_id": [4242]}),
                           passwd=PasswdCache(ttl=300, now=clock.seconds, by_uid=by_uid, grouplist=grouplist))
        for _ in range(50):
            self.assertTrue(acl.is_privileged(1001, 100))
            self.assertFalse(acl.is_privileged(2002, 100))
        self.assertEqual(calls, [("getpwuid", 1001), ("getgrouplist", "alice"), ("getpwuid", 2002)])
        clock.advance(301)  # a changed group is seen after the TTL
        self.assertTrue(acl.is_privileged(1001, 100))
        self.assertEqual(len(calls), 5)

    def test_missing_file_allows_all(self):
        acl = load_acl(os.path.join(self.dir, "missing.acl"), warn=self.warnings.append)
        self.assertTrue(acl.is_privileged(4321, 4321))
        self.assertEqual(len(self.warnings), 1)

    def test_bad_json(self):
        self.assertRaises(ConfigError, self.acl, "{not json")

    def test_default(self):
        self.assertEqual(ApiAcl.default().access_class("csm_allocation_query"), "public")


class TimeoutTests(ConfigTestCase):
    def test_values(self):
        path = self.write({"#comment_1": "x", "csm_allocation_create": 300, "csm_node_delete": "3",
                           "csm_ras_event_query": "abc", "CSM_NODE_ATTRIBUTES_QUERY": "45"}, "csm_api.cfg")
        timeouts = load_api_timeouts(path, warn=self.warnings.append)
        self.assertEqual(timeouts.timeout("csm_allocation_create"), 300)
        self.assertEqual(timeouts.timeout("csm_node_delete"), 30)  # under 5 s: default kept
        self.assertEqual(timeouts.timeout("csm_ras_event_query"), 30)
        self.assertEqual(timeouts.timeout("csm_node_attributes_query"), 45)
        self.assertEqual(timeouts.timeout("csm_anything_else"), 30)
        self.assertEqual(len(self.warnings), 2)
        self.assertEqual(timeouts.as_dict(), {"csm_allocation_create": 300, "csm_node_attributes_query": 45})

    def test_missing_file(self):
        timeouts = load_api_timeouts(os.path.join(self.dir, "none"), warn=self.warnings.append)
        self.assertEqual(timeouts.timeout("csm_allocation_create"), 30)
