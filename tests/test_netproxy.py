"""csm.netproxy: latency held in order on a Clock, resets, and real connections relayed through it."""

import argparse

from twisted.internet import defer, endpoints, protocol, reactor, task
from twisted.test.proto_helpers import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from csm.netproxy import ProxyFactory, _Delayed, parse_forward


class DelayTests(SynchronousTestCase):
    def test_chunks_wait_the_latency_and_keep_their_order(self):
        clock = task.Clock()
        transport = StringTransport()
        delayed = _Delayed(clock, 0.2)
        delayed.transport = transport
        delayed.write(b"a")
        clock.advance(0.1)
        delayed.write(b"b")
        delayed.close()
        self.assertEqual(transport.value(), b"")
        clock.advance(0.1)
        self.assertEqual(transport.value(), b"a")
        self.assertFalse(transport.disconnecting)
        clock.advance(0.1)
        self.assertEqual(transport.value(), b"ab")
        self.assertTrue(transport.disconnecting)  # the close comes after the data

    def test_forward_parsed_or_refused(self):
        self.assertEqual(parse_forward("agg01:9000=agg01:9001"), (("agg01", 9000), ("agg01", 9001)))
        self.assertRaises(argparse.ArgumentTypeError, parse_forward, "agg01:9000")


class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)


class Collect(protocol.Protocol):
    def __init__(self, expected):
        self.expected = expected
        self.data = b""
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.data += data
        if len(self.data) >= self.expected and not self.done.called:
            self.done.callback(self.data)

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.errback(reason)


class RelayTests(TestCase):
    @defer.inlineCallbacks
    def relay(self, latency, reset, chunks):
        echo = yield endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
            protocol.Factory.forProtocol(Echo))
        self.addCleanup(echo.stopListening)
        factory = ProxyFactory("127.0.0.1", echo.getHost().port, reactor, latency=latency, reset=reset, within=0.0)
        proxy = yield endpoints.TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(proxy.stopListening)
        self.addCleanup(lambda: factory.idle())
        expected = sum(len(chunk) for chunk in chunks)
        client = yield endpoints.connectProtocol(
            endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", proxy.getHost().port), Collect(expected))
        self.addCleanup(client.transport.abortConnection)
        for chunk in chunks:
            client.transport.write(chunk)
        try:
            data = yield client.done
        finally:
            client.transport.abortConnection()
        defer.returnValue((data, factory))

    @defer.inlineCallbacks
    def test_relayed_in_order_with_latency(self):
        chunks = [b"%04d" % index for index in range(200)]
        data, factory = yield self.relay(0.05, 0.0, chunks)
        self.assertEqual(data, b"".join(chunks))
        self.assertEqual(factory.resets, 0)

    @defer.inlineCallbacks
    def test_a_reset_connection_is_reset(self):
        with self.assertRaises(Exception):
            yield self.relay(0.05, 1.0, [b"x" * 10])
