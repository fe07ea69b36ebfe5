"""A TCP proxy that makes a link slow or unreliable (this kernel has no netem).

    python -m csm.netproxy --forward HOST:PORT=HOST:PORT [--forward ...] [--latency 0.2] [--reset 0.05]
                           [--reset-within 30] [--seed N]

Each ``--forward`` listens on the first address and relays every connection to
the second (Twisted's portforward). ``--latency`` holds every chunk that many
seconds, each way, in order (a round trip through the proxy takes twice that
more). ``--reset`` is the share of connections reset (RST both ways) at a random
moment within their first ``--reset-within`` seconds. ``front(cluster, ...)``
puts one such proxy before every listener of a ``LocalCluster``, on the
listener's own host.
"""

import argparse
import collections
import os
import random
import signal
import subprocess
import sys

from twisted.internet import defer
from twisted.protocols import portforward


class _Delayed:
    """Writes to ``transport`` after ``latency`` seconds, in the order given."""

    def __init__(self, clock, latency):
        self.clock = clock
        self.latency = latency
        self.queue = collections.deque()
        self.call = None
        self.transport = None
        self.cancelled = False

    def write(self, data):
        """``data`` goes out ``latency`` seconds from now (``None``: the connection closes then)."""
        if not self.cancelled:
            self.queue.append((self.clock.seconds() + self.latency, data))
            self._schedule()

    def close(self):
        self.write(None)

    def _schedule(self):
        if self.call is None and self.queue:
            self.call = self.clock.callLater(max(0.0, self.queue[0][0] - self.clock.seconds()), self._drain)

    def _drain(self):
        self.call = None
        now = self.clock.seconds()
        while self.queue and self.queue[0][0] <= now:
            _, data = self.queue.popleft()
            if self.transport is None:
                continue
            if data is None:
                self.transport.loseConnection()
            else:
                self.transport.write(data)
        self._schedule()

    def cancel(self):
        """The connection is gone: drop what waits and whatever comes."""
        self.cancelled = True
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        self.queue.clear()


class _Client(portforward.ProxyClient):
    """The proxy's connection to the real server."""

    def connectionMade(self):
        self.factory.server.factory.opened()
        self.peer.setPeer(self)
        self.toServer = self.factory.server.toServer  # the server side queues data for us
        self.toServer.transport = self.transport
        self.factory.server.resetLater()
        self.peer.transport.resumeProducing()

    def dataReceived(self, data):
        self.peer.toClient.write(data)

    def connectionLost(self, reason):
        self.toServer.cancel()
        self.peer.toClient.close()
        self.factory.server.factory.closed()


class _ClientFactory(portforward.ProxyClientFactory):
    protocol = _Client


class _Server(portforward.ProxyServer):
    """A connection accepted by the proxy."""

    clientProtocolFactory = _ClientFactory

    def connectionMade(self):
        self.factory.opened()
        clock = self.factory.clock
        self.toClient = _Delayed(clock, self.factory.latency)
        self.toClient.transport = self.transport
        self.toServer = _Delayed(clock, self.factory.latency)
        self.reset = None
        self.transport.pauseProducing()
        client = self.clientProtocolFactory()
        client.setServer(self)
        client.server = self
        self.factory.connect(client)

    def resetLater(self):
        """With probability ``reset``, abort both connections at a random time within ``within``."""
        if self.factory.random.random() < self.factory.reset:
            self.reset = self.factory.clock.callLater(self.factory.random.uniform(0, self.factory.within),
                                                      self.abort)

    def abort(self):
        self.factory.resets += 1
        self.transport.abortConnection()
        if self.peer is not None:
            self.peer.transport.abortConnection()

    def dataReceived(self, data):
        self.toServer.write(data)

    def connectionLost(self, reason):
        if self.reset is not None and self.reset.active():
            self.reset.cancel()
        self.toClient.cancel()
        if self.peer is not None:
            self.toServer.close()
        self.factory.closed()


class ProxyFactory(portforward.ProxyFactory):
    """Relays to ``host``:``port`` with ``latency`` each way and a ``reset`` share of connections reset."""

    protocol = _Server

    def __init__(self, host, port, clock, latency=0.0, reset=0.0, within=30.0, rng=None):
        super().__init__(host, port)
        self.clock = clock
        self.latency = latency
        self.reset = reset
        self.within = within
        self.random = rng or random.Random()
        self.resets = 0
        self.connections = 0  # both sides of each relayed connection
        self.open = 0
        self._idle = []

    def opened(self):
        self.open += 1
        self.connections += 1

    def closed(self):
        self.open -= 1
        if not self.open:
            waiting, self._idle = self._idle, []
            for waiter in waiting:
                waiter.callback(None)

    def idle(self):
        """A Deferred that fires once no connection is open through this proxy."""
        if not self.open:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._idle.append(waiter)
        return waiter

    def connect(self, client):
        """Connect ``client`` (a client factory) to the real server."""
        from twisted.internet import reactor
        reactor.connectTCP(self.host, self.port, client)


def parse_forward(text):
    """``host:port=host:port`` as ((host, port), (host, port))."""
    listen, _, connect = text.partition("=")
    pairs = []
    for item in (listen, connect):
        host, _, port = item.rpartition(":")
        if not host or not port.isdigit():
            raise argparse.ArgumentTypeError("not HOST:PORT=HOST:PORT: %r" % text)
        pairs.append((host, int(port)))
    return tuple(pairs)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="csm-netproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--forward", type=parse_forward, action="append", required=True,
                        help="HOST:PORT=HOST:PORT: listen on the first, relay to the second")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each chunk is held, each way")
    parser.add_argument("--reset", type=float, default=0.0, help="share of connections reset (0-1)")
    parser.add_argument("--reset-within", type=float, default=30.0,
                        help="a reset connection is reset within this many seconds of opening")
    parser.add_argument("--seed", type=int, help="for the random resets")
    args = parser.parse_args(argv)
    from twisted.internet import reactor
    rng = random.Random(args.seed)
    factories = []
    for (host, port), (to_host, to_port) in args.forward:
        factory = ProxyFactory(to_host, to_port, reactor, args.latency, args.reset, args.reset_within, rng)
        factories.append(factory)
        factory.noisy = False
        try:
            reactor.listenTCP(port, factory, interface=host)
        except Exception as exc:  # one line, not a traceback
            parser.exit(1, "csm-netproxy: cannot listen on %s:%d: %s\n" % (host, port, exc))
    reactor.addSystemEventTrigger("before", "shutdown", lambda: sys.stderr.write(
        "csm-netproxy: %d connections relayed, %d reset\n" % (sum(f.connections for f in factories) // 2,
                                                               sum(f.resets for f in factories))))
    print("csm-netproxy: ready", flush=True)
    reactor.run()  # SIGTERM and SIGINT stop it


class Proxies:
    """The proxy processes before a cluster's listeners (``front``); ``stop()`` ends them."""

    def __init__(self):
        self.processes = []

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def front(cluster, latency=0.0, reset=0.0, within=30.0, seed=None):
    """Before ``cluster`` starts: move each listener (the master's two, each aggregator's compute
    port) to a new port and start, on the listener's host, a proxy on the old one. Every
    client, csm-sim too, then connects through a proxy. Returns the ``Proxies``."""
    from csm.cluster import free_port
    proxies = Proxies()
    for daemon in cluster.daemons.values():
        net = daemon.config["csm"]["net"]
        forwards = []
        for key in ("aggregator_listen", "utility_listen", "compute_listen"):
            if key in net:
                listen = net[key]
                inner = dict(listen, port=free_port())
                forwards.append("%s:%d=%s:%d" % (listen["host"], listen["port"], inner["host"], inner["port"]))
                net[key] = inner
                if key == "compute_listen":  # where csm-sim connects: the proxy
                    daemon.front = listen
        if not forwards:
            continue
        argv = [sys.executable, "-m", "csm.netproxy", "--latency", str(latency), "--reset", str(reset),
                "--reset-within", str(within)] + (["--seed", str(seed)] if seed is not None else [])
        for forward in forwards:
            argv += ["--forward", forward]
        with open(os.path.join(cluster.run_dir, daemon.name + ".proxy.out"), "ab") as out:
            process = subprocess.Popen(cluster.on_host(daemon.name, argv), env=cluster.env(), stdout=subprocess.PIPE,
                                       stderr=out, stdin=subprocess.DEVNULL, text=True)
        proxies.processes.append(process)
        if process.stdout.readline().strip() != "csm-netproxy: ready":
            proxies.stop()
            raise RuntimeError("the proxy for %s did not start; see %s.proxy.out" % (daemon.name, daemon.name))
    return proxies


if __name__ == "__main__":
    main()
