"""Endpoints from the config's host/port: IPv4, IPv6 and unix sockets, with and without TLS."""

import os
import shutil
import socket
import tempfile

import attrs
from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase

from csm.net.certs import make_pki
from csm.net.endpoints import client_endpoint, server_endpoint
from csm.net.tls import TLSContexts


@attrs.define
class Where:
    host: str
    port: int = 0


class Echo(protocol.Protocol):
    def connectionMade(self):
        self.factory.lost = defer.Deferred()

    def dataReceived(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        self.factory.lost.callback(None)


class Ask(protocol.Protocol):
    def connectionMade(self):
        self.answer = defer.Deferred()
        self.lost = defer.Deferred()
        self.transport.write(b"ping")

    def dataReceived(self, data):
        self.answer.callback(data)

    def connectionLost(self, reason):
        self.lost.callback(None)


def _ipv6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class EndpointTests(TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="csm-ep-")
        self.addCleanup(shutil.rmtree, self.dir)

    @defer.inlineCallbacks
    def round_trip(self, host, tls=None):
        echo = protocol.Factory.forProtocol(Echo)
        port = yield server_endpoint(reactor, Where(host), tls).listen(echo)
        self.addCleanup(port.stopListening)
        address = port.getHost()
        where = Where(host, getattr(address, "port", 0))
        client = yield client_endpoint(reactor, where, tls).connect(protocol.Factory.forProtocol(Ask))
        answer = yield client.answer
        self.assertEqual(answer, b"ping")
        client.transport.loseConnection()
        yield defer.gatherResults([client.lost, echo.lost])
        return address

    @defer.inlineCallbacks
    def test_ipv4(self):
        address = yield self.round_trip("127.0.0.1")
        self.assertEqual(address.host, "127.0.0.1")

    @defer.inlineCallbacks
    def test_ipv6(self):
        if not _ipv6():
            raise self.skipTest("no IPv6 loopback on this machine")
        address = yield self.round_trip("::1")
        self.assertEqual(address.host, "::1")

    @defer.inlineCallbacks
    def test_unix_socket(self):
        path = os.path.join(self.dir, "link.sock")
        address = yield self.round_trip(path)
        self.assertEqual(address.name.decode() if isinstance(address.name, bytes) else address.name, path)

    @defer.inlineCallbacks
    def test_tls(self):
        ca_file, cred_pem = make_pki(self.dir)
        yield self.round_trip("127.0.0.1", TLSContexts(ca_file, cred_pem))
