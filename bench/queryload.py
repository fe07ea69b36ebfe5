"""Node query load: many concurrent clients on one daemon's local socket.

    .venv/bin/python bench/queryload.py --socket run/util01.sock [--clients 100] [--seconds 20] [--rate R]
        [--command node_attributes_query] [--nodes c01,c02 | --nodes-file FILE] [--json]

Opens ``--clients`` connections (one reactor, frames encoded beforehand so the
generator costs little CPU), and each sends ``csm_node_attributes_query`` for
one node at a time (a random node of ``--nodes``; the master's node list when
none is given) for ``--seconds``: each as soon as the last is answered
(saturation), or ``--rate`` calls a second per client (latency counted from
when each call was due).
Prints the calls per second and latency percentiles; with ``--json``, one JSON
object (for bench/scale.py). Runs against any running tree, ``make demo`` too.
"""

import argparse
import json
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from twisted.internet import defer, task  # noqa: E402
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol  # noqa: E402
from twisted.internet.protocol import Protocol  # noqa: E402

from bench.results import percentile, run_reactor  # noqa: E402
from csm import __version__  # noqa: E402
from csm.api.commands import REGISTRY  # noqa: E402
from csm.wire import Flags, FrameDecoder, InternalCommand, Message  # noqa: E402


def summary(latencies, errors, seconds, clients, rate=0.0):
    ms = [value * 1000.0 for value in latencies]
    return {"clients": clients, "seconds": seconds, "calls": len(ms), "errors": errors, "rate": rate,
            "per_second": len(ms) / seconds if seconds else 0.0,
            "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99), "max_ms": max(ms) if ms else float("nan")}


def slowest_second(results):
    """The whole second of the run with the highest p99, as text."""
    seconds = {}
    for finished, latency in zip(results.finished, results.latencies):
        seconds.setdefault(int(finished - results.first), []).append(latency * 1000.0)
    if not seconds:
        return "none"
    second, values = max(seconds.items(), key=lambda item: percentile(item[1], 99))
    return "at %d s, %d calls, p99 %.1f ms" % (second, len(values), percentile(values, 99))


def node_list(path):
    """Every node the master knows (one query)."""
    from csm.client import Client

    with Client(path) as client:
        return [row["node_name"] for row in client.call("node_attributes_query", {}).get("results", [])]


class QueryClient(Protocol):
    """One client connection: the hello, then one query at a time from pre-encoded frames.

    Leaner than ``csm.client`` (no per-call message building or JSON decoding of the
    reply beyond the frame check) so that the generator leaves the CPUs to the daemons.
    """

    def __init__(self, frames, deadline, results, reactor=None, rate=0.0):
        self.reactor = reactor
        self.period = 1.0 / rate if rate else 0.0
        self.due = None
        self.frames = frames
        self.deadline = deadline
        self.results = results
        self.decoder = FrameDecoder()
        self.ready = False
        self.started = 0.0
        self.done = defer.Deferred()

    def connectionMade(self):
        hello = Message.make(InternalCommand.STATUS, {"version": __version__, "role": "client"}, flags=Flags.INT)
        self.transport.write(hello.encode())

    def dataReceived(self, data):
        for message in self.decoder.feed(data):
            if message.command == InternalCommand.HEARTBEAT:
                if not message.flags & Flags.RESP:
                    self.transport.write(message.evolve(flags=message.flags | Flags.RESP).encode())
            elif not self.ready:
                self.ready = True
                self.next()
            else:
                finished = time.perf_counter()
                if message.flags & Flags.ERR:
                    self.results.errors += 1
                else:
                    self.results.latencies.append(finished - self.started)
                    self.results.finished.append(finished)
                    self.results.last = finished
                self.next()

    def next(self):
        if time.monotonic() >= self.deadline:
            self.transport.loseConnection()
            return
        now = time.perf_counter()
        if self.period:  # paced: the latency counts from when the call was due, late or not
            self.due = now + random.uniform(0, self.period) if self.due is None else self.due + self.period
            if self.due > now:
                self.reactor.callLater(self.due - now, self._send, self.due)
                return
            self._send(self.due)
        else:
            self._send(now)

    def _send(self, due):
        self.started = due
        self.transport.write(random.choice(self.frames))

    def connectionLost(self, reason):
        self.done.callback(None)


class Results:
    def __init__(self):
        self.latencies = []
        self.finished = []
        self.errors = 0
        self.first = self.last = 0.0


def load(reactor, path, clients, seconds, command, nodes, rate=0.0):
    """Fires with the ``Results`` after ``seconds`` of calls from ``clients`` connections."""
    cmd_id = REGISTRY.get(command).cmd_id
    frames = [Message.make(cmd_id, {"node_names": [node]}, message_id=index + 1).encode()
              for index, node in enumerate(nodes)]
    results = Results()

    @defer.inlineCallbacks
    def run():
        done = []
        deadline = time.monotonic() + seconds
        results.first = time.perf_counter()
        for _ in range(clients):  # connect in small steps, as users arrive, not in one burst
            client = QueryClient(frames, deadline, results, reactor, rate)
            yield connectProtocol(UNIXClientEndpoint(reactor, path), client)
            done.append(client.done)
            yield task.deferLater(reactor, 0.01, lambda: None)
        yield defer.gatherResults(done)
        return results

    return run()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.0,
                        help="calls per second per client (default 0: each client's next call as soon as "
                             "its last is answered)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--command", default="node_attributes_query")
    parser.add_argument("--nodes", help="node names, comma-separated")
    parser.add_argument("--nodes-file", help="node names, one a line")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--trace", help="write each call's completion time and latency here (JSON)")
    args = parser.parse_args(argv)
    if args.nodes_file:
        with open(args.nodes_file) as f:
            nodes = [line.strip() for line in f if line.strip()]
    else:
        nodes = args.nodes.split(",") if args.nodes else node_list(args.socket)
    from twisted.internet import reactor

    results = run_reactor(lambda: load(reactor, args.socket, args.clients, args.seconds, args.command, nodes,
                                       args.rate))
    result = summary(results.latencies, results.errors, results.last - results.first, args.clients, args.rate)
    result["slowest_second"] = slowest_second(results)
    if args.trace:
        with open(args.trace, "w") as f:
            json.dump([[t - results.first, latency] for t, latency in zip(results.finished, results.latencies)], f)
    if args.json:
        print(json.dumps(result))
    else:
        print("%(clients)d clients, %(calls)d calls in %(seconds).1f s (%(errors)d errors): %(per_second).0f/s; "
              "p50 %(p50_ms).1f ms, p99 %(p99_ms).1f ms, max %(max_ms).1f ms; slowest second: %(slowest_second)s"
              % result)
    return 1 if results.errors else 0


if __name__ == "__main__":
    sys.exit(main())
