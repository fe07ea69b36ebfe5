"""The master's RAS pipeline (CAST's RasEventCreate, with its flaws fixed).

1. look up the type and the node's state (an unknown msg_id is an error naming it);
2. suppress the event when its type is disabled or the node is in MAINTENANCE
   or OUT_OF_SERVICE (no row);
3. substitute ``$(var)`` from the event's fields and its ``kvcsv``;
4. count it against the type's threshold (``count`` within ``period`` seconds),
   in the database, so a master restart loses no counts;
5. on firing: store it bound to the exact audit version of its type, move the
   node to ``set_state`` when its current state allows, and record that the
   state change came from this event;
6. after the commit: run the control action (and ``fatal_event`` for FATAL
   events), and append the event to the RAS event log (JSON lines for the BDS).

Steps 1-5 are one transaction (``process_event``), run through the pool's write
queue so events from daemons survive a database outage in order.
"""

import datetime
import json

from twisted.internet import defer

from csm import logs
from csm.errors import CSMError, ErrorCode
from csm.ras.substitution import parse_kvcsv, substitute

log = logs.logger("csmras")

SUPPRESSING_STATES = ("MAINTENANCE", "OUT_OF_SERVICE")
#: set_state -> the node states it may be applied from (CAST's SQL guard)
ALLOWED_FROM = {
    "SOFT_FAILURE": ("DISCOVERED", "IN_SERVICE"),
    "HARD_FAILURE": ("DISCOVERED", "IN_SERVICE", "SOFT_FAILURE"),
}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")

TYPE_AND_NODE = """
SELECT t.severity, t.message, t.control_action, t.threshold_count, t.threshold_period, t.enabled,
       t.set_state, (SELECT max(a.msg_id_seq) FROM csm_ras_type_audit a WHERE a.msg_id = t.msg_id),
       (SELECT n.state FROM csm_node n WHERE n.node_name = %s)
  FROM csm_ras_type t WHERE t.msg_id = %s
"""

COUNT_THRESHOLD = """
INSERT INTO csm_ras_threshold AS t (msg_id, location_name, window_start, count)
VALUES (%(msg_id)s, %(location)s, now(), 1)
ON CONFLICT (msg_id, location_name) DO UPDATE SET
    count = CASE WHEN t.window_start + make_interval(secs => %(period)s) < now() THEN 1 ELSE t.count + 1 END,
    window_start = CASE WHEN t.window_start + make_interval(secs => %(period)s) < now()
                        THEN now() ELSE t.window_start END
RETURNING count
"""

INSERT_EVENT = """
INSERT INTO csm_ras_event_action (msg_id, msg_id_seq, time_stamp, master_time_stamp, location_name, count,
                                  message, kvcsv, raw_data)
VALUES (%s, %s, coalesce(%s::timestamp, now()), now(), %s, %s, %s, %s, %s)
RETURNING rec_id, time_stamp, master_time_stamp
"""


def parse_time_stamp(text):
    """Validate a caller's time stamp; ``CSMError`` (invalid parameter) when unreadable."""
    if not text:
        return None
    for fmt in TIME_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).strftime("%Y-%m-%d %H:%M:%S.%f")
        except ValueError:
            continue
    raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid time_stamp %r (use YYYY-MM-DD HH:MM:SS[.ffffff])" % text)


@defer.inlineCallbacks
def process_event(cursor, event):
    """Steps 1-5 in one transaction; returns what happened as a dict."""
    msg_id = event["msg_id"]
    location = event.get("location_name") or ""
    yield cursor.execute(TYPE_AND_NODE, (location, msg_id))
    row = cursor.fetchone()
    if row is None:
        raise CSMError(ErrorCode.CSMERR_DB_ERROR, "invalid msg_id: %s is not a RAS type" % msg_id)
    severity, template, action, threshold_count, threshold_period, enabled, set_state, seq, node_state = row
    outcome = {"msg_id": msg_id, "location_name": location, "severity": severity, "stored": False,
               "control_action": action, "set_state": set_state}
    if not enabled:
        return dict(outcome, suppressed="the RAS type is disabled")
    if node_state in SUPPRESSING_STATES:
        return dict(outcome, suppressed="%s is in %s" % (location, node_state))
    fields = parse_kvcsv(event.get("kvcsv"))
    fields.update({k: event.get(k) for k in ("msg_id", "location_name", "time_stamp", "raw_data", "kvcsv")
                   if event.get(k) is not None})
    fields.setdefault("severity", severity)
    outcome["message"] = message = substitute(template or "", fields)
    count = 1
    if (threshold_count or 0) >= 2 and (threshold_period or 0) >= 1:
        yield cursor.execute(COUNT_THRESHOLD, {"msg_id": msg_id, "location": location, "period": threshold_period})
        count = cursor.fetchone()[0]
        if count < threshold_count:
            return dict(outcome, count=count, below_threshold=True)
        yield cursor.execute("DELETE FROM csm_ras_threshold WHERE msg_id = %s AND location_name = %s",
                             (msg_id, location))
    yield cursor.execute(INSERT_EVENT, (msg_id, seq, event.get("time_stamp"), location, count, message,
                                        event.get("kvcsv"), event.get("raw_data")))
    rec_id, time_stamp, master_time_stamp = cursor.fetchone()
    outcome.update(stored=True, rec_id=rec_id, count=count, time_stamp=str(time_stamp),
                   master_time_stamp=str(master_time_stamp))
    if set_state and node_state is not None:
        yield cursor.execute("SELECT set_config('csm.alteration', 'RAS EVENT', true), "
                             "set_config('csm.ras_rec_id', %s, true), set_config('csm.ras_msg_id', %s, true)",
                             (str(rec_id), msg_id))
        yield cursor.execute("UPDATE csm_node SET state = %s WHERE node_name = %s AND state = ANY(%s::compute_node_states[])",
                             (set_state, location, list(ALLOWED_FROM.get(set_state, ()))))
        outcome["state_changed"] = cursor.rowcount == 1
        if cursor.rowcount != 1:
            log.info("RAS {msg_id}: {node} stays {state} ({target} only from {allowed})", msg_id=msg_id,
                     node=location, state=node_state, target=set_state, allowed=ALLOWED_FROM.get(set_state))
    return outcome


class RasEngine:
    """Creates events through the pool's write queue and runs what follows a commit."""

    def __init__(self, pool, actions=None, event_log=None, on_event=None):
        self.pool = pool
        self.actions = actions
        self.event_log = event_log
        self.on_event = on_event  # metrics: called with each outcome

    def create(self, event):
        """Queue an event; the Deferred fires with the outcome once written."""
        d = self.pool.enqueue_write("ras", process_event, dict(event), want_result=True)
        return d.addCallback(self._after, event)

    def _after(self, outcome, event):
        if outcome.get("suppressed"):
            log.info("RAS EVENT SUPPRESSED {msg_id} on {node}: {why}", msg_id=outcome["msg_id"],
                     node=outcome["location_name"], why=outcome["suppressed"])
            return outcome
        record = dict(event, message=outcome.get("message"), severity=outcome.get("severity"),
                      count=outcome.get("count"), rec_id=outcome.get("rec_id"),
                      master_time_stamp=outcome.get("master_time_stamp"))
        if self.event_log is not None:
            self.event_log.write({"type": "csm-ras-event", "data": record})
        if self.on_event is not None:
            self.on_event(outcome)
        if outcome.get("stored") and self.actions is not None:
            self.actions.run_for(record, outcome.get("control_action"), outcome.get("severity"))
        return outcome


class JsonLinesLog:
    """Append-only JSON lines (the RAS event log shipped to the BDS)."""

    def __init__(self, path):
        self.path = path

    def write(self, record):
        with open(self.path, "a") as f:
            f.write(json.dumps(record, default=str, sort_keys=True) + "\n")
