"""Multicast in memory: a master, two aggregators and their computes linked over iosim, on a Clock.

The master splits the nodes by primary aggregator (``multicast.multicast``); each aggregator
fans out to its computes (``multicast.fan_out``) and answers for every node it was given.
"""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.test import iosim
from twisted.trial.unittest import SynchronousTestCase

from csm import __version__
from csm.api import multicast
from csm.api.registry import Command, Registry
from csm.api.router import Router
from csm.errors import CSMError, ErrorCode
from csm.net.link import LinkOwner, LinkProtocol
from csm.roles.nodeset import NodeSet
from csm.roles.peers import PeerTable

PROLOG = Command(name="allocation_create", cmd_id=7, multicast=True, open_input=True)
REGISTRY = Registry([PROLOG])


class Timeouts:
    def timeout(self, name):
        return 30.0


class Daemon:
    """What the router and the multicast read of a daemon."""

    api_timeouts = Timeouts()

    def __init__(self, role, name, clock, handlers=()):
        self.role, self.node_name, self.clock = role, name, clock
        self.router = Router(self, REGISTRY, dict(handlers), upstream=None)


class Owner(LinkOwner):
    """One side of a link: says who it is, answers requests through its daemon's router,
    and tells ``on_ready``/``on_lost``."""

    def __init__(self, daemon, on_ready=None, on_lost=None):
        self.daemon, self.on_ready, self.on_lost = daemon, on_ready, on_lost

    def hello(self, link):
        return {"version": __version__, "node": self.daemon.node_name, "role": self.daemon.role}

    def link_ready(self, link):
        if self.on_ready:
            self.on_ready(link)

    def link_lost(self, link, reason):
        if self.on_lost:
            self.on_lost(link)

    def message_received(self, link, message):
        self.daemon.router.handle(message, link).addCallback(link.send)


class MulticastTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.pumps = []
        self.master = Daemon("master", "master", self.clock)
        self.master.nodeset = NodeSet(on_event=lambda *args: None)
        self.master.aggregators = PeerTable("aggregator")
        self.silent = set()  # computes that never answer
        self.aggregator_links = {}
        for name in ("agg01", "agg02"):
            aggregator = Daemon("aggregator", name, self.clock, {PROLOG.cmd_id: multicast.aggregator_handler})
            aggregator.computes = PeerTable("compute")
            self.link(Owner(self.master, on_ready=self.master.aggregators.connected,
                            on_lost=self.master.aggregators.disconnected), Owner(aggregator))
            setattr(self, name, aggregator)
        for node, aggregator in (("c01", self.agg01), ("c02", self.agg01), ("c03", self.agg02)):
            compute = Daemon("compute", node, self.clock, {PROLOG.cmd_id: self.prolog})
            self.link(Owner(aggregator, on_ready=self.primary_compute(aggregator)), Owner(compute))
            self.master.nodeset.update(aggregator.node_name, [{"node": node, "up": True, "primary": True}])

    def link(self, server_owner, client_owner):
        server = LinkProtocol(server_owner, self.clock, initiator=False, heartbeat_interval=0)
        client = LinkProtocol(client_owner, self.clock, initiator=True, heartbeat_interval=0)
        _, _, pump = iosim.connectedServerAndClient(lambda: server, lambda: client, greet=False)
        self.pumps.append(pump)
        self.flush()
        return server, client

    def flush(self):
        for _ in range(4):
            for pump in self.pumps:
                pump.flush()

    def primary_compute(self, aggregator):
        def ready(link):
            aggregator.computes.connected(link).primary = True
        return ready

    def prolog(self, ctx, body):
        node = ctx.daemon.node_name
        if node in self.silent:
            return defer.Deferred()
        return {"node": node, "allocation_id": body.get("allocation_id")}

    def send(self, nodes, timeout=10.0):
        results = []
        multicast.multicast(self.master, PROLOG.cmd_id, nodes, {"allocation_id": 5}, timeout).addCallback(
            results.append)
        self.flush()
        return results

    def test_every_node_answers_through_its_primary(self):
        [results] = self.send(["c01", "c02", "c03"])
        self.assertEqual({node: r["output"] for node, r in results.items()},
                         {node: {"node": node, "allocation_id": 5} for node in ("c01", "c02", "c03")})
        self.assertEqual(multicast.node_errors(results), [])

    def test_node_without_aggregator_fails_alone(self):
        [results] = self.send(["c01", "c09"], timeout=1.5)  # too short to wait for c09 to appear
        self.assertEqual(results["c01"]["errcode"], 0)
        self.assertEqual([(e.source, e.errcode) for e in multicast.node_errors(results)],
                         [("c09", ErrorCode.CSMERR_SENDRCV_ERROR)])

    def test_silent_compute_times_out_on_the_clock(self):
        self.silent.add("c02")
        results = self.send(["c01", "c02"], timeout=10.0)
        self.assertEqual(results, [])
        self.clock.advance(8.9)  # the aggregator keeps one second back for the master
        self.flush()
        self.assertEqual(results, [])
        self.clock.advance(0.1)
        self.flush()
        [results] = results
        self.assertEqual(results["c01"]["errcode"], 0)
        self.assertEqual(results["c02"]["errcode"], ErrorCode.CSMERR_TIMEOUT)

    def test_unreachable_node_is_sent_again_once_it_has_a_new_primary(self):
        """Waited for by notification (the node set's report), not polled."""
        self.master.nodeset.update("agg01", [{"node": "c02", "up": False}])
        results = self.send(["c01", "c02"])
        self.assertEqual(results, [])  # c02 is waited for
        compute = Daemon("compute", "c02", self.clock, {PROLOG.cmd_id: self.prolog})
        self.link(Owner(self.agg02, on_ready=self.primary_compute(self.agg02)), Owner(compute))
        self.master.nodeset.update("agg02", [{"node": "c02", "up": True, "primary": True}])
        self.flush()
        [results] = results
        self.assertEqual(results["c02"]["output"], {"node": "c02", "allocation_id": 5})
        self.assertEqual(self.clock.seconds(), 0)

    def test_an_aggregator_encodes_the_body_once_for_all_its_computes(self):
        encoded = []
        real = multicast.encode_body
        self.patch(multicast, "encode_body", lambda body: encoded.append(body) or real(body))
        [results] = self.send(["c01", "c02", "c03"])
        self.assertEqual(multicast.node_errors(results), [])
        self.assertEqual(len(encoded), 2)  # agg01 for c01 and c02, agg02 for c03
        self.assertEqual(encoded[0], {"allocation_id": 5, "timeout": 8.0})

    def test_a_compute_whose_link_fails_at_once_does_not_end_the_fan_out_early(self):
        """c01's link is closing (its request fails before the others are sent): the
        aggregator still waits for c02, and a fan-out of c01 alone answers once."""
        self.agg01.computes.get("c01").link.close("going")
        [results] = self.send(["c01", "c02", "c03"])
        self.assertEqual(results["c01"]["errcode"], ErrorCode.CSMERR_SENDRCV_ERROR)
        self.assertEqual(results["c02"]["output"], {"node": "c02", "allocation_id": 5})
        self.assertEqual(results["c03"]["errcode"], 0)
        [results] = self.send(["c01"])
        self.assertEqual(results["c01"]["errcode"], ErrorCode.CSMERR_SENDRCV_ERROR)
        self.assertIn("no connection", results["c01"]["errmsg"])

    def test_an_aggregators_error_is_the_error_of_each_of_its_nodes(self):
        def refuse(ctx, body):
            raise CSMError(ErrorCode.CSMERR_GENERIC, "busy")
        self.agg01.router.handlers[PROLOG.cmd_id] = refuse
        [results] = self.send(["c03", "c02", "c01", "c09"], timeout=1.5)  # c09: no aggregator
        self.assertEqual({node: (r["errcode"], r["errmsg"]) for node, r in results.items() if node != "c03"},
                         {"c01": (ErrorCode.CSMERR_GENERIC, "c01: busy"), "c02": (ErrorCode.CSMERR_GENERIC, "c02: busy"),
                          "c09": (ErrorCode.CSMERR_SENDRCV_ERROR, "no aggregator reaches c09")})
        self.assertEqual(results["c03"]["errcode"], 0)

    def test_aggregator_answers_for_a_node_that_is_not_its_primary_compute(self):
        self.agg01.computes.get("c02").primary = False
        [results] = self.send(["c01", "c02"], timeout=1.5)
        self.assertEqual(results["c01"]["errcode"], 0)
        self.assertEqual(results["c02"]["errcode"], ErrorCode.CSMERR_SENDRCV_ERROR)
        self.assertIn("not a primary compute of agg01", results["c02"]["errmsg"])
