"""``csm-db``: the database tools CAST sites know from the ``csm_db_*`` scripts.

    csm-db create [--ras-types FILE]     database, role, schema and RAS types
    csm-db drop [--force]                refuses while connections are open unless forced
    csm-db upgrade                       migrate the schema to this csm's version
    csm-db truncate                      remove the data (RAS types stay)
    csm-db load-ras-types FILE           upsert RAS types from CAST's CSV format (audited)
    csm-db archive --count N --dir DIR   history rows to JSON lines, stamping archive_history_time
    csm-db delete-archived --older-than MINUTES
    csm-db stats                         table sizes, schema version, connections

Connection options given on the command line win over ``--dsn``, which wins
over the ``csm.db`` block of the master's config (``--config``);
``--admin-user`` is the PostgreSQL superuser used for create and drop.
"""

import argparse
import contextlib
import csv
import datetime
import json
import os
import sys

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from csm.conf_files import conf_file
from csm.config import ConfigError, load_daemon_config
from csm.db import schema

DEFAULT_RAS_TYPES = conf_file("csm_ras_type_data.csv")
RAS_COLUMNS = ("msg_id", "severity", "message", "description", "control_action", "threshold_count",
               "threshold_period", "enabled", "set_state", "visible_to_users")
SEVERITIES = ("INFO", "WARNING", "FATAL")
SET_STATES = ("", "SOFT_FAILURE", "HARD_FAILURE")
#: kept by ``truncate``
KEEP_TABLES = ("csm_ras_type", "csm_ras_type_audit", "csm_db_schema_version", "csm_db_schema_version_history")


class AdminError(Exception):
    pass


def connect(args, dbname=None, user=None):
    params = {"host": args.host, "port": args.port, "dbname": dbname or args.dbname,
              "user": user or args.user}
    if args.password:
        params["password"] = args.password
    try:
        connection = psycopg2.connect(**{k: v for k, v in params.items() if v not in (None, "")})
    except psycopg2.OperationalError as exc:
        raise AdminError("cannot connect to %s on %s:%s: %s" % (params["dbname"], args.host, args.port,
                                                               str(exc).strip().splitlines()[0])) from None
    return connection


def admin_connect(args):
    connection = connect(args, dbname="postgres", user=args.admin_user)
    connection.autocommit = True
    return connection


# -- create / drop / upgrade / truncate ------------------------------------------------------

def create(args, out):
    with contextlib.closing(admin_connect(args)) as admin, admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (args.user,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(args.user)))
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (args.dbname,))
        if cur.fetchone() is not None:
            raise AdminError("database %s already exists (csm-db drop first, or csm-db upgrade)" % args.dbname)
        cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(args.dbname),
                                                                sql.Identifier(args.user)))
    connection = connect(args)  # as the owner role: it owns what it creates
    try:
        with connection, connection.cursor() as cur:
            version = schema.install(cur)
        out.write("created database %s (schema %s, owner %s)\n" % (args.dbname, version, args.user))
        path = args.ras_types or (DEFAULT_RAS_TYPES if os.path.exists(DEFAULT_RAS_TYPES) else None)
        if path and not args.no_ras_types:
            load_ras_types_file(connection, path, out)
    finally:
        connection.close()


def other_connections(cur, dbname):
    cur.execute("SELECT pid, usename, application_name, client_addr FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
    return cur.fetchall()


def drop(args, out):
    with contextlib.closing(admin_connect(args)) as admin, admin.cursor() as cur:
        open_ = other_connections(cur, args.dbname)
        if open_ and not args.force:
            raise AdminError("%d connection(s) to %s are open (stop the master, or use --force): pids %s"
                             % (len(open_), args.dbname, ", ".join(str(row[0]) for row in open_)))
        if open_:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (args.dbname,))
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(args.dbname)))
    out.write("dropped database %s\n" % args.dbname)


def upgrade(args, out):
    with contextlib.closing(connect(args)) as connection, connection, connection.cursor() as cur:
        before = schema.current_version(cur)
        after = schema.upgrade(cur)
    out.write("schema %s -> %s\n" % (before, after) if before != after else "schema is %s already\n" % after)


def truncate(args, out):
    with contextlib.closing(connect(args)) as connection, connection, connection.cursor() as cur:
        tables = [t for t in csm_tables(cur) if t not in KEEP_TABLES]
        cur.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
    out.write("truncated %d tables\n" % len(tables))


def csm_tables(cur):
    cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
                "AND table_type = 'BASE TABLE' AND table_name LIKE 'csm\\_%' ORDER BY table_name")
    return [row[0] for row in cur.fetchall()]


# -- RAS types ---------------------------------------------------------------------------------

def parse_ras_types(path):
    """Rows of CAST's csm_ras_type_data.csv format as dicts; ``AdminError`` names a bad line."""
    rows = []
    with open(path, newline="") as f:
        for number, fields in enumerate(csv.reader(f), 1):
            if not fields or fields[0].startswith("#") or (number == 1 and fields[0].strip() == "msg_id"):
                continue  # comments, and the header with or without its '#'
            if len(fields) != len(RAS_COLUMNS):
                raise AdminError("%s:%d: expected %d fields, got %d" % (path, number, len(RAS_COLUMNS), len(fields)))
            row = dict(zip(RAS_COLUMNS, (field.strip() for field in fields)))
            if row["severity"] not in SEVERITIES:
                raise AdminError("%s:%d: severity %r is not one of %s" % (path, number, row["severity"], SEVERITIES))
            if row["set_state"] not in SET_STATES:
                raise AdminError("%s:%d: set_state %r is not SOFT_FAILURE, HARD_FAILURE or empty"
                                 % (path, number, row["set_state"]))
            try:
                row["threshold_count"] = int(row["threshold_count"] or 1)
                row["threshold_period"] = int(row["threshold_period"] or 0)
            except ValueError:
                raise AdminError("%s:%d: thresholds must be integers" % (path, number)) from None
            for flag in ("enabled", "visible_to_users"):
                row[flag] = row[flag].lower() in ("true", "t", "1", "yes")
            row["set_state"] = row["set_state"] or None
            row["control_action"] = row["control_action"] or "NONE"
            rows.append(row)
    return rows


UPSERT_RAS_TYPE = """
INSERT INTO csm_ras_type (msg_id, severity, message, description, control_action, threshold_count,
                          threshold_period, enabled, set_state, visible_to_users)
VALUES (%(msg_id)s, %(severity)s, %(message)s, %(description)s, %(control_action)s, %(threshold_count)s,
        %(threshold_period)s, %(enabled)s, %(set_state)s, %(visible_to_users)s)
ON CONFLICT (msg_id) DO UPDATE SET
    severity = EXCLUDED.severity, message = EXCLUDED.message, description = EXCLUDED.description,
    control_action = EXCLUDED.control_action, threshold_count = EXCLUDED.threshold_count,
    threshold_period = EXCLUDED.threshold_period, enabled = EXCLUDED.enabled,
    set_state = EXCLUDED.set_state, visible_to_users = EXCLUDED.visible_to_users
WHERE (csm_ras_type.*) IS DISTINCT FROM (EXCLUDED.*)
RETURNING (xmax = 0) AS inserted
"""


def load_ras_types_file(connection, path, out):
    rows = parse_ras_types(path)
    inserted = updated = 0
    with connection, connection.cursor() as cur:
        for row in rows:
            cur.execute(UPSERT_RAS_TYPE, row)
            result = cur.fetchone()
            if result is not None:
                inserted += result[0]
                updated += not result[0]
    out.write("RAS types from %s: %d inserted, %d updated, %d unchanged\n"
              % (path, inserted, updated, len(rows) - inserted - updated))
    return inserted, updated


def load_ras_types(args, out):
    with contextlib.closing(connect(args)) as connection:
        load_ras_types_file(connection, args.file, out)


# -- archive / delete ----------------------------------------------------------------------------

def history_tables(cur):
    """(table, time column) of every table the archiver handles."""
    tables = [(t, "history_time") for t in csm_tables(cur) if t.endswith("_history")]
    return tables + [("csm_ras_event_action", "master_time_stamp")]


def _json_default(value):
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat(sep=" ")
    return str(value)


def archive(args, out):
    os.makedirs(args.dir, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    total = 0
    with contextlib.closing(connect(args)) as connection, connection, connection.cursor() as cur:
        for table, column in history_tables(cur):
            cur.execute(sql.SQL(
                "UPDATE {t} SET archive_history_time = now() WHERE ctid IN ("
                " SELECT ctid FROM {t} WHERE archive_history_time IS NULL ORDER BY {c} LIMIT %s FOR UPDATE)"
                " RETURNING row_to_json({t}.*)").format(t=sql.Identifier(table), c=sql.Identifier(column)),
                (args.count,))
            rows = cur.fetchall()
            if not rows:
                continue
            path = os.path.join(args.dir, "%s.archive.%s.json" % (table, stamp))
            with open(path, "a") as f:
                for (data,) in rows:
                    f.write(json.dumps({"type": "db-" + table, "data": data}, default=_json_default) + "\n")
            total += len(rows)
            out.write("%s: %d rows archived to %s\n" % (table, len(rows), path))
    out.write("archived %d rows\n" % total)


def delete_archived(args, out):
    total = 0
    with contextlib.closing(connect(args)) as connection, connection, connection.cursor() as cur:
        for table, column in history_tables(cur):
            cur.execute(sql.SQL("DELETE FROM {t} WHERE archive_history_time IS NOT NULL AND "
                                "{c} < now() - make_interval(mins => %s)").format(
                t=sql.Identifier(table), c=sql.Identifier(column)), (args.older_than,))
            total += cur.rowcount
            if cur.rowcount:
                out.write("%s: %d archived rows deleted\n" % (table, cur.rowcount))
    out.write("deleted %d archived rows older than %d minutes\n" % (total, args.older_than))


def stats(args, out):
    with contextlib.closing(connect(args)) as connection, connection, connection.cursor() as cur:
        out.write("schema version: %s\n" % schema.current_version(cur))
        cur.execute("SELECT version()")
        out.write("server: %s\n" % cur.fetchone()[0].split(",")[0])
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        out.write("connections: %d\n" % cur.fetchone()[0])
        cur.execute("SELECT c.relname, pg_total_relation_size(c.oid), coalesce(s.n_live_tup, 0) "
                    "FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid "
                    "WHERE c.relkind = 'r' AND c.relname LIKE 'csm\\_%' ORDER BY 2 DESC, 1")
        out.write("%-40s %12s %10s\n" % ("table", "bytes", "rows"))
        for name, size, rows in cur.fetchall():
            out.write("%-40s %12d %10d\n" % (name, size, rows))


# -- command line --------------------------------------------------------------------------------

def _config_defaults(path):
    """Connection settings from the ``csm.db`` block of a daemon config."""
    try:
        db = load_daemon_config(path, warn=lambda text: None).db
    except ConfigError as exc:
        raise AdminError(str(exc)) from None
    return {"host": db.host, "port": db.port, "dbname": db.name, "user": db.user, "password": db.password}


def _dsn_defaults(dsn):
    """Connection settings from a libpq DSN (``host=... port=... dbname=... user=...``)."""
    try:
        parts = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError as exc:
        raise AdminError("bad --dsn: %s" % str(exc).strip().splitlines()[0]) from None
    return {"host": parts.get("host"), "port": parts.get("port") and int(parts["port"]),
            "dbname": parts.get("dbname"), "user": parts.get("user"), "password": parts.get("password")}


def _settle_connection(args):
    """Options given > ``--dsn`` > ``--config`` > built-in defaults."""
    settings = {"host": "127.0.0.1", "port": 5432, "dbname": "csmdb", "user": "csmdb", "password": ""}
    for source, read in ((args.config, _config_defaults), (args.dsn, _dsn_defaults)):
        if source:
            settings.update({k: v for k, v in read(source).items() if v not in (None, "")})
    for key, value in settings.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def parser():
    p = argparse.ArgumentParser(prog="csm-db", description="CSM database administration")
    p.add_argument("--config", help="take connection defaults from this master config's csm.db block")
    p.add_argument("--dsn", help="take connection defaults from this libpq DSN")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--dbname", default=None, help="the CSM database (default csmdb)")
    p.add_argument("--user", default=None, help="the CSM database role (default csmdb)")
    p.add_argument("--password", default=None)
    p.add_argument("--admin-user", default="postgres", help="superuser that creates and drops the database")
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("create", help="create the database, role, schema and RAS types")
    c.add_argument("--ras-types", help="RAS type CSV to load (default %s)" % DEFAULT_RAS_TYPES)
    c.add_argument("--no-ras-types", action="store_true")
    d = sub.add_parser("drop", help="drop the database")
    d.add_argument("--force", action="store_true", help="terminate open connections first")
    sub.add_parser("upgrade", help="migrate the schema to %s" % schema.SCHEMA_VERSION)
    sub.add_parser("truncate", help="remove all data except the RAS types")
    load = sub.add_parser("load-ras-types", help="upsert RAS types from a CSV (CAST's format)")
    load.add_argument("file")
    a = sub.add_parser("archive", help="archive history rows to JSON lines")
    a.add_argument("--count", type=int, default=1000, help="rows per table per run (default 1000)")
    a.add_argument("--dir", default="/var/log/ibm/csm/archive")
    x = sub.add_parser("delete-archived", help="delete archived history rows")
    x.add_argument("--older-than", type=int, required=True, metavar="MINUTES")
    sub.add_parser("stats", help="table sizes, schema version, connections")
    return p


COMMANDS = {"create": create, "drop": drop, "upgrade": upgrade, "truncate": truncate,
            "load-ras-types": load_ras_types, "archive": archive, "delete-archived": delete_archived,
            "stats": stats}


def main(argv=None, out=None, err=None):
    """``csm-db``: 0 when done, 1 with one line on ``err`` (stderr) when not."""
    out, err = out or sys.stdout, err or sys.stderr
    args = parser().parse_args(argv)
    try:
        _settle_connection(args)
        COMMANDS[args.command](args, out)
    except (AdminError, schema.SchemaError, psycopg2.Error) as exc:
        err.write("csm-db %s: %s\n" % (args.command, (str(exc).strip() or type(exc).__name__).splitlines()[0]))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
