"""Endpoints for the configured links: TCP or TLS, listening or connecting."""

from twisted.internet import endpoints


def server_endpoint(reactor, endpoint, tls=None, backlog=128):
    """Listen on ``endpoint`` (host, port); TLS when ``tls`` is a ``TLSContexts``."""
    if tls is None:
        return endpoints.TCP4ServerEndpoint(reactor, endpoint.port, backlog=backlog,
                                            interface=endpoint.host)
    return endpoints.SSL4ServerEndpoint(reactor, endpoint.port, tls.server_options(),
                                        backlog=backlog, interface=endpoint.host)


def client_endpoint(reactor, endpoint, tls=None, timeout=5):
    """Connect to ``endpoint``; with TLS the server's certificate must name its host."""
    tcp = endpoints.TCP4ClientEndpoint(reactor, endpoint.host, endpoint.port, timeout=timeout)
    if tls is None:
        return tcp
    return endpoints.wrapClientTLS(tls.client_options(endpoint.host), tcp)
