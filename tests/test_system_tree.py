"""System tests: a real tree of twistd processes on loopback with TLS."""

import json
import os
import socket
import ssl
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import LocalCluster, free_port
from csm.net.certs import CertificateAuthority
from tests.clusters import shared_cluster


class TreeTests(SynchronousTestCase):
    """Master, 2 aggregators, 1 utility, 2 computes, mutual TLS."""

    def setUp(self):
        self.cluster = shared_cluster("tree", computes=2, aggregators=2, utilities=1, tls=True)
        self.run_dir = self.cluster.run_dir

    def master_port(self):
        return self.cluster.ports["aggregator_listen"]

    def test_health_check_from_a_compute(self):
        rc, out = self.cluster.cli("c01", "csm_infrastructure_health_check", "-v")
        self.assertEqual(rc, 0, out)
        self.assertIn("MASTER: master (bounced=0; version=1.8.5)", out)
        self.assertIn("Aggregators:2", out)
        self.assertIn("Unresponsive Aggregators: 0", out)
        self.assertIn("AGGREGATOR: agg01 (bounced=0; version=1.8.5)", out)
        self.assertIn("AGGREGATOR: agg02 (bounced=0; version=1.8.5)", out)
        self.assertIn("Utility Nodes:1", out)
        self.assertIn("UTILITY: util01 (bounced=0; version=1.8.5)", out)
        self.assertIn("Unresponsive Utility Nodes: 0", out)
        # each compute is primary on one aggregator and secondary on the other
        self.assertEqual(out.count("COMPUTE: c01 (bounced=0; version=1.8.5; link=PRIMARY)"), 1)
        self.assertEqual(out.count("COMPUTE: c01 (bounced=0; version=1.8.5; link=SECONDARY)"), 1)
        self.assertEqual(out.count("COMPUTE: c02 (bounced=0; version=1.8.5; link=PRIMARY)"), 1)
        self.assertIn("Local_daemon: COMPUTE: c01", out)

    def test_health_check_json_from_utility(self):
        rc, out = self.cluster.cli("util01", "csm_infrastructure_health_check", "--format", "json")
        self.assertEqual(rc, 0, out)
        report = json.loads(out)
        self.assertEqual(report["local_daemon"]["role"], "utility")
        self.assertEqual(sorted(a["node"] for a in report["aggregators"]), ["agg01", "agg02"])
        self.assertTrue(self.cluster.complete(report))

    def test_ordinary_user_refused_privileged_api(self):
        rc, out = self.cluster.cli("c01", "csm_infrastructure_health_check", user="nobody")
        self.assertEqual(rc, 16, out)
        self.assertIn("csm_infrastructure_health_check FAILED: errcode: 16", out)

    def test_certificate_from_another_ca_refused(self):
        other = tempfile.mkdtemp(prefix="csm-otherca-")
        ca = CertificateAuthority("rogue CA")
        ca_file = ca.write_ca(os.path.join(other, "ca.pem"))
        cred = ca.issue(os.path.join(other, "cred.pem"))
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.load_cert_chain(cred)
        context.load_verify_locations(ca_file)
        with socket.create_connection(("127.0.0.1", self.master_port()), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError, OSError)):
                with context.wrap_socket(raw) as tls:
                    tls.sendall(b"x" * 64)
                    if not tls.recv(1):
                        raise ConnectionError("closed by the master")
        log = open(os.path.join(self.run_dir, "master.log")).read()
        self.cluster.wait_for(lambda: "TLS" in open(os.path.join(self.run_dir, "master.log")).read(),
                              timeout=10, what="the refusal in the master's log")
        self.assertTrue(self.cluster.complete(self.cluster.health("c02")), log[-2000:])

    def test_random_bytes_do_not_disturb_the_tree(self):
        with socket.create_connection(("127.0.0.1", self.master_port()), timeout=10) as sock:
            sock.sendall(os.urandom(8192))
            sock.settimeout(10)
            try:
                while sock.recv(4096):
                    pass
            except ConnectionError:
                pass  # closed by the master: what we want
        self.assertTrue(self.cluster.complete(self.cluster.health("c01")))
        self.assertTrue(self.cluster.daemons["master"].running)


class SecondaryAbsentTests(SynchronousTestCase):
    def test_compute_works_through_a_alone_and_every_role_exits_cleanly(self):
        """aggregatorB is configured but never comes up; SIGTERM then stops every role with 0."""
        run_dir = tempfile.mkdtemp(prefix="csm-stop-")
        cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=1, tls=False,
                               extra={"compute": {"net.aggregatorB": {"host": "127.0.0.1",
                                                                      "port": free_port()}}})
        try:
            cluster.start()
            report = cluster.wait_complete("c01", timeout=60)
            rc, out = cluster.cli("c01", "csm_ctrl_cmd", "--status", "--format", "json")
            links = {link["name"]: link["state"] for link in json.loads(out)["status"]["links"]}
        finally:
            status = cluster.stop()
        self.assertEqual(links, {"aggregatorA (PRIMARY)": "HAPPY", "aggregatorB (SECONDARY)": "DISCONNECTED"})
        self.assertEqual(report["local_daemon"]["node"], "c01")
        self.assertEqual(set(status.values()), {0}, status)
        for daemon in cluster.daemons.values():
            self.assertFalse(os.path.exists(daemon.socket), daemon.socket)
