"""The private PostgreSQL of the tests and the demo."""

import os
import pwd
import tempfile

import psycopg2
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm.db import embedded


class EmbeddedTests(SynchronousTestCase):
    def query(self, dsn, statement):
        connection = psycopg2.connect(dsn)
        try:
            with connection, connection.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else None
        finally:
            connection.close()

    def test_restart_keeps_data_and_port_and_stop_removes_the_directory(self):
        with embedded.EmbeddedPostgres() as pg:
            self.assertEqual(pg.dsn, "host=127.0.0.1 port=%d dbname=postgres user=postgres" % pg.port)
            self.query(pg.dsn, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (1)")
            port = pg.port
            pg.stop_server()
            self.assertRaises(psycopg2.OperationalError, psycopg2.connect, pg.dsn)
            pg.start_server()
            pg.restart()
            self.assertEqual((pg.port, self.query(pg.dsn, "SELECT n FROM kept")), (port, [(1,)]))
            with open(os.path.join(pg.data, "pg_hba.conf")) as f:
                hba = [line.split() for line in f if line.strip() and not line.startswith("#")]
            self.assertEqual(hba, [["local", "all", "all", "trust"], ["host", "all", "all", "127.0.0.1/32", "trust"]])
            directory = pg.directory
        self.assertFalse(os.path.exists(directory))
        pg.stop()  # twice is harmless (the atexit net calls it again)

    def test_a_stopped_server_keeps_its_port_from_parallel_tests(self):
        """Between a server's stop and its start again, no other test (trial -j's workers
        too: a lock file) and no ``bind(0)`` (below the ephemeral range) is handed its port."""
        pg = embedded.EmbeddedPostgres()
        self.addCleanup(pg.stop)
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            self.assertLess(pg.port, int(f.read().split()[0]))
        self.assertRaises(RuntimeError, embedded.reserve_port, pg.port, pg.port + 1)
        pg.stop()
        port, lease = embedded.reserve_port(pg.port, pg.port + 1)
        os.close(lease)
        self.assertEqual(port, pg.port)

    def test_a_directory_postgres_cannot_enter_is_replaced(self):
        """A checkout only root may enter (under /root, say): the server runs in a temporary folder."""
        if os.geteuid() != 0:
            raise SkipTest("only root runs the server as another user")
        private = tempfile.mkdtemp(prefix="csm-private-")
        os.chmod(private, 0o700)
        self.addCleanup(os.rmdir, private)
        postgres = pwd.getpwnam("postgres")
        self.assertFalse(embedded.reachable_by(postgres, os.path.join(private, "run", "postgres")))
        self.assertTrue(embedded.reachable_by(postgres, tempfile.gettempdir()))
        with embedded.EmbeddedPostgres(os.path.join(private, "run", "postgres"), fast=True) as pg:
            self.assertEqual(pg.moved_from, os.path.join(private, "run", "postgres"))
            self.assertFalse(pg.directory.startswith(private))
            self.assertEqual(self.query(pg.dsn, "SELECT 1"), [(1,)])
            directory = pg.directory
        self.assertFalse(os.path.exists(directory))
        self.assertEqual(os.listdir(private), [])

    def settings(self, pg):
        return dict(self.query(pg.dsn, "SELECT name, setting FROM pg_settings WHERE name IN "
                                       "('fsync', 'synchronous_commit', 'full_page_writes')"))

    def test_durable_by_default_an_acknowledged_write_survives_a_crash(self):
        with embedded.EmbeddedPostgres() as pg:
            self.assertEqual(self.settings(pg), {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"})
            self.query(pg.dsn, "CREATE TABLE events (n int)")
            self.query(pg.dsn, "INSERT INTO events VALUES (1)")
            pg.stop_server(mode="immediate")  # the server dies (SIGQUIT): no checkpoint, no WAL flush
            pg.start_server()
            self.assertEqual(self.query(pg.dsn, "SELECT n FROM events"), [(1,)])

    def test_only_an_explicit_choice_trades_durability_for_speed(self):
        from csm.cluster import LocalCluster
        self.assertFalse(embedded.EmbeddedPostgres().fast)
        self.assertFalse(LocalCluster(self.mktemp(), computes=0, aggregators=0, utilities=0, tls=False).postgres.fast)
        self.assertTrue(LocalCluster(self.mktemp(), computes=0, aggregators=0, utilities=0, tls=False,
                                     fast_db=True).postgres.fast)
        with embedded.EmbeddedPostgres(fast=True) as pg:
            self.assertEqual(self.settings(pg), {"fsync": "off", "synchronous_commit": "off",
                                                 "full_page_writes": "off"})

    def test_missing_binaries_name_the_package(self):
        error = self.assertRaises(embedded.PostgresNotFound, embedded.find_binary, "no-such-postgres-tool")
        self.assertIn("install the 'postgresql' package", str(error))
