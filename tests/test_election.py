"""The master's lease: a real PostgreSQL, two contenders, a lost session, a silent holder."""

import socket

from twisted.internet import defer, reactor, task
from twisted.internet.error import ConnectionLost
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python import failure
from twisted.trial import unittest

from csm import election
from tests import dbfixture

TTL = 2.0


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


class LeaseTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        _name, self.dsn = dbfixture.fresh_database(self)
        self.changes = {}

    def lease(self, node, ttl=TTL):
        changes = self.changes.setdefault(node, [])
        lease = election.Lease(reactor, self.dsn, node, ttl, changes.append, interval=0.25)
        self.addCleanup(lease.stop)
        lease.start()
        return lease

    @defer.inlineCallbacks
    def wait(self, predicate, timeout=15.0, what="condition"):
        for _ in range(int(timeout / 0.05)):
            if predicate():
                return
            yield sleep(0.05)
        self.fail("timed out waiting for %s" % what)

    def sessions(self, node):
        return dbfixture.server().query(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
            (election.application_name(node),))[0][0]

    @defer.inlineCallbacks
    def test_one_active_the_other_takes_over_when_its_session_is_lost(self):
        first = self.lease("m1")
        yield self.wait(lambda: first.state == election.ACTIVE, what="m1 active")
        second = self.lease("m2")
        yield self.wait(lambda: second.holder == "m1", what="m2 to see m1")
        yield sleep(1.0)
        self.assertEqual((first.state, second.state), (election.ACTIVE, election.STANDBY))
        self.assertEqual(self.changes, {"m1": [election.ACTIVE], "m2": []})
        # the server ends m1's session: m1 stops at once
        dbfixture.server().query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = %s", (election.application_name("m1"),))
        yield self.wait(lambda: first.state == election.STANDBY, timeout=2, what="m1 fenced")
        self.assertIn("lost", first.fenced_reason)
        # m1 dies: m2 takes the lease
        yield self.wait(lambda: first.connection is not None, what="m1 connected again")
        first.stop()
        yield self.wait(lambda: second.state == election.ACTIVE, what="m2 active")
        self.assertEqual(self.changes["m1"][:2], [election.ACTIVE, election.STANDBY])
        # a master started again stands by
        third = self.lease("m3")
        yield self.wait(lambda: third.holder == "m2", what="m3 standing by")
        self.assertEqual(third.state, election.STANDBY)
        masters = yield second.masters()
        self.assertEqual(masters, {"m2": 1, "m3": 1})

    @defer.inlineCallbacks
    def test_a_silent_holder_is_ended_and_replaced(self):
        first = self.lease("m1")
        yield self.wait(lambda: first.state == election.ACTIVE, what="m1 active")
        # m1 goes silent (as a stopped process): its timers stop, its session stays open
        first.running = False
        first._timer.cancel()
        first._deadline.cancel()
        second = self.lease("m2")
        yield self.wait(lambda: second.holder == "m1", what="m2 to see m1")
        yield self.wait(lambda: second.state == election.ACTIVE, timeout=TTL + 5, what="m2 active")
        # m1's sessions were ended before m2 became active
        self.assertEqual(self.sessions("m1"), 0)
        self.assertEqual(first.state, election.STANDBY)

    @defer.inlineCallbacks
    def test_the_previous_holder_comes_back_first(self):
        """After every session is lost (a database fail-over), the master that held the
        lease takes it again; the standby waits one more look."""
        first = self.lease("m1")
        yield self.wait(lambda: first.state == election.ACTIVE, what="m1 active")
        second = self.lease("m2")
        yield self.wait(lambda: second.holder == "m1", what="m2 to see m1")
        dbfixture.server().query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name LIKE 'csm-master %%'")
        yield self.wait(lambda: election.ACTIVE in (first.state, second.state), what="a master active")
        yield sleep(1.0)
        self.assertEqual((first.state, second.state), (election.ACTIVE, election.STANDBY))


class SilentServerTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_a_server_that_never_answers_does_not_hold_up_the_election(self):
        silent = socket.socket()
        self.addCleanup(silent.close)
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # connections are taken by the kernel, never answered
        lease = election.Lease(reactor, "host=127.0.0.1 port=%d dbname=x user=x" % silent.getsockname()[1],
                               "m1", 1.0, lambda state: None, interval=0.25)
        self.addCleanup(lease.stop)
        lease.start()
        yield sleep(3.5)
        self.assertGreaterEqual(lease._connect_failures, 2)  # each attempt gave up after the lease
        self.assertEqual(lease.state, election.STANDBY)


class DeadlineTests(unittest.TestCase):
    def test_no_renewal_in_time_fences_by_the_clock(self):
        clock = task.Clock()
        changes = []
        lease = election.Lease(clock, "dbname=none", "m1", 4.0, changes.append)
        lease.state = election.ACTIVE
        lease._arm_deadline(clock.seconds())
        clock.advance(2.9)
        self.assertEqual(lease.state, election.ACTIVE)
        clock.advance(0.2)  # 0.75 * ttl: before a standby may end this master's sessions
        self.assertEqual((lease.state, changes), (election.STANDBY, [election.STANDBY]))
        self.assertIn("no renewal", lease.fenced_reason)


class _PendingConnection:
    """A lease session whose queries answer when the test says."""

    def __init__(self):
        self.calls = []

    def runQuery(self, sql, args):
        self.calls.append(defer.Deferred())
        return self.calls[-1]


class LostSessionLogTests(unittest.SynchronousTestCase):
    def test_session_lost_during_a_look_is_one_clear_line(self):
        """The session lost while a standby's look at the lock is under way: one line saying so,
        not a NoneType error from the look's next query."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        lease = election.Lease(task.Clock(), "dbname=unused", "m2", TTL, lambda state: None, interval=0.25)
        lease.running = True
        session = lease.connection = _PendingConnection()
        lease._tick()  # looks at who holds the lock
        lease._session_lost(session, failure.Failure(ConnectionLost("server closed the connection unexpectedly")))
        session.calls[0].callback([])  # the look's answer comes after all: the lock is free
        lines = [formatEvent(e) for e in events if e.get("log_namespace") == "csmd"]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^master election: the lease session was lost \(.*server closed the connection "
                                   r"unexpectedly.*\); connecting again$")
        self.assertEqual((lease.state, lease.connection), (election.STANDBY, None))
        lease.stop()
