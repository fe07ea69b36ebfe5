"""A real PostgreSQL for the tests: one private server per test process.

``fresh_database()`` gives each test its own database, copied from a template
that holds the installed schema and the shipped RAS types, and drops it after.
"""

import itertools
import os

import psycopg2

from csm.db import schema
from csm.db.admin import DEFAULT_RAS_TYPES, load_ras_types_file
from csm.db.embedded import EmbeddedPostgres

TEMPLATE = "csm_template"
_server = None
_names = itertools.count(1)


class _Quiet:
    def write(self, text):
        pass


def server():
    """The process's server (started on first use, stopped at exit)."""
    global _server
    if _server is None:
        _server = EmbeddedPostgres(fast=True)  # throw-away data: speed over durability
        _server.start()
        admin = psycopg2.connect(_server.dsn)
        admin.autocommit = True
        admin.cursor().execute("CREATE DATABASE %s" % TEMPLATE)
        admin.close()
        connection = psycopg2.connect(_server.dsn_for(TEMPLATE))
        with connection, connection.cursor() as cur:
            schema.install(cur)
        load_ras_types_file(connection, DEFAULT_RAS_TYPES, _Quiet())
        connection.close()
    return _server


def admin_execute(statement):
    server().query(statement)


def fresh_database(testcase, template=TEMPLATE):
    """A new database for ``testcase`` (dropped at cleanup); returns (name, dsn)."""
    name = "t%d_%d" % (os.getpid(), next(_names))
    admin_execute("CREATE DATABASE %s TEMPLATE %s" % (name, template))
    testcase.addCleanup(drop_database, name)
    return name, server().dsn_for(name)


def started_pool(testcase, size=1):
    """Fires with a started ``DatabasePool`` of ``size`` on a fresh database, closed at cleanup."""
    from twisted.internet import reactor
    from csm.db.pool import DatabasePool
    _, dsn = fresh_database(testcase)
    pool = DatabasePool(None, reactor, dsn=dsn, size=size)
    testcase.addCleanup(pool.close)
    return pool.start()


def drop_database(name):
    try:
        admin_execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    except psycopg2.Error:
        pass


def connect(dsn):
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    return connection
