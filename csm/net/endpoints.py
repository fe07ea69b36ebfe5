"""Endpoints for the configured links, made from endpoint strings (Twisted's strports).

The config keeps CAST's ``host``/``port`` keys; the description is built from them, so an
IPv6 address (``::1``) works as a host, and a host that is a path (``/run/csm/agg.sock``)
is a unix socket. TLS wraps whatever the string gives.
"""

from twisted.internet import endpoints
from twisted.internet.interfaces import IStreamServerEndpoint
from zope.interface import implementer

_quote = endpoints.quoteStringArgument


def is_unix(host):
    return host.startswith("/")


def server_description(endpoint, backlog=128):
    """The strports description that listens on ``endpoint`` (host, port)."""
    if is_unix(endpoint.host):
        return "unix:%s:backlog=%d:lockfile=0" % (_quote(endpoint.host), backlog)
    return "tcp:%d:interface=%s:backlog=%d" % (endpoint.port, _quote(endpoint.host), backlog)


def client_description(endpoint, timeout=5):
    """The strports description that connects to ``endpoint`` (host, port)."""
    if is_unix(endpoint.host):
        return "unix:path=%s:timeout=%d" % (_quote(endpoint.host), timeout)
    return "tcp:host=%s:port=%d:timeout=%d" % (_quote(endpoint.host), endpoint.port, timeout)


@implementer(IStreamServerEndpoint)
class TLSServerEndpoint:
    """Listens on ``wrapped`` with TLS (``options`` from ``TLSContexts.server_options()``)."""

    def __init__(self, wrapped, options):
        self.wrapped = wrapped
        self.options = options

    def listen(self, factory):
        from twisted.protocols.tls import TLSMemoryBIOFactory  # pyOpenSSL: only where TLS is configured

        return self.wrapped.listen(TLSMemoryBIOFactory(self.options, False, factory))


def server_endpoint(reactor, endpoint, tls=None, backlog=128):
    """Listen on ``endpoint`` (host, port); TLS when ``tls`` is a ``TLSContexts``."""
    listen = endpoints.serverFromString(reactor, server_description(endpoint, backlog))
    return listen if tls is None else TLSServerEndpoint(listen, tls.server_options())


def client_endpoint(reactor, endpoint, tls=None, timeout=5):
    """Connect to ``endpoint``; with TLS the server's certificate must name its host."""
    connect = endpoints.clientFromString(reactor, client_description(endpoint, timeout))
    return connect if tls is None else endpoints.wrapClientTLS(tls.client_options(endpoint.host), connect)


