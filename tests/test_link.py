"""LinkProtocol over an in-memory connection (twisted.test.iosim) with a Clock."""

from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from csm import __version__
from csm.errors import CSMError, ErrorCode
from csm.net.link import LinkOwner, LinkProtocol, version_acceptable
from csm.wire import Message


class RecordingOwner(LinkOwner):
    def __init__(self, role, version=__version__, refuse=None, answer=True):
        self.role = role
        self.version = version
        self.refuse = refuse
        self.answer = answer
        self.ready = []
        self.lost = []
        self.received = []

    def hello(self, link):
        return {"version": self.version, "node": self.role + "-node", "role": self.role}

    def accept_hello(self, link, hello):
        if self.refuse:
            raise CSMError(ErrorCode.CSMERR_PERM, self.refuse)

    def link_ready(self, link):
        self.ready.append(link)

    def link_lost(self, link, reason):
        self.lost.append(reason)

    def message_received(self, link, message):
        self.received.append(message)
        if self.answer:
            link.send(message.reply({"echo": message.body()}))


class LinkTests(SynchronousTestCase):
    def connect(self, server_owner=None, client_owner=None, interval=15):
        self.clock = Clock()
        self.server_owner = server_owner or RecordingOwner("master")
        self.client_owner = client_owner or RecordingOwner("aggregator")
        server = LinkProtocol(self.server_owner, self.clock, initiator=False, heartbeat_interval=interval)
        client = LinkProtocol(self.client_owner, self.clock, initiator=True, heartbeat_interval=interval)
        c, s, pump = iosim.connectedServerAndClient(lambda: server, lambda: client, greet=False)
        self.client, self.server, self.pump = c, s, pump
        pump.flush()
        return c, s, pump

    def test_handshake_exchanges_identity(self):
        client, server, _ = self.connect()
        self.assertTrue(client.verified and server.verified)
        self.assertEqual(client.peer_node, "master-node")
        self.assertEqual(server.peer_role, "aggregator")
        self.assertEqual(self.server_owner.ready, [server])

    def test_request_response_by_id(self):
        client, _, pump = self.connect()
        results = []
        for i in range(3):
            client.request(Message.make(206, {"n": i}), 5).addCallback(results.append)
        pump.flush()
        self.assertEqual([r.body() for r in results], [{"echo": {"n": i}} for i in range(3)])
        self.assertEqual(client.pending, {})

    def test_out_of_order_replies(self):
        owner = RecordingOwner("master", answer=False)
        client, server, pump = self.connect(server_owner=owner)
        results = []
        client.request(Message.make(206, {"n": 1}), 5).addCallback(lambda r: results.append(r.body()))
        client.request(Message.make(206, {"n": 2}), 5).addCallback(lambda r: results.append(r.body()))
        pump.flush()
        first, second = owner.received
        server.send(second.reply("two"))
        server.send(first.reply("one"))
        pump.flush()
        self.assertEqual(results, ["two", "one"])

    def test_timeout_gives_csmerr_timeout(self):
        client, _, pump = self.connect(server_owner=RecordingOwner("master", answer=False))
        failures = []
        client.request(Message.make(206, {}), 2).addErrback(failures.append)
        pump.flush()
        self.clock.advance(2)
        self.assertEqual(failures[0].value.errcode, ErrorCode.CSMERR_TIMEOUT)
        self.assertEqual(client.pending, {})

    def test_relay_answers_by_callables(self):
        """``relay``: the router's forwarding, without a Deferred; one of the two callables once."""
        owner = RecordingOwner("master", answer=False)
        client, server, pump = self.connect(server_owner=owner)
        replies, errors = [], []
        for timeout in (5, 2):
            client.relay(Message.make(206, {"t": timeout}), timeout, replies.append, errors.append)
        pump.flush()
        server.send(owner.received[0].reply("five"))
        pump.flush()
        self.assertEqual([r.body() for r in replies], ["five"])
        self.clock.advance(2)
        self.assertEqual([e.errcode for e in errors], [ErrorCode.CSMERR_TIMEOUT])
        client.relay(Message.make(206, {}), 30, replies.append, errors.append)
        pump.flush()
        server.transport.loseConnection()
        pump.flush()
        self.assertEqual([e.errcode for e in errors], [ErrorCode.CSMERR_TIMEOUT, ErrorCode.CSMERR_SENDRCV_ERROR])
        client.relay(Message.make(206, {}), 30, replies.append, errors.append)  # not usable: at once
        self.assertEqual(errors[-1].errcode, ErrorCode.CSMERR_SENDRCV_ERROR)
        self.assertEqual((len(replies), client.pending), (1, {}))

    def test_one_timer_for_every_pending_request(self):
        """Each request times out at its own deadline, from one timer per link (a timer per
        request was a tenth of a relay hop's CPU); none is left once nothing is pending."""
        client, _, pump = self.connect(server_owner=RecordingOwner("master", answer=False), interval=0)
        errors = []
        for timeout in (5, 3, 8, 3, 5) * 20:
            client.relay(Message.make(206, {}), timeout, None, lambda e, t=timeout: errors.append((t, e.errcode)))
        pump.flush()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        for now, expired in ((2.9, 0), (3, 40), (5, 80), (7.9, 80), (8, 100)):
            self.clock.advance(now - self.clock.seconds())
            self.assertEqual(len(errors), expired, now)
        self.assertEqual(sorted(set(errors)), [(t, ErrorCode.CSMERR_TIMEOUT) for t in (3, 5, 8)])
        self.assertEqual([t for t, _ in errors], sorted(t for t, _ in errors))
        self.assertEqual((client.pending, self.clock.getDelayedCalls()), ({}, []))
        client.request(Message.make(206, {}), 5)
        pump.flush()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.server.send(self.server_owner.received[-1].reply({}))
        pump.flush()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_failing_answer_is_logged_and_the_link_stays(self):
        client, _, pump = self.connect()

        def broken(reply):
            raise RuntimeError("the answer failed")
        client.relay(Message.make(206, {}), 5, broken, broken)
        pump.flush()
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(client.usable)
        results = []
        client.request(Message.make(206, {"n": 1}), 5).addCallback(results.append)
        pump.flush()
        self.assertEqual(results[0].body(), {"echo": {"n": 1}})

    def test_lost_link_fails_pending(self):
        client, server, pump = self.connect(server_owner=RecordingOwner("master", answer=False))
        failures = []
        client.request(Message.make(206, {}), 30).addErrback(failures.append)
        pump.flush()
        server.transport.loseConnection()
        pump.flush()
        self.assertEqual(failures[0].value.errcode, ErrorCode.CSMERR_SENDRCV_ERROR)
        self.assertEqual(len(self.client_owner.lost), 1)

    def test_garbage_closes_only_that_connection(self):
        client, server, pump = self.connect()
        client.transport.write(b"\x00garbage that is not a frame at all, 32 bytes+")
        pump.flush()
        self.assertTrue(server.transport.disconnecting or server.transport.disconnected)
        self.assertFalse(server.connected)

    def test_oversized_frame_closes(self):
        client, server, pump = self.connect()
        server.max_payload = server._decoder.max_payload = 100
        client.send(Message.make(206, {"blob": "x" * 500}))
        pump.flush()
        self.assertFalse(server.connected)

    def test_first_message_must_be_hello(self):
        self.clock = Clock()
        owner = RecordingOwner("master")
        server = LinkProtocol(owner, self.clock, initiator=False)
        rogue = LinkProtocol(RecordingOwner("x"), self.clock, initiator=False)
        c, s, pump = iosim.connectedServerAndClient(lambda: server, lambda: rogue, greet=False)
        pump.flush()
        rogue.transport.write(Message.make(206, {}).encode())
        pump.flush()
        self.assertFalse(server.connected)
        self.assertEqual(owner.ready, [])

    def test_version_mismatch_refused(self):
        client, server, pump = self.connect(client_owner=RecordingOwner("aggregator", version="2.0.0"))
        self.assertFalse(server.verified)
        self.assertFalse(client.verified)
        self.assertEqual(self.server_owner.ready, [])

    def test_owner_refusal(self):
        client, server, _ = self.connect(server_owner=RecordingOwner("master", refuse="go away"))
        self.assertFalse(client.verified)
        self.assertFalse(client.connected)

    def test_idle_link_survives_on_heartbeats(self):
        client, server, pump = self.connect(interval=3)
        for _ in range(200):
            self.clock.advance(0.5)
            pump.flush()
        self.assertTrue(client.connected and server.connected)
        self.assertEqual(client.state, "HAPPY")

    def test_requests_and_replies_are_traffic_to_the_heartbeat_and_heartbeats_are_not(self):
        client, server, pump = self.connect(interval=3)
        heard = {}
        for end in (client, server):
            received = end.heartbeat.received
            end.heartbeat.received = lambda traffic=False, end=end, received=received: (
                heard.setdefault(end, []).append(traffic), received(traffic))
        client.request(Message.make(1, {"q": 1}), timeout=5)
        pump.flush()
        self.assertEqual((heard[server], heard[client]), ([True], [True]))  # the request; its reply
        heard.clear()
        client._send_heartbeat()
        pump.flush()
        self.assertEqual((heard[server], heard[client]), ([False], [False]))  # the probe; its answer

    def test_silent_peer_detected(self):
        client, server, pump = self.connect(interval=4)
        # the server stops reading: nothing it would send reaches the client any more
        server.transport.write = lambda data: None
        server.send = lambda message: False
        for _ in range(30):
            self.clock.advance(0.5)
            pump.flush()
        self.assertFalse(client.connected)
        self.assertEqual(len(self.client_owner.lost), 1)

    def test_interval_negotiated_to_smaller(self):
        self.clock = Clock()
        server = LinkProtocol(RecordingOwner("master"), self.clock, initiator=False, heartbeat_interval=15)
        client = LinkProtocol(RecordingOwner("aggregator"), self.clock, initiator=True, heartbeat_interval=5)
        c, s, pump = iosim.connectedServerAndClient(lambda: server, lambda: client, greet=False)
        pump.flush()
        self.assertEqual(server.heartbeat.interval, 5)

    def test_no_hello_times_out(self):
        self.clock = Clock()
        server = LinkProtocol(RecordingOwner("master"), self.clock, initiator=False, heartbeat_interval=0)
        mute = LinkProtocol(RecordingOwner("x"), self.clock, initiator=False, heartbeat_interval=0)
        c, s, pump = iosim.connectedServerAndClient(lambda: server, lambda: mute, greet=False)
        pump.flush()
        self.clock.advance(10)
        pump.flush()
        self.assertFalse(server.connected)


class VersionTests(SynchronousTestCase):
    def test_rules(self):
        self.assertTrue(version_acceptable("1.8.5", "1.8.0"))
        self.assertTrue(version_acceptable("1.8.5", "1.7.9"))
        self.assertFalse(version_acceptable("1.8.5", "1.6.0"))
        self.assertFalse(version_acceptable("1.8.5", "1.9.0"))
        self.assertFalse(version_acceptable("1.8.5", "2.8.5"))
        self.assertFalse(version_acceptable("1.8.5", "junk"))
        self.assertTrue(version_acceptable("1.8.5", "1.8.5", exact=True))
        self.assertFalse(version_acceptable("1.8.5", "1.8.4", exact=True))


class HelloReplyIdTests(SynchronousTestCase):
    def answer_to(self, hello, refuse=None):
        from twisted.internet.testing import StringTransport
        from csm.wire import FrameDecoder
        link = LinkProtocol(RecordingOwner("master", refuse=refuse), Clock(), initiator=False, heartbeat_interval=0)
        transport = StringTransport()
        link.makeConnection(transport)
        link.dataReceived(hello.encode())
        [answer] = FrameDecoder(1 << 20).feed(transport.value())
        return answer

    def test_the_answer_carries_the_hello_id(self):
        """docs/protocol.rst: a response carries its request's id (the hello answer carried 0)."""
        from csm.wire import Flags, InternalCommand
        hello = Message.make(InternalCommand.STATUS, {"version": __version__, "node": "a", "role": "aggregator"},
                             flags=Flags.INT, message_id=0x1234567)
        answer = self.answer_to(hello)
        self.assertEqual((answer.message_id, answer.flags & Flags.RESP), (0x1234567, Flags.RESP))
        refusal = self.answer_to(hello, refuse="go away")
        self.assertEqual((refusal.message_id, refusal.flags & Flags.ERR), (0x1234567, Flags.ERR))
