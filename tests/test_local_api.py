"""The local API over a real unix socket: ACL, credentials, timeouts, bad input.

The daemon's side keeps time on a ``Clock``: an API timeout is advanced to, not waited for."""

import os
import tempfile

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from csm.api.registry import Command, Field, Registry
from csm.api.router import Router
from csm.client import Client, connect
from csm.errors import CSMError, ErrorCode
from csm.net.local import LocalSocketService
from csm.wire import Flags, Message

PUBLIC = Command(name="node_attributes_query", cmd_id=42,
                 fields=(Field("node_names", "list"), Field("limit", "int")))
PRIVILEGED = Command(name="node_delete", cmd_id=47, fields=(Field("node_names", "list", required=True),))
PRIVATE = Command(name="allocation_query_details", cmd_id=21, fields=(Field("allocation_id", "int"),))
SLOW = Command(name="allocation_query", cmd_id=20)
ELSEWHERE = Command(name="cluster_query_state", cmd_id=61)


class FakeAcl:
    privileged_callers = True

    def access_class(self, name):
        return {"csm_node_attributes_query": "public",
                "csm_allocation_query_details": "private",
                "csm_allocation_query": "public"}.get(name, "privileged")

    def is_privileged(self, uid, gid):
        return self.privileged_callers


class FakeTimeouts:
    def timeout(self, name):
        return 0.5 if name == "csm_allocation_query" else 30.0

    def as_dict(self):
        return {}  # the client keeps its own (longer) timeout: the daemon's answer is the one seen


class FakeDaemon:
    role = "master"
    node_name = "testnode"
    max_payload = 1 << 20
    heartbeat_interval = 15

    def __init__(self):
        self.clock = Clock()
        self.registry = Registry([PUBLIC, PRIVILEGED, PRIVATE, SLOW])
        self.acl = FakeAcl()
        self.api_timeouts = FakeTimeouts()
        self.seen = []
        #: fires when a request reaches the handler that never answers
        self.stuck = defer.Deferred()
        handlers = {
            42: self.echo,
            47: self.echo,
            21: self.echo,
            20: self.never_answer,
        }
        self.router = Router(self, self.registry, handlers, upstream=lambda: None)

    def never_answer(self, ctx, body):
        reactor.callLater(0, self.stuck.callback, ctx)  # once the daemon holds the request (and its timeout)
        return defer.Deferred()

    def echo(self, ctx, body):
        self.seen.append(ctx)
        return {"input": body, "uid": ctx.uid, "private_check": ctx.private_check}


class LocalAPITests(TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="csm-local-")
        self.path = os.path.join(self.dir, "csmd.sock")
        self.daemon = FakeDaemon()
        config = type("Listen", (), {"socket": self.path, "permissions": 0o660, "group": ""})
        self.service = LocalSocketService(reactor, self.daemon, config)
        self.service.startService()
        self.addCleanup(self.service.stopService)

    @defer.inlineCallbacks
    def client(self):
        client = yield connect(reactor, self.path, registry=self.daemon.registry)
        self.addCleanup(client.close)
        return client

    def test_socket_mode(self):
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o660)

    @defer.inlineCallbacks
    def test_public_call_gets_kernel_credentials(self):
        client = yield self.client()
        result = yield client.call("node_attributes_query", {"node_names": ["c01"]})
        self.assertEqual(result["input"], {"node_names": ["c01"]})
        self.assertEqual(result["uid"], os.getuid())
        self.assertFalse(result["private_check"])

    @defer.inlineCallbacks
    def test_header_uid_is_overwritten(self):
        client = yield self.client()
        reply = yield client.link.request(Message.make(42, {}, uid=4242, gid=4242), 5)
        self.assertEqual(reply.body()["uid"], os.getuid())

    @defer.inlineCallbacks
    def test_privileged_api_refused_and_link_kept(self):
        self.daemon.acl.privileged_callers = False
        client = yield self.client()
        error = yield self.assertFailure(client.call("node_delete", {"node_names": ["c01"]}), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_PERM)
        result = yield client.call("node_attributes_query", {})
        self.assertEqual(result["input"], {})

    @defer.inlineCallbacks
    def test_private_api_marked_for_owner_check(self):
        self.daemon.acl.privileged_callers = False
        client = yield self.client()
        result = yield client.call("allocation_query_details", {"allocation_id": 3})
        self.assertTrue(result["private_check"])
        self.daemon.acl.privileged_callers = True
        client2 = yield self.client()
        result = yield client2.call("allocation_query_details", {"allocation_id": 3})
        self.assertFalse(result["private_check"])

    @defer.inlineCallbacks
    def test_request_outliving_timeout_gets_csmerr_timeout(self):
        client = yield self.client()
        d = client.call("allocation_query", {})
        yield self.daemon.stuck
        self.daemon.clock.advance(0.25)
        self.assertNoResult(d)
        self.daemon.clock.advance(0.25)
        error = yield self.assertFailure(d, CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_TIMEOUT)
        self.assertIn("timed out after 0.5s", error.errmsg)

    @defer.inlineCallbacks
    def test_wrong_field_named_in_error(self):
        client = yield self.client()
        error = yield self.assertFailure(client.call("node_attributes_query", {"limit": "ten"}), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_INVALID_PARAM)
        self.assertIn("limit", error.errmsg)
        error = yield self.assertFailure(client.call("node_attributes_query", {"bogus": 1}), CSMError)
        self.assertIn("bogus", error.errmsg)
        error = yield self.assertFailure(client.call("node_attributes_query", {"node_names": ["c01", "c\x0002"]}),
                                         CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_INVALID_PARAM)
        self.assertIn("NUL", error.errmsg)
        error = self.assertRaises(CSMError, Field("comment").convert, "a\x00b")  # PostgreSQL's text cannot hold it
        self.assertEqual(error.errcode, ErrorCode.CSMERR_INVALID_PARAM)
        error = yield self.assertFailure(client.call("node_delete", {}), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_MISSING_PARAM)

    @defer.inlineCallbacks
    def test_malformed_json_body(self):
        client = yield self.client()
        reply = yield client.link.request(Message(command=42, payload=b"{not json"), 5)
        self.assertEqual(reply.error().errcode, ErrorCode.CSMERR_MSG_UNPACK_ERROR)

    @defer.inlineCallbacks
    def test_unknown_command(self):
        client = yield self.client()
        reply = yield client.link.request(Message.make(61, {}), 5)
        self.assertEqual(reply.error().errcode, ErrorCode.CSMERR_CMD_UNKNOWN)

    @defer.inlineCallbacks
    def test_internal_flag_from_client_drops_it(self):
        client = yield self.client()
        d = client.link.request(Message.make(42, {}, flags=Flags.INT), 5)
        error = yield self.assertFailure(d, CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_SENDRCV_ERROR)

    @defer.inlineCallbacks
    def test_garbage_drops_only_that_client(self):
        good = yield self.client()
        garbage = Garbage()
        yield connectProtocol(UNIXClientEndpoint(reactor, self.path), garbage)
        yield garbage.closed  # the daemon closes that connection
        result = yield good.call("node_attributes_query", {})
        self.assertEqual(result["input"], {})

    def test_blocking_client(self):
        def call():
            with Client(self.path, registry=self.daemon.registry) as client:
                return client.call("node_attributes_query", {"node_names": "c01,c02"})
        from twisted.internet import threads
        d = threads.deferToThread(call)
        d.addCallback(lambda result: self.assertEqual(result["input"], {"node_names": ["c01", "c02"]}))
        return d


    def blocking(self, call):
        """``call(client)`` in a thread with a blocking Client that connects by its first call."""
        from twisted.internet import threads

        def run():
            client = Client(self.path, registry=self.daemon.registry)
            try:
                return call(client)
            finally:
                client.close()
        return threads.deferToThread(run)

    @defer.inlineCallbacks
    def test_blocking_client_connects_by_its_first_call(self):
        """The hello and the first request go out together; the daemon's timeouts are read from
        the hello's answer, and the next call on the connection works as the first."""
        def two_calls(client):
            first = client.call("node_attributes_query", {"node_names": "c01"})
            return first, client.daemon.get("role"), client.call("node_attributes_query", {"limit": 3})
        first, role, second = yield self.blocking(two_calls)
        self.assertEqual((first["input"], role, second["input"]), ({"node_names": ["c01"]}, "master", {"limit": 3}))

    @defer.inlineCallbacks
    def test_refused_hello_drops_the_request_sent_with_it(self):
        """A client of a version the daemon refuses: the refusal, and the request that went out
        behind the hello never reaches a handler."""
        import csm.client
        self.patch(csm.client, "__version__", "0.1.0")

        def call(client):
            try:
                client.call("node_delete", {"node_names": ["c01"]})
            except CSMError as exc:
                return exc
        error = yield self.blocking(call)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_INIT_LIB_FAILED)
        self.assertIn("VERSION MISMATCH", error.errmsg)
        self.assertEqual(self.daemon.seen, [])


    @defer.inlineCallbacks
    def test_a_refused_hello_closes_the_connection_and_the_next_call_connects_afresh(self):
        """A refused client keeps no dead socket: its next call is refused for the same reason
        (it failed "the daemon closed the connection"), and once acceptable it connects anew."""
        import csm.client
        version = csm.client.__version__
        self.patch(csm.client, "__version__", "0.1.0")

        def calls(client):
            errors = []
            for _ in range(2):
                try:
                    client.call("node_attributes_query", {"limit": 1})
                except CSMError as exc:
                    errors.append((exc.errcode, "VERSION MISMATCH" in exc.errmsg, client._sock))
            csm.client.__version__ = version
            return errors, client.call("node_attributes_query", {"limit": 2})
        errors, result = yield self.blocking(calls)
        self.assertEqual(errors, [(ErrorCode.CSMERR_INIT_LIB_FAILED, True, None)] * 2)
        self.assertEqual(result["input"], {"limit": 2})

    @defer.inlineCallbacks
    def test_a_connection_the_daemon_dropped_is_replaced_by_the_next_call(self):
        """The daemon restarted between two calls: the first after it fails (its connection is
        gone), the next connects afresh (it failed the same way, on the same dead socket)."""
        from twisted.internet import threads
        client = Client(self.path, registry=self.daemon.registry)
        self.addCleanup(client.close)
        first = yield threads.deferToThread(client.call, "node_attributes_query", {"limit": 1})
        yield self.service.stopService()
        self.service.startService()
        error = yield self.assertFailure(threads.deferToThread(client.call, "node_attributes_query", {}), CSMError)
        self.assertEqual(error.errcode, ErrorCode.CSMERR_SENDRCV_ERROR)
        again = yield threads.deferToThread(client.call, "node_attributes_query", {"limit": 3})
        self.assertEqual((first["input"], again["input"]), ({"limit": 1}, {"limit": 3}))


class HelloWithRequestTests(TestCase):
    """The blocking client's first call against a socket that answers nothing until it holds
    both the hello and the request: one round trip, not two."""

    def setUp(self):
        from twisted.internet.protocol import Factory
        from csm.wire import FrameDecoder
        self.dir = tempfile.mkdtemp(prefix="csm-local-")
        self.path = os.path.join(self.dir, "csmd.sock")
        seen = self.seen = []

        class BothFirst(protocol.Protocol):
            def connectionMade(self):
                self.decoder = FrameDecoder()

            def dataReceived(self, data):
                seen.extend(self.decoder.feed(data))
                if len(seen) == 2:
                    hello, request = seen
                    self.transport.write(hello.reply({"version": "1.8.5", "timeouts": {}}).encode())
                    self.transport.write(request.reply({"answered": True}).encode())
        self.port = reactor.listenUNIX(self.path, Factory.forProtocol(BothFirst))
        self.addCleanup(self.port.stopListening)

    def test_hello_and_request_in_one_go(self):
        from twisted.internet import threads

        def call():
            client = Client(self.path, timeout=5, registry=Registry([PUBLIC]))
            try:
                return client.call("node_attributes_query", {})
            finally:
                client.close()
        d = threads.deferToThread(call)
        d.addCallback(lambda result: self.assertEqual((result, len(self.seen)), ({"answered": True}, 2)))
        return d


class Garbage(protocol.Protocol):
    """Writes bytes that are no frame; ``closed`` fires when the other side hangs up."""

    def __init__(self):
        self.closed = defer.Deferred()

    def connectionMade(self):
        self.transport.write(os.urandom(256))

    def connectionLost(self, reason):
        self.closed.callback(None)
