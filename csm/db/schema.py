"""Schema versions and migrations.

``19.0`` is CAST's layout; each later version is a migration file applied on
top of the one before. ``install`` creates the whole schema (the base, then
every migration, so the migration path is exercised by every fresh install);
``upgrade`` brings an older database to ``SCHEMA_VERSION``.
"""

import os

VERSIONS = ("19.0", "19.1", "19.2", "19.3", "19.4", "19.5")
SCHEMA_VERSION = VERSIONS[-1]
_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema")


class SchemaError(Exception):
    pass


def sql_for(version):
    with open(os.path.join(_DIR, version + ".sql")) as f:
        return f.read()


def major(version):
    return str(version).split(".")[0]


#: the two steps of reading the installed version (for synchronous and txpostgres cursors)
HAS_VERSION_TABLE = "SELECT to_regclass('csm_db_schema_version') IS NOT NULL"
INSTALLED_VERSION = "SELECT version FROM csm_db_schema_version ORDER BY create_time DESC LIMIT 1"


def current_version(cursor):
    """The installed version, or None when the schema is not there."""
    cursor.execute(HAS_VERSION_TABLE)
    if not cursor.fetchone()[0]:
        return None
    cursor.execute(INSTALLED_VERSION)
    row = cursor.fetchone()
    return row[0] if row else None


def install(cursor, upto=SCHEMA_VERSION):
    """Create the schema in an empty database (psycopg2 cursor, one transaction)."""
    if current_version(cursor) is not None:
        raise SchemaError("the CSM schema is already installed")
    cursor.execute(sql_for(VERSIONS[0]))
    cursor.execute("INSERT INTO csm_db_schema_version (version, comment) VALUES (%s, %s)",
                   (VERSIONS[0], "created by csm-db"))
    return upgrade(cursor, upto)


def upgrade(cursor, upto=SCHEMA_VERSION):
    """Apply every migration after the installed version; returns the new version."""
    version = current_version(cursor)
    if version is None:
        raise SchemaError("no CSM schema to upgrade: run csm-db create")
    if version not in VERSIONS:
        raise SchemaError("unknown schema version %s (this csm knows %s)" % (version, ", ".join(VERSIONS)))
    for step in VERSIONS[VERSIONS.index(version) + 1:VERSIONS.index(upto) + 1]:
        cursor.execute(sql_for(step))
        cursor.execute("UPDATE csm_db_schema_version SET version = %s, create_time = now(), comment = %s",
                       (step, "migrated from %s" % version))
        version = step
    return version


def check_version(version):
    """Raise ``SchemaError`` unless the master can run on ``version``."""
    if version is None:
        raise SchemaError("the database has no CSM schema: run 'csm-db create'")
    if version not in VERSIONS:
        raise SchemaError("database schema %s is not one this csm knows (%s)" % (version, SCHEMA_VERSION))
    if version != SCHEMA_VERSION:
        raise SchemaError("database schema %s is older than %s: run 'csm-db upgrade'" % (version, SCHEMA_VERSION))
