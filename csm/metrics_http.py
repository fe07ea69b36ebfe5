"""The ``/metrics`` web server (twisted.web), for the daemons that export their metrics."""

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet import endpoints
from twisted.web.resource import Resource
from twisted.web.server import Site

from csm.net.listen import ListeningService


class MetricsResource(Resource):
    """``GET /metrics``: the registry in Prometheus' text format."""

    isLeaf = True

    def __init__(self, registry):
        super().__init__()
        self.registry = registry

    def render_GET(self, request):
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self.registry)


def metrics_service(reactor, endpoint, registry, config_key=None):
    """A web server for ``/metrics`` on ``endpoint`` (host, port); a port that cannot be opened
    stops the start (``ListeningService``: one line naming ``config_key``)."""
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry))
    server = endpoints.TCP4ServerEndpoint(reactor, endpoint.port, interface=endpoint.host)
    return ListeningService(server, Site(root), config_key=config_key)
