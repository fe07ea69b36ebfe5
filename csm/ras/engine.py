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

Steps 1-5 are one stored function (``fn_csm_ras_event_create``, schema 19.1),
called through the pool's write queue so events from daemons survive a database
outage in order, many to a transaction; events of plain types are inserted many
to a statement (``csm.ras.batch``).
"""

import datetime

from csm import logs
from csm.errors import CSMError, ErrorCode

log = logs.logger("csmras")

#: set_state -> the node states it may be applied from (CAST's SQL guard)
ALLOWED_FROM = {
    "SOFT_FAILURE": ("DISCOVERED", "IN_SERVICE"),
    "HARD_FAILURE": ("DISCOVERED", "IN_SERVICE", "SOFT_FAILURE"),
}
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ")

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


def outcome_of(result, event):
    """What happened to ``event`` (``result``: a dict from ``fn_csm_ras_event_create`` or the batch);
    ``CSMError`` for an event the database refused."""
    if "error" in result:
        raise CSMError(ErrorCode.CSMERR_DB_ERROR, result["error"])
    result.update(msg_id=event["msg_id"], location_name=event.get("location_name") or "")
    if result.get("stored") and result.get("set_state") and not result.get("state_changed") \
            and result.get("node_state"):
        log.info("RAS {msg_id}: {node} stays {state} ({target} only from {allowed})", msg_id=event["msg_id"],
                 node=result["location_name"], state=result["node_state"], target=result["set_state"],
                 allowed=ALLOWED_FROM.get(result["set_state"]))
    return result


class RasEngine:
    """Creates events through the pool's write queue and runs what follows a commit."""

    def __init__(self, pool, actions=None, event_log=None, on_event=None):
        self.pool = pool
        self.actions = actions
        self.event_log = event_log
        self.on_event = on_event  # metrics: called with each outcome
        from csm.ras.batch import EventBatches  # here: computes import this module, never psycopg2
        self.batches = EventBatches(pool, after=self._after_unwaited)

    def create(self, event):
        """Queue an event; the Deferred fires with the outcome once written."""
        event = dict(event)
        return self.batches.add(event).addCallback(self._after, event)

    def submit(self, event):
        """Queue a fire-and-forget event (``event`` is the engine's from now on): what follows
        its commit is as for ``create``, without a Deferred; one refused is logged and dropped."""
        self.batches.add(event, wait=False)

    def settle(self):
        """Hand on now what written events left to later turns (``EventBatches.settle``)."""
        self.batches.settle()

    def _after_unwaited(self, result, event):
        try:
            self._after(result, event)
        except CSMError as exc:  # the stored function's answer (an unknown type): nobody else to tell
            log.error("RAS event {msg_id} on {node} not stored: {error}", msg_id=event.get("msg_id"),
                      node=event.get("location_name"), error=exc.errmsg)
        except Exception:
            log.failure("after RAS event {msg_id} on {node}", msg_id=event.get("msg_id"),
                        node=event.get("location_name"))

    def _after(self, result, event):
        outcome = outcome_of(result, event)
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
