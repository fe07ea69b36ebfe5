"""Statements prepared once on each connection, then run by ``EXECUTE``.

PostgreSQL plans a statement each time it gets its text; the allocation path's
statements (CTEs over several tables) take about as long to plan as to run. A
``Prepared`` holds one or more ``;``-separated statements with ``%(name)s``
parameters and runs them as one query string of ``EXECUTE``s (one round trip,
one implicit transaction, as the plain text would). A connection that has not
prepared them yet (a new one, or one that reconnected) answers that the
statement does not exist; the query is then sent again on that connection
behind a ``DO`` block that prepares whichever of its statements it lacks
(prepared statements outlive the failed transaction, so this is safe to repeat).
"""

import hashlib
import re

from csm.db.queries import rows_as_dicts

#: invalid_sql_statement_name: EXECUTE of a statement this session has not prepared
UNDEFINED = "26000"
_PARAMETER = re.compile(r"%\((\w+)\)s")
_END = re.compile(r";\s*(?:\n|$)")


class Prepared:
    """``sql`` (statements with ``%(name)s`` parameters) as ``EXECUTE``s of prepared statements."""

    def __init__(self, sql):
        self.names = []
        self.prepares = 0  # times a connection prepared them
        executes, prepares = [], []
        for text in filter(None, (part.strip() for part in _END.split(sql))):
            order = []

            def number(match):
                if match.group(1) not in order:
                    order.append(match.group(1))
                return "$%d" % (order.index(match.group(1)) + 1)
            body = _PARAMETER.sub(number, text)
            name = "csm_" + hashlib.sha1(body.encode()).hexdigest()[:20]
            self.names.append(name)
            executes.append("EXECUTE %s(%s)" % (name, ", ".join("%%(%s)s" % p for p in order)) if order
                            else "EXECUTE " + name)
            prepares.append("IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = '%s') THEN "
                            "EXECUTE $csm_p$PREPARE %s AS %s$csm_p$; END IF;" % (name, name, body))
        self.execute = "; ".join(executes)
        self.prepare = "DO $csm_do$ BEGIN %s END $csm_do$; %s" % (" ".join(prepares), self.execute)

    def run(self, connection, args):
        """On one txpostgres connection: fires with ``(description, rows)`` of the last statement."""
        def lacking(failure):
            import psycopg2  # here, not at the top: the computes import this module and never connect
            failure.trap(psycopg2.Error)
            if failure.value.pgcode != UNDEFINED:
                return failure
            self.prepares += 1
            return connection.runSelect(self.prepare, args)
        return connection.runSelect(self.execute, args).addErrback(lacking)


_CACHE = {}


def prepared(sql):
    """The ``Prepared`` of ``sql`` (made once per text)."""
    statement = _CACHE.get(sql)
    if statement is None:
        statement = _CACHE[sql] = Prepared(sql)
    return statement


def query_dicts(pool, sql, args):
    """Run ``sql`` (``%(name)s`` parameters, ``args`` a dict) prepared, in one round trip; fires
    with the last statement's rows as dicts."""
    statement = prepared(sql)
    d = pool.runWithConnection(lambda connection: statement.run(connection, args))
    return d.addCallback(lambda result: rows_as_dicts(*result))
