"""CAST's REST daemon, inside any daemon: RAS events over HTTP (``csm.ras.rest``).

``POST /csmi/V1.0/ras/event/create`` with ``{"msg_id", "time_stamp",
"location_name", "raw_data", "kvcsv"}`` raises an event; ``POST
/csmi/V1.0/ras/event/query`` takes csm_ras_event_query's fields; ``GET
/csmi/V1.0/loopback/test`` answers ``{"status": "ok"}``. Requests go through
the daemon's router like any API (so a utility forwards them to the master).
With ``ssl`` configured the endpoint is HTTPS and wants a client certificate
from the daemons' CA. Bad requests get a 4xx and a JSON reason.
"""

import json

from twisted.internet import endpoints
from twisted.web import resource, server

from csm import logs
from csm.errors import ErrorCode
from csm.net.listen import ListeningService
from csm.wire import Message

log = logs.logger("csmras")

MAX_BODY = 64 * 1024
HTTP_STATUS = {
    ErrorCode.CSMERR_MISSING_PARAM: 400, ErrorCode.CSMERR_INVALID_PARAM: 400, ErrorCode.CSMERR_DB_ERROR: 400,
    ErrorCode.CSMERR_PERM: 403, ErrorCode.CSMI_NO_RESULTS: 404, ErrorCode.CSMERR_TIMEOUT: 504,
    ErrorCode.CSMERR_DAEMON_DB_ERR: 503, ErrorCode.CSMERR_SENDRCV_ERROR: 503,
}


def _json(request, status, body):
    request.setResponseCode(status)
    request.setHeader(b"Content-Type", b"application/json")
    return json.dumps(body, default=str).encode("utf-8") + b"\n"


class ApiResource(resource.Resource):
    """One API by POST: the JSON body is the API's input."""

    isLeaf = True

    def __init__(self, daemon, api_name):
        super().__init__()
        self.daemon = daemon
        self.command = daemon.registry.get(api_name)

    def render_GET(self, request):
        return _json(request, 405, {"error": "use POST with a JSON body"})

    def render_POST(self, request):
        length = request.getHeader(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            return _json(request, 413, {"error": "body over %d bytes" % MAX_BODY})
        data = request.content.read(MAX_BODY + 1)
        if len(data) > MAX_BODY:
            return _json(request, 413, {"error": "body over %d bytes" % MAX_BODY})
        try:
            body = json.loads(data or b"{}")
        except ValueError as exc:
            return _json(request, 400, {"error": "malformed JSON: %s" % exc})
        if not isinstance(body, dict):
            return _json(request, 400, {"error": "the body must be a JSON object"})
        message = Message.make(self.command.cmd_id, body)
        d = self.daemon.router.handle(message)
        d.addCallback(self._answer, request)
        d.addErrback(lambda f: log.failure("REST request failed", f))
        return server.NOT_DONE_YET

    def _answer(self, reply, request):
        if request.finished or request._disconnected:
            return
        if reply.is_error:
            error = reply.error()
            payload = _json(request, HTTP_STATUS.get(error.errcode, 500), error.to_json())
        else:
            payload = _json(request, 200, reply.body() or {})
        request.write(payload)
        request.finish()


class Loopback(resource.Resource):
    isLeaf = True

    def render_GET(self, request):
        return _json(request, 200, {"status": "ok"})


def rest_site(daemon):
    root = resource.Resource()
    node = root
    for part in (b"csmi", b"V1.0"):
        child = resource.Resource()
        node.putChild(part, child)
        node = child
    ras, event, loopback = resource.Resource(), resource.Resource(), resource.Resource()
    node.putChild(b"ras", ras)
    node.putChild(b"loopback", loopback)
    ras.putChild(b"event", event)
    event.putChild(b"create", ApiResource(daemon, "ras_event_create"))
    event.putChild(b"query", ApiResource(daemon, "ras_event_query"))
    loopback.putChild(b"test", Loopback())
    return server.Site(root)


def rest_service(daemon, endpoint, config_key=None):
    """The HTTP(S) listener on ``endpoint`` (host, port); a port that cannot be opened stops the
    start (``ListeningService``: one line naming ``config_key``)."""
    if daemon.tls is not None:
        listen = endpoints.SSL4ServerEndpoint(daemon.reactor, endpoint.port, daemon.tls.server_options(),
                                              interface=endpoint.host)
    else:
        listen = endpoints.TCP4ServerEndpoint(daemon.reactor, endpoint.port, interface=endpoint.host)
    return ListeningService(listen, rest_site(daemon), config_key=config_key)
