"""RAS events written many to a statement, in the order they came.

A daemon's burst of events would cost the master one call of
``fn_csm_ras_event_create`` each (about ten statements inside PostgreSQL).
``EventBatches`` puts the events that arrive while the write queue is busy into
the one RAS write still waiting at its tail, so they share a transaction.
``process_events`` writes such a batch: one statement reads the types and node
states the batch names; events of a *plain* type (known, enabled, no threshold,
no ``set_state``) on a node that is not in MAINTENANCE or OUT_OF_SERVICE are
inserted together, many rows to a statement; every other event (thresholds,
state changes, suppression, unknown types) goes through
``fn_csm_ras_event_create`` alone, in its place. Row ids follow the order of
arrival, so events keep their order per node and overall.

A batch runs under one savepoint, not one per event: a transaction's first 64
subtransactions are cached in shared memory, and past them every other session's
snapshots must read ``pg_subtrans`` (a "suboverflowed" backend). When a statement
is refused, the batch is rolled back to its savepoint and run again in two halves,
each under its own, down to the one event the database refuses, which fails by
itself: none is lost, and the outcomes are those of one event at a time.

A savepoint goes out with the statement after it and is released with the next
statement of the transaction's RAS writes (or ends with its COMMIT): a batch of
plain events is two round trips (the look-up, the insert), not four; while the
master reads a flood, each round trip waits for a reactor turn.
"""

import collections
import json
import re

import psycopg2
from twisted.internet import defer

from csm import logs
from csm.db.connection import db_error

log = logs.logger("csmras")

#: the most events one queued write carries
MAX_EVENTS = 4000
#: the most outcomes handed on (to their Deferreds, or to the engine's follow-up) a reactor turn
FOLLOW_UPS_A_TURN = 500
SUPPRESSING_STATES = ("MAINTENANCE", "OUT_OF_SERVICE")
_VARIABLE = re.compile(r"\$\((\w+)\)")

#: the types and node states a batch names, as of now
LOOKUP = ("SELECT (SELECT coalesce(jsonb_object_agg(t.msg_id, jsonb_build_object("
          "'severity', t.severity, 'message', t.message, 'control_action', t.control_action, 'plain', "
          "coalesce(t.enabled, false) AND t.set_state IS NULL AND NOT (coalesce(t.threshold_count, 0) >= 2 "
          "AND coalesce(t.threshold_period, 0) >= 1), 'seq', "
          "(SELECT max(a.msg_id_seq) FROM csm_ras_type_audit a WHERE a.msg_id = t.msg_id))), '{}') "
          "FROM csm_ras_type t WHERE t.msg_id = ANY(%s)), "
          "(SELECT coalesce(jsonb_object_agg(node_name, state), '{}') FROM csm_node WHERE node_name = ANY(%s))")
#: rows of plain events: row ids taken in order, so the i-th row gets the i-th smallest
INSERT = ("INSERT INTO csm_ras_event_action (rec_id, msg_id, msg_id_seq, time_stamp, master_time_stamp, "
          "location_name, count, message, kvcsv, raw_data) "
          "SELECT ids.rec_id, r.msg_id, r.seq, coalesce(r.stamp::timestamp, now()), now(), r.location, 1, "
          "r.message, r.kvcsv, r.raw_data "
          "FROM ROWS FROM (json_to_recordset(%s::json) AS (msg_id text, seq bigint, stamp text, location text, "
          "message text, kvcsv text, raw_data text)) WITH ORDINALITY AS r(msg_id, seq, stamp, location, message, "
          "kvcsv, raw_data, n) "
          "JOIN (SELECT rec_id, row_number() OVER (ORDER BY rec_id) AS n FROM (SELECT nextval("
          "pg_get_serial_sequence('csm_ras_event_action', 'rec_id')) AS rec_id "
          "FROM generate_series(1, %s)) taken) ids ON ids.n = r.n "
          "RETURNING rec_id, to_jsonb(time_stamp) #>> '{}', to_jsonb(now()) #>> '{}'")
ALONE = "SELECT fn_csm_ras_event_create(%s::jsonb)"


def _execute(cursor, sql, args=None):
    """``sql`` with the statements owed before it (``_owe``) in one round trip."""
    owed = getattr(cursor, "csm_owed", None)
    if owed:
        sql, cursor.csm_owed = "".join(owed) + sql, []
    return cursor.execute(sql, args)


def _owe(cursor, statement):
    """Send ``statement`` (no parameters) with the next one of ``_execute``: a savepoint
    with the statement it guards, a release with whatever follows."""
    owed = getattr(cursor, "csm_owed", None)
    if owed is None:
        owed = cursor.csm_owed = []
    owed.append(statement + "; ")


def _text(value):
    """A field as ``jsonb ->> key`` gives it."""
    return value if isinstance(value, str) else json.dumps(value)


#: a template's distinct variables, in order (templates are few: the RAS types)
_VARIABLES = {}
#: the event's own fields a template may name; they win over kvcsv
_OWN = frozenset(("msg_id", "location_name", "time_stamp", "raw_data", "kvcsv"))


def _kvcsv_fields(kvcsv):
    """``k1=v1,k2=v2`` as the stored function reads it (the last of a key wins)."""
    fields = {}
    for item in (kvcsv or "").split(","):
        key = item.split("=", 1)[0].strip(" ")
        if item.find("=") >= 1 and key:
            fields[key] = item[item.find("=") + 1:].strip(" ")
    return fields


def substitute(template, event, severity):
    """The type's message with ``$(var)`` taken from the event's fields and its ``kvcsv``, as
    ``fn_csm_ras_event_create`` does it (the event's own fields win over kvcsv); None when a
    value holds ``$(`` itself (the function's result then depends on its order of variables)."""
    if not template or "$(" not in template:
        return template or ""
    names = _VARIABLES.get(template)
    if names is None:
        names = _VARIABLES[template] = tuple(dict.fromkeys(_VARIABLE.findall(template)))
    kvcsv = None  # read only when a variable is not one of the event's own fields
    message = template
    for var in names:
        if var == "message":
            continue
        value = event.get(var) if var in _OWN else None
        if value is not None:
            value = _text(value)
        else:
            if kvcsv is None:
                kvcsv = _kvcsv_fields(event.get("kvcsv"))
            value = kvcsv.get(var, severity if var == "severity" else None)
        if value is not None:
            if "$(" in value:
                return None  # the text would depend on the order the function takes the variables in
            message = message.replace("$(" + var + ")", value)
    return message


def _names(values):
    """The distinct strings among ``values`` (anything else goes through the stored function)."""
    return list({value for value in values if isinstance(value, str)})


#: the fields an inserted row takes as text: anything else goes through the stored function
_TEXT_FIELDS = ("location_name", "time_stamp", "raw_data", "kvcsv")


def _plain(event, types, nodes):
    """The type of ``event`` when it is stored as it is (no threshold, no state, not
    suppressed), else None."""
    msg_id = event.get("msg_id")
    kind = types.get(msg_id) if isinstance(msg_id, str) else None
    if kind is None or not kind["plain"]:
        return None
    for key in _TEXT_FIELDS:
        value = event.get(key)
        if value is not None and not isinstance(value, str):
            return None
    if nodes.get(event.get("location_name") or "") in SUPPRESSING_STATES:
        return None
    return kind


@defer.inlineCallbacks
def process_events(cursor, batch):
    """Write ``batch`` (an ``EventBatch``) in the caller's transaction; a list with each
    event's outcome as ``fn_csm_ras_event_create`` gives it (a dict, or a ``CSMError``)."""
    events = batch.seal()
    batch.inserted = 0  # (a transaction run again after an outage counts again)
    yield _execute(cursor, LOOKUP, (_names(event.get("msg_id") for event in events),
                                    _names(event.get("location_name") or "" for event in events)))
    types, nodes = cursor.fetchone()
    outcomes = yield _guarded(cursor, events, types, nodes, batch)
    return outcomes


#: the function answers errors instead of raising them, and a refused statement is run again
#: under savepoints without the event refused: it never leaves the transaction broken
process_events.safe_in_batch = True


@defer.inlineCallbacks
def _guarded(cursor, events, types, nodes, batch):
    """``events`` under one savepoint; refused, rolled back and run again in halves (one
    event alone through the function under its own)."""
    if len(events) == 1 and _plain(events[0], types, nodes) is None:
        return [(yield _alone(cursor, events[0], nodes))]
    known, inserted = dict(nodes), batch.inserted
    _owe(cursor, "SAVEPOINT csm_ras_batch")  # goes out with the batch's first statement
    try:
        outcomes = yield _run(cursor, events, types, nodes, batch)
    except (psycopg2.InterfaceError, psycopg2.OperationalError):
        raise
    except psycopg2.Error:
        yield cursor.execute("ROLLBACK TO SAVEPOINT csm_ras_batch")
        nodes.clear()
        nodes.update(known)
        batch.inserted = inserted
        if len(events) == 1:  # a plain event the insert refused: the function's answer
            outcomes = [(yield _alone(cursor, events[0], nodes))]
        else:
            half = len(events) // 2
            outcomes = (yield _guarded(cursor, events[:half], types, nodes, batch)) + \
                (yield _guarded(cursor, events[half:], types, nodes, batch))
    _owe(cursor, "RELEASE SAVEPOINT csm_ras_batch")
    return outcomes


@defer.inlineCallbacks
def _run(cursor, events, types, nodes, batch):
    """``events`` in order, plain runs many to a statement; raises where one is refused."""
    outcomes, run = [], []
    for event in events:
        kind = _plain(event, types, nodes)
        message = substitute(kind["message"], event, kind["severity"]) if kind is not None else None
        if message is not None:
            run.append((event, kind, message, nodes.get(event.get("location_name") or "")))
            continue
        if run:
            outcomes.extend((yield _insert(cursor, run, batch)))
            run = []
        yield _execute(cursor, ALONE, (json.dumps(event, default=str),))
        outcomes.append(_note_state(cursor.fetchone()[0], event, nodes))
    if run:
        outcomes.extend((yield _insert(cursor, run, batch)))
    return outcomes


def _note_state(outcome, event, nodes):
    """``outcome`` of ``event``, its node's new state noted in ``nodes``."""
    if isinstance(outcome, dict) and outcome.get("state_changed") and isinstance(event.get("location_name"), str):
        nodes[event["location_name"]] = outcome.get("set_state")
    return outcome


@defer.inlineCallbacks
def _insert(cursor, run, batch):
    rows = [{"msg_id": event["msg_id"], "seq": kind["seq"], "stamp": event.get("time_stamp"),
             "location": event.get("location_name") or "", "message": message,
             "kvcsv": event.get("kvcsv"), "raw_data": event.get("raw_data")} for event, kind, message, _ in run]
    yield _execute(cursor, INSERT, (json.dumps(rows), len(rows)))
    stored = sorted(cursor.fetchall())
    batch.inserted += len(stored)
    return [{"stored": True, "rec_id": rec_id, "count": 1, "message": message, "severity": kind["severity"],
             "control_action": kind["control_action"], "set_state": None, "state_changed": False,
             "node_state": state, "time_stamp": stamp, "master_time_stamp": master}
            for (_, kind, message, state), (rec_id, stamp, master) in zip(run, stored)]


@defer.inlineCallbacks
def _alone(cursor, event, nodes):
    """One event through ``fn_csm_ras_event_create`` under its own savepoint."""
    _owe(cursor, "SAVEPOINT csm_ras_event")
    try:
        yield _execute(cursor, ALONE, (json.dumps(event, default=str),))
    except (psycopg2.InterfaceError, psycopg2.OperationalError):
        raise
    except psycopg2.Error as exc:
        yield cursor.execute("ROLLBACK TO SAVEPOINT csm_ras_event")
        _owe(cursor, "RELEASE SAVEPOINT csm_ras_event")
        error = db_error(exc)
        log.error("RAS event {msg_id} on {node} refused by the database and dropped: {error}",
                  msg_id=event.get("msg_id"), node=event.get("location_name"), error=error.errmsg)
        return error
    _owe(cursor, "RELEASE SAVEPOINT csm_ras_event")
    return _note_state(cursor.fetchone()[0], event, nodes)


class EventBatch:
    """Events waiting for one queued write; sealed once the write runs (a write run again
    after an outage writes the same events)."""

    def __init__(self):
        self.events = []
        self.waiting = []
        self.sealed = None
        self.inserted = 0  # events its set-based statements wrote

    def seal(self):
        if self.sealed is None:
            self.sealed = list(self.events)
        return self.sealed

    def fail(self, failure):
        unwaited = self.waiting.count(None)
        if unwaited:
            log.error("{n} fire-and-forget RAS events not stored: {error}", n=unwaited,
                      error=failure.getErrorMessage())
        for d in self.waiting:
            if d is not None:
                d.errback(failure)


class EventBatches:
    """Events for the pool's write queue: an event joins the RAS write waiting at the queue's
    tail while it has not started, or starts a new one.

    The outcomes of a committed write are handed on in order, ``FOLLOW_UPS_A_TURN`` a
    reactor turn: a flood's transaction of tens of thousands of events otherwise held
    the reactor (event log lines, counters, actions) before the write queue could start
    its next transaction, and PostgreSQL waited.
    """

    def __init__(self, pool, max_events=MAX_EVENTS, after=None, clock=None):
        self.pool = pool
        self.clock = pool.reactor if clock is None else clock
        self.max_events = max_events
        #: ``after(outcome, event)`` for each event written that nobody waits for
        self.after = after
        self._open = None
        self.events = 0  # events written
        self.inserted = 0  # of which by set-based statements
        self._outcomes = collections.deque()  # (Deferred or None, event, outcome) to hand on, in order
        self._turn = None  # the call that hands on the next slice

    def add(self, event, wait=True):
        """A Deferred for the event's outcome (a dict) once written; without ``wait``, None
        (the outcome goes to ``after``: no Deferred an event in a flood)."""
        batch, queue = self._open, self.pool.queue
        joins = (batch is not None and batch.sealed is None and len(batch.events) < self.max_events
                 and queue and queue[-1].args == (batch,))
        if not joins:
            batch = self._open = EventBatch()
        d = defer.Deferred() if wait else None
        batch.events.append(event)
        batch.waiting.append(d)
        if not joins:
            written = self.pool.enqueue_write("ras", process_events, batch, want_result=True)
            written.addCallbacks(self._written, batch.fail, callbackArgs=(batch,))
        return d

    def _written(self, outcomes, batch):
        self.events += len(outcomes)
        self.inserted += batch.inserted
        self._outcomes.extend(zip(batch.waiting, batch.sealed, outcomes))
        if self._turn is None:
            self._hand_on()

    def _hand_on(self):
        """A slice of the outcomes now (``_hand_slice``), the rest next turn."""
        self._turn = None
        self._hand_slice()
        if self._outcomes and self._turn is None:
            self._turn = self.clock.callLater(0, self._hand_on)

    def _hand_slice(self):
        """Each outcome to its Deferred, or to ``after(outcome, event)`` for an event nobody
        waits for (one refused is left: the batch logged it), ``FOLLOW_UPS_A_TURN`` at most."""
        pending, after = self._outcomes, self.after
        for _ in range(min(len(pending), FOLLOW_UPS_A_TURN)):
            d, event, outcome = pending.popleft()
            if d is None:
                if not isinstance(outcome, Exception):
                    after(outcome, event)
            elif isinstance(outcome, Exception):
                d.errback(outcome)
            else:
                d.callback(outcome)

    def settle(self):
        """Hand on every outcome left now (the master's stop, before its event log closes)."""
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        while self._outcomes:
            self._hand_slice()
