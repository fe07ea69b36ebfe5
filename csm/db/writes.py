"""Queued writes and the transaction that runs a batch of them.

A batch runs in one transaction, each write under its own savepoint unless it is
``safe_in_batch``. Its BEGIN also reads the transaction's id and backend, so that
when the connection goes after COMMIT was sent the pool can ask
(``TRANSACTION_STATUS``) whether it committed instead of writing it twice.
"""

import attrs
import psycopg2
from twisted.internet import defer

from csm.db.connection import db_error

BATCH = 200


class BatchAborted(Exception):
    """A write broke the batch's transaction: it fails alone, the others are run again."""

    def __init__(self, index, error):
        super().__init__(index, error)
        self.index = index
        self.error = error


@attrs.define
class Attempt:
    """One transaction of queued writes: its id and backend, and its outcomes once all ran
    (then its COMMIT went out: if the connection goes now, it may have committed)."""
    batch: list
    xid: int = None
    pid: int = None
    outcomes: list = None
    committed: bool = None  # asked once the connection went after COMMIT was sent


#: whether a transaction committed; its backend, if still in it (a silent server), is ended
TRANSACTION_STATUS = ("SELECT count(pg_terminate_backend(pid, %(wait_ms)s)) FROM pg_stat_activity WHERE pid = %(pid)s "
                      "AND backend_xid::text::bigint = mod(%(xid)s, 4294967296); SELECT txid_status(%(xid)s)")
#: milliseconds the server waits for the backend it ends (and its transaction with it) to exit
SETTLE_MS = 1000


@defer.inlineCallbacks
def run_batch(cursor, attempt):
    """Run writes in one transaction. Each has its own savepoint unless its function is
    ``safe_in_batch`` (it never leaves the transaction broken), so one bad write does
    not spoil the others."""
    attempt.outcomes = None
    attempt.xid, attempt.pid = cursor.fetchone()  # from its BEGIN
    outcomes = []
    for index, write in enumerate(attempt.batch):
        safe = getattr(write.function, "safe_in_batch", False)
        if not safe:
            yield cursor.execute("SAVEPOINT csm_write")
        try:
            result = yield defer.maybeDeferred(write.function, cursor, *write.args)
        except (psycopg2.InterfaceError, psycopg2.OperationalError):
            raise  # the connection is gone (or a deadlock): the whole batch waits, or is run again
        except psycopg2.Error as exc:
            if safe:
                raise BatchAborted(index, db_error(exc))
            yield cursor.execute("ROLLBACK TO SAVEPOINT csm_write")
            outcomes.append((False, db_error(exc)))
        except Exception as exc:
            if not safe:
                yield cursor.execute("ROLLBACK TO SAVEPOINT csm_write")
            outcomes.append((False, exc))
        else:
            if not safe:
                yield cursor.execute("RELEASE SAVEPOINT csm_write")
            outcomes.append((True, result))
    attempt.outcomes = outcomes
    return outcomes


#: the transaction's id and backend come with its BEGIN (no round trip of their own)
run_batch.begin = "BEGIN; SELECT txid_current(), pg_backend_pid()"


@attrs.define(eq=False)
class Write:
    """One queued write: ``function(cursor, *args)``, its kind (what overflow drops first)."""

    kind: str
    function: object
    args: tuple
    done: object = None  # a Deferred for the result, when the caller wants one
    number: int = 0  # its place in the order of all writes

    def finish(self, result=None, error=None):
        if self.done is not None and not self.done.called:
            if error is not None:
                self.done.errback(error)
            else:
                self.done.callback(result)
