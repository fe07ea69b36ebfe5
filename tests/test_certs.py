"""csm-certs: a site's CA and host certificates (modes, subjectAltName, reuse) and a real TLS
tree of daemons that uses them."""

import io
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import tempfile

from cryptography import x509
from twisted.trial.unittest import SynchronousTestCase

from csm import certs
from csm.cluster import LocalCluster


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = certs.main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def subject_alt_names(path):
    with open(path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.DNSName), [str(a) for a in san.get_values_for_type(x509.IPAddress)]


class CertsCommandTests(SynchronousTestCase):
    def setUp(self):
        self.dir = os.path.join(tempfile.mkdtemp(), "tls")
        self.addCleanup(shutil.rmtree, os.path.dirname(self.dir))

    def test_modes_whatever_the_umask(self):
        old = os.umask(0)
        try:
            code, _, err = run("-d", self.dir, "c01=10.0.0.1")
        finally:
            os.umask(old)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(mode(self.dir), 0o755)
        self.assertEqual(mode(os.path.join(self.dir, "ca.pem")), 0o644)
        self.assertEqual(mode(os.path.join(self.dir, "private")), 0o700)
        self.assertEqual(mode(os.path.join(self.dir, "private", "ca-key.pem")), 0o600)
        self.assertEqual(mode(os.path.join(self.dir, "hosts")), 0o755)
        self.assertEqual(mode(os.path.join(self.dir, "hosts", "c01.pem")), 0o600)
        self.assertEqual(mode(os.path.join(self.dir, "hosts", "c01.crt")), 0o644)

    def test_names_and_addresses_in_subject_alt_name(self):
        code, out, _ = run("-d", self.dir, "mgmt01=10.0.0.1,mgmt01.site,fd00::1", "c[01-16]=10.2.0.[1-16]")
        self.assertEqual(code, 0)
        self.assertEqual(subject_alt_names(os.path.join(self.dir, "hosts", "mgmt01.crt")),
                         (["mgmt01", "mgmt01.site"], ["10.0.0.1", "fd00::1"]))
        self.assertEqual(subject_alt_names(os.path.join(self.dir, "hosts", "c07.crt")), (["c07"], ["10.2.0.7"]))
        self.assertEqual(subject_alt_names(os.path.join(self.dir, "hosts", "c16.pem")), (["c16"], ["10.2.0.16"]))
        self.assertEqual(len([n for n in os.listdir(os.path.join(self.dir, "hosts")) if n.endswith(".pem")]), 17)
        self.assertIn("c16: ", out)

    def test_hosts_file(self):
        path = os.path.join(os.path.dirname(self.dir), "hosts")
        with open(path, "w") as f:
            f.write("# management\nmgmt01 10.0.0.1   # the master\n\nsvc[01-02] 10.0.1.[1-2] svc[01-02]-ib\n")
        self.assertEqual(run("-d", self.dir, "-f", path)[0], 0)
        self.assertEqual(subject_alt_names(os.path.join(self.dir, "hosts", "svc02.crt")),
                         (["svc02", "svc02-ib"], ["10.0.1.2"]))

    def test_bad_input_is_one_line_and_writes_nothing(self):
        path = os.path.join(os.path.dirname(self.dir), "hosts")
        with open(path, "w") as f:
            f.write("mgmt01 10.0.0.1\nc[01-03] 10.2.0.[1-2]\n")
        for argv, message in (
                (("c[01-03]=10.2.0.[1-2]",), "c[01-03] names 3 hosts but 10.2.0.[1-2] has 2 entries"),
                (("c01", "bad_host"), "'bad_host' is neither a host name nor an IP address"),
                (("c[01-",), "invalid host range 'c[01-'"),
                (("-f", path), "%s:2: c[01-03] names 3 hosts" % path),
                (("-f", path + ".missing"), "cannot read %s.missing" % path)):
            code, _, err = run("-d", self.dir, *argv)
            self.assertEqual(code, 1, argv)
            self.assertTrue(err.startswith("csm-certs: " + message), err)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertFalse(os.path.exists(self.dir))

    def test_an_existing_ca_signs_and_is_kept(self):
        run("-d", self.dir, "c01")
        ca_file = os.path.join(self.dir, "ca.pem")
        with open(ca_file, "rb") as f:
            first = f.read()
        with open(os.path.join(self.dir, "hosts", "c01.pem"), "rb") as f:
            c01 = f.read()
        code, out, _ = run("-d", self.dir, "c01", "c02")
        self.assertEqual(code, 0)
        with open(ca_file, "rb") as f:
            self.assertEqual(f.read(), first)
        with open(os.path.join(self.dir, "hosts", "c01.pem"), "rb") as f:
            self.assertEqual(f.read(), c01)
        self.assertIn("c01: kept", out)
        context = ssl.create_default_context(cafile=ca_file)  # c02 chains to the first CA
        context.load_cert_chain(os.path.join(self.dir, "hosts", "c02.pem"))
        self.assertEqual(run("-d", self.dir, "--renew", "c01")[0], 0)
        with open(os.path.join(self.dir, "hosts", "c01.pem"), "rb") as f:
            self.assertNotEqual(f.read(), c01)
        self.assertEqual(run("-d", self.dir, "--new-ca", "c01")[0], 0)
        with open(ca_file, "rb") as f:
            self.assertNotEqual(f.read(), first)

    def test_a_ca_without_its_key_is_not_replaced(self):
        run("-d", self.dir, "c01")
        os.unlink(os.path.join(self.dir, "private", "ca-key.pem"))
        with open(os.path.join(self.dir, "ca.pem"), "rb") as f:
            first = f.read()
        code, _, err = run("-d", self.dir, "c02")
        self.assertEqual(code, 1)
        self.assertIn("cannot read the CA in %s" % self.dir, err)
        with open(os.path.join(self.dir, "ca.pem"), "rb") as f:
            self.assertEqual(f.read(), first)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "hosts", "c02.pem")))

    def test_a_key_of_another_ca_is_refused(self):
        run("-d", self.dir, "c01")
        other = os.path.join(os.path.dirname(self.dir), "other")
        run("-d", other, "c01")
        shutil.copy(os.path.join(other, "private", "ca-key.pem"), os.path.join(self.dir, "private", "ca-key.pem"))
        code, _, err = run("-d", self.dir, "c02")
        self.assertEqual(code, 1)
        self.assertIn("is not the key of", err)


class SiteCertificatesTreeTests(SynchronousTestCase):
    """Master, aggregator and compute processes, each with its own certificate from csm-certs."""

    def test_a_tree_over_tls_with_the_site_certificates(self):
        run_dir = tempfile.mkdtemp(prefix="csm-certs-")
        os.chmod(run_dir, 0o755)
        self.addCleanup(shutil.rmtree, run_dir, True)
        site = os.path.join(run_dir, "site")
        self.assertEqual(run("-d", site, "master=127.0.0.1", "agg01=127.0.0.1", "c01=127.0.0.1")[0], 0)
        cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=0, tls=False, db=False)
        for name, daemon in cluster.daemons.items():
            daemon.config["csm"]["net"]["ssl"] = {"ca_file": os.path.join(site, "ca.pem"),
                                                  "cred_pem": os.path.join(site, "hosts", name + ".pem")}
        self.addCleanup(cluster.stop)
        cluster.start()
        report = cluster.wait_complete("c01", timeout=60)
        self.assertEqual([c["node"] for c in report["aggregators"][0]["computes"]], ["c01"])
        # the master's port speaks TLS with the master's own certificate, and wants a client's
        port = cluster.ports["aggregator_listen"]
        context = ssl.create_default_context(cafile=os.path.join(site, "ca.pem"))
        context.load_cert_chain(os.path.join(site, "hosts", "c01.pem"))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                names = dict(tls.getpeercert()["subjectAltName"])
        self.assertEqual(names["DNS"], "master")
        self.assertEqual(ipaddress.ip_address(names["IP Address"]), ipaddress.ip_address("127.0.0.1"))
