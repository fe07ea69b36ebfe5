"""Several database servers in csm.db.host: the DSN, and a connection past a server that is down."""

import psycopg2
from twisted.trial.unittest import SynchronousTestCase

from csm.config.models import DBConfig
from csm.db.embedded import free_port
from csm.db.hosts import host_list
from csm.db.pool import dsn_from_config
from tests import dbfixture


class HostListTests(SynchronousTestCase):
    def test_one_host_is_as_before(self):
        self.assertEqual(dsn_from_config(DBConfig(host="db1", port=5432, password="")),
                         "host=db1 port=5432 dbname=csmdb user=csmdb")

    def test_several_hosts_want_the_primary(self):
        dsn = dsn_from_config(DBConfig(host="db1, db2:5433,[::1]:5434", port=5432))
        self.assertEqual(dsn, "host=db1,db2,::1 port=5432,5433,5434 target_session_attrs=read-write "
                              "dbname=csmdb user=csmdb")

    def test_an_ipv6_address_without_a_port(self):
        self.assertEqual(host_list("::1", 5432), ("::1", "5432", False))


class ConnectTests(SynchronousTestCase):
    def test_a_server_that_is_down_is_passed_over(self):
        server = dbfixture.server()
        name, _ = dbfixture.fresh_database(self)
        config = DBConfig(host="127.0.0.1:%d,127.0.0.1:%d" % (free_port(), server.port), name=name, user="postgres")
        connection = psycopg2.connect(dsn_from_config(config))
        self.addCleanup(connection.close)
        self.assertEqual(connection.info.port, server.port)
        cursor = connection.cursor()
        cursor.execute("SHOW transaction_read_only")
        self.assertEqual(cursor.fetchone(), ("off",))
