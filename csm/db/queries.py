"""A small builder for the filtered, ordered, paged SELECTs of the query APIs."""

from csm.errors import CSMError, ErrorCode


class Select:
    """``Select("SELECT ... FROM t")`` + filters -> (sql, args)."""

    def __init__(self, base, *args):
        self.base = base
        self.conditions = []
        self.args = list(args)  # the base statement's own parameters
        self.order = ""
        self.paging = ""

    def copy(self):
        other = Select(self.base)
        other.conditions, other.args = list(self.conditions), list(self.args)
        other.order, other.paging = self.order, self.paging
        return other

    def where(self, condition, *args):
        self.conditions.append(condition)
        self.args.extend(args)
        return self

    def equal(self, column, value):
        if value not in (None, "", []):
            self.where("%s = %%s" % column, value)
        return self

    def like(self, column, value):
        """CAST's LIKE filters: ``*`` and ``%`` both match anything."""
        if value not in (None, ""):
            self.where("%s LIKE %%s" % column, str(value).replace("*", "%"))
        return self

    def any_of(self, column, values, cast=""):
        if values:
            self.where("%s = ANY(%%s%s)" % (column, cast), list(values))
        return self

    def between(self, column, begin, end):
        if begin:
            self.where("%s >= %%s" % column, begin)
        if end:
            self.where("%s <= %%s" % column, end)
        return self

    def order_by(self, code, columns, default):
        """``code`` a..z picks ``columns[i]`` ascending, A..Z descending."""
        if not code:
            self.order = " ORDER BY " + default
            return self
        index = ord(code.lower()) - ord("a")
        if len(code) != 1 or not 0 <= index < len(columns):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid order_by %r (a-%s, upper case for descending)"
                           % (code, chr(ord("a") + len(columns) - 1)))
        self.order = " ORDER BY %s %s" % (columns[index], "DESC" if code.isupper() else "ASC")
        return self

    def order_by_pairs(self, code, columns, default):
        """CAST's ``-O``: ``a``/``b`` the first column ascending/descending, ``c``/``d`` the second..."""
        if not code:
            self.order = " ORDER BY " + default
            return self
        index = ord(code) - ord("a") if len(code) == 1 else -1
        if not 0 <= index < 2 * len(columns):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid order_by %r (a-%s)"
                           % (code, chr(ord("a") + 2 * len(columns) - 1)))
        self.order = " ORDER BY %s %s NULLS LAST" % (columns[index // 2], "DESC" if index % 2 else "ASC")
        return self

    def page(self, limit, offset):
        if limit is not None and int(limit) >= 0:
            self.paging += " LIMIT %d" % int(limit)
        if offset:
            self.paging += " OFFSET %d" % int(offset)
        return self

    def sql(self):
        where = " WHERE " + " AND ".join(self.conditions) if self.conditions else ""
        return self.base + where + self.order + self.paging, tuple(self.args)


#: PostgreSQL type ids whose values come back as date/time objects: date, time, timestamp,
#: timestamptz, timetz. They travel as text.
_TIME_TYPES = frozenset((1082, 1083, 1114, 1184, 1266))


def rows_as_dicts(cursor_description, rows):
    names = [column[0] for column in cursor_description]
    times = [index for index, column in enumerate(cursor_description) if column[1] in _TIME_TYPES]
    if not times:
        return [dict(zip(names, row)) for row in rows]
    result = []
    for row in rows:
        row = list(row)
        for index in times:
            if row[index] is not None:
                row[index] = str(row[index])
        result.append(dict(zip(names, row)))
    return result


def query_dicts(pool, sql, args=()):
    """Run a SELECT through the pool (one statement, one round trip); fires with a list of dicts."""
    return pool.runSelect(sql, args).addCallback(lambda result: rows_as_dicts(*result))


def query_results(pool, query, key="results"):
    """Run a ``Select``; the Deferred fires with ``{key: [row dicts]}``."""
    return query_dicts(pool, *query.sql()).addCallback(lambda rows: {key: rows})


def keyed_results(pool, query, column, keys, key="results"):
    """``query`` (no paging) for the rows whose ``column`` is one of ``keys``, merged with
    the same query from other callers in this reactor turn (``pool.batcher``); fires
    with ``{key: [row dicts]}``."""
    d = pool.batcher.select(query, column, keys)
    return d.addCallback(lambda result: {key: rows_as_dicts(*result)})
