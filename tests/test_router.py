"""The router in memory: a compute's router linked to a master's over iosim, on a Clock.

Where a request runs comes from the registry (``Router.route``): a caller's request is
answered on the roles in ``handled_on`` and climbs from the others; the daemons' own
messages (INT) are for the daemon they reach.
"""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from csm.api.registry import Command, Field, Registry
from csm.api.router import HERE, UNKNOWN, UNSENT, UP, Router
from csm.errors import CSMError, ErrorCode
from csm.net.link import LinkOwner, LinkProtocol
from csm.wire import Flags, Message
from csm.wire.message import encode_body

BOTH = frozenset({"compute", "master"})
ALLOCATE = Command(name="allocation_create", cmd_id=1, multicast=True, open_input=True)  # the master's; INT on computes
STEP_CGROUP = Command(name="allocation_step_cgroup_create", cmd_id=2, handled_on=BOTH, open_input=True,
                      master_with=("compute_nodes",))
HEALTH = Command(name="infrastructure_health_check", cmd_id=3, adds_local_daemon=True, open_input=True)
QUERY = Command(name="node_attributes_query", cmd_id=4, fields=(Field("node_names", "list"),))
NOWHERE = Command(name="node_delete", cmd_id=5, handled_on=BOTH)
REGISTRY = Registry([ALLOCATE, STEP_CGROUP, HEALTH, QUERY, NOWHERE])


class Timeouts:
    def timeout(self, name):
        return 10.0


class Daemon:
    """What the router reads of a daemon, and which handler ran where."""

    api_timeouts = Timeouts()
    encode_body = staticmethod(encode_body)

    def __init__(self, role, clock, db=None):
        self.role = role
        self.clock = clock
        self.db = db
        self.ran = []

    def info(self):
        return {"node": self.role + "-node", "role": self.role}

    def handler(self, name):
        def handle(ctx, body):
            self.ran.append((name, ctx.message.command))
            return {"by": self.role, "body": body, "pool": ctx.pool}
        return handle


class Dispatch(LinkOwner):
    """The master's side of the link: requests go to its router, replies back."""

    def __init__(self, router):
        self.router = router

    def hello(self, link):
        return {"version": "1.0.0", "node": "master-node", "role": "master"}

    def message_received(self, link, message):
        self.router.respond(message, link, link.send)  # as Daemon.dispatch


class Quiet(LinkOwner):
    def hello(self, link):
        return {"version": "1.0.0", "node": "compute-node", "role": "compute"}


class LocalCaller:
    """A caller on the daemon's unix socket."""

    is_local = True


class RouterTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.master = Daemon("master", self.clock, db="the pool")
        self.compute = Daemon("compute", self.clock)
        master_handlers = {command.cmd_id: self.master.handler("master") for command in REGISTRY}
        del master_handlers[NOWHERE.cmd_id]
        self.master_router = Router(self.master, REGISTRY, master_handlers, upstream=None)
        compute_handlers = {cmd: self.compute.handler("compute") for cmd in (1, 2, 3)}
        self.compute_router = Router(self.compute, REGISTRY, compute_handlers, upstream=lambda: self.link)
        server = LinkProtocol(Dispatch(self.master_router), self.clock, initiator=False)
        client = LinkProtocol(Quiet(), self.clock, initiator=True)
        self.link, _, self.pump = iosim.connectedServerAndClient(lambda: server, lambda: client, greet=False)
        self.pump.flush()

    def ask(self, command, body=None, flags=Flags.NONE, link=None):
        replies = []
        self.compute_router.handle(Message.make(command.cmd_id, body, flags=flags), link).addCallback(replies.append)
        self.pump.flush()
        self.assertEqual(len(replies), 1)
        return replies[0]

    def test_callers_request_climbs_past_a_handler_for_the_multicast(self):
        reply = self.ask(ALLOCATE, {"x": 1})
        self.assertEqual(reply.body()["by"], "master")
        self.assertEqual(self.compute.ran, [])
        self.assertEqual(self.master.ran, [("master", ALLOCATE.cmd_id)])

    def test_daemon_message_runs_where_it_arrives(self):
        reply = self.ask(ALLOCATE, {"x": 1}, flags=Flags.INT)
        self.assertEqual(reply.body()["by"], "compute")
        self.assertEqual(self.master.ran, [])

    def test_handled_here_when_the_registry_says_so(self):
        self.assertEqual(self.ask(STEP_CGROUP, {"allocation_id": 1}).body()["by"], "compute")

    def test_master_with_sends_it_to_the_master(self):
        reply = self.ask(STEP_CGROUP, {"allocation_id": 1, "compute_nodes": ["c01"]})
        self.assertEqual(reply.body()["by"], "master")
        self.assertEqual(self.compute.ran, [])

    def test_no_handler_on_a_role_that_should_answer_is_unknown(self):
        error = self.ask(NOWHERE).error()
        self.assertEqual(error.errcode, ErrorCode.CSMERR_CMD_UNKNOWN)
        replies = []
        self.master_router.handle(Message.make(NOWHERE.cmd_id, {}), None).addCallback(replies.append)
        self.assertEqual(replies[0].error().errcode, ErrorCode.CSMERR_CMD_UNKNOWN)

    def test_no_handler_here_climbs(self):
        reply = self.ask(QUERY, {"node_names": "c01,c02"})
        self.assertEqual(reply.body()["body"], {"node_names": ["c01", "c02"]})

    def test_entry_daemon_adds_itself_for_a_local_caller(self):
        reply = self.ask(HEALTH, {}, link=LocalCaller())
        self.assertEqual(reply.body()["by"], "master")
        self.assertEqual(reply.body()["local_daemon"], {"node": "compute-node", "role": "compute"})
        self.assertNotIn("local_daemon", self.ask(HEALTH, {}).body())

    def test_handler_context_carries_the_pool(self):
        self.assertEqual(self.ask(QUERY, {}).body()["pool"], "the pool")
        self.assertIsNone(self.ask(ALLOCATE, {}, flags=Flags.INT).body()["pool"])

    def test_context_without_a_pool_is_a_database_error(self):
        seen = []

        def handler(ctx, body):
            seen.append(ctx)
            return ctx.db.runQuery("SELECT 1")
        router = Router(Daemon("master", self.clock), REGISTRY, {QUERY.cmd_id: handler}, upstream=None)
        replies = []
        router.handle(Message.make(QUERY.cmd_id, {}), None).addCallback(replies.append)
        self.assertEqual(replies[0].error().errcode, ErrorCode.CSMERR_DAEMON_DB_ERR)
        self.assertRaises(CSMError, lambda: seen[0].db)

    def test_upstream_silence_is_a_timeout_on_the_clock(self):
        replies = []
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: defer.Deferred()  # never answers
        self.compute_router.handle(Message.make(QUERY.cmd_id, {}), None).addCallback(replies.append)
        self.pump.flush()
        self.assertEqual(replies, [])
        self.clock.advance(10.0)
        self.assertEqual(replies[0].error().errcode, ErrorCode.CSMERR_TIMEOUT)

    def test_no_upstream_is_a_send_error(self):
        self.link = None
        self.assertEqual(self.ask(QUERY, {}).error().errcode, ErrorCode.CSMERR_SENDRCV_ERROR)

    def test_route_table(self):
        route = self.compute_router.route
        self.assertEqual(route(ALLOCATE, True, Message.make(1, {})), UP)
        self.assertEqual(route(ALLOCATE, True, Message.make(1, {}, flags=Flags.INT)), HERE)
        self.assertEqual(route(STEP_CGROUP, True, Message.make(2, {"compute_nodes": []})), HERE)
        self.assertEqual(route(NOWHERE, False, Message.make(5, {})), UNKNOWN)
        self.assertEqual(route(None, False, Message.make(99, {})), UNKNOWN)
        self.assertEqual(route(None, True, Message.make(99, {})), HERE)

    def test_relayed_request_takes_no_deferred(self):
        """The path of every relayed frame (``Router.respond``, ``LinkProtocol.relay``) and a
        handler that answers at once make no Deferred (issue 21: a quarter of a hop's CPU)."""
        made = []

        class Counting(defer.Deferred):
            def __init__(self, *args, **kw):
                made.append(self)
                super().__init__(*args, **kw)
        self.patch(defer, "Deferred", Counting)
        replies = []
        self.compute_router.respond(Message.make(QUERY.cmd_id, {"node_names": ["c01"]}, message_id=77), None,
                                    replies.append)
        self.pump.flush()
        self.assertEqual(replies[0].body()["by"], "master")
        self.assertEqual(replies[0].message_id, 77)
        self.assertEqual(made, [])

    def test_entry_timeout_bounds_a_forwarded_request(self):
        """``respond(timeout=)``: the local API's timeout, shorter than the hop's, is the one kept."""
        replies = []
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: defer.Deferred()  # never answers
        self.compute_router.respond(Message.make(QUERY.cmd_id, {}), None, replies.append, timeout=2.0)
        self.pump.flush()
        self.clock.advance(2.0)
        self.assertEqual(replies[0].error().errcode, ErrorCode.CSMERR_TIMEOUT)

    def test_result_that_is_not_json_is_an_error_reply(self):
        """A handler's result that cannot be encoded is answered CSMERR_GENERIC (it was no reply:
        the caller waited for its timeout)."""
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: {"when": object()}
        error = self.ask(QUERY, {}).error()
        self.assertEqual(error.errcode, ErrorCode.CSMERR_GENERIC)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_failing_answer_does_not_reach_the_caller(self):
        """What ``answer`` raises is logged: it would otherwise end the link's read."""
        def broken(reply):
            raise RuntimeError("the link's write failed")
        self.compute_router.respond(Message.make(NOWHERE.cmd_id, {}), None, broken)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_fire_and_forget_builds_no_reply(self):
        """A NOREPLY message handled here or sent on upstream is answered ``UNSENT`` (one shared
        reply) instead of a reply built and encoded for nobody; the handler still runs."""
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: {"when": object()}  # not JSON: no matter
        answers = []
        self.master_router.respond(Message.make(QUERY.cmd_id, {}, flags=Flags.NOREPLY), None, answers.append)
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: defer.succeed({"later": True})
        self.master_router.respond(Message.make(QUERY.cmd_id, {}, flags=Flags.NOREPLY), None, answers.append)
        self.compute_router.respond(Message.make(QUERY.cmd_id, {}, flags=Flags.NOREPLY), None, answers.append)
        self.pump.flush()
        self.assertEqual(len(answers), 3)
        for answer in answers:
            self.assertIs(answer, UNSENT)
        self.assertEqual(self.flushLoggedErrors(TypeError), [])

    def test_a_fire_and_forget_message_refused_is_logged(self):
        """Nobody reads a NOREPLY message's error reply: the refusal is logged with the API, the
        error and the body (a daemon's RAS event of bad input went without a line); an error
        a caller reads is not."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)

        def refuse(ctx, body):
            raise CSMError(ErrorCode.CSMERR_INVALID_PARAM, "invalid time_stamp 'noon'")
        self.master_router.handlers[QUERY.cmd_id] = refuse
        answers = []
        for body in ({"node_names": ["c01"]}, {"no_such_field": 1}):  # refused by the handler, by validation
            self.master_router.respond(Message.make(QUERY.cmd_id, body, flags=Flags.NOREPLY), None, answers.append)
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: defer.fail(
            CSMError(ErrorCode.CSMERR_DB_ERROR, "refused later"))
        self.master_router.respond(Message.make(QUERY.cmd_id, {}, flags=Flags.NOREPLY), None, answers.append)
        self.master_router.respond(Message.make(QUERY.cmd_id, {}), None, answers.append)  # its caller is told
        self.assertEqual([answer.is_error for answer in answers], [True] * 4)
        lines = [formatEvent(event) for event in events if event.get("log_level") == LogLevel.warn]
        self.assertEqual(len(lines), 3, lines)
        self.assertTrue(all("node_attributes_query" in line for line in lines), lines)
        self.assertIn("invalid time_stamp 'noon'", lines[0])
        self.assertIn("c01", lines[0])
        self.assertIn("no_such_field", lines[1])
        self.assertIn("refused later", lines[2])

    def test_a_cancelled_request_is_forgotten_upstream(self):
        """Cancelling ``handle``'s or ``forward``'s Deferred drops the forwarded request from the
        link's pending table at once (it stayed until its hop timeout); its late reply is ignored."""
        answers = []
        self.master_router.handlers[QUERY.cmd_id] = lambda ctx, body: answers.append(defer.Deferred()) or answers[-1]
        for send in (self.compute_router.handle, self.compute_router.forward):
            d = send(Message.make(QUERY.cmd_id, {}))
            self.pump.flush()
            self.assertEqual(len(self.link.pending), 1)
            d.cancel()
            self.failureResultOf(d, defer.CancelledError)
            self.assertEqual((self.link.pending, self.link._sweep), ({}, None))  # no timer left either
            answers[-1].callback({"late": True})
            self.pump.flush()  # ignored: no second result for the cancelled Deferred
        self.assertEqual(len(answers), 2)
