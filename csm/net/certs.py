"""Make a private CA and daemon certificates (for the demo and the tests)."""

import datetime
import ipaddress
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "csm"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(names):
    entries = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


class CertificateAuthority:
    """A CA that signs daemon certificates."""

    def __init__(self, common_name="csm test CA", days=30):
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.days = days
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def write_ca(self, path):
        _write(path, self.cert_pem(), 0o644)
        return path

    def issue(self, path, names=("localhost", "127.0.0.1"), common_name=None):
        """Write a certificate and its key into one PEM file (``ssl.cred_pem``)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name or names[0])).issuer_name(self.cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=self.days))
            .add_extension(_san(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        _write(path, cert.public_bytes(serialization.Encoding.PEM) + _pem_key(key))
        return path


def make_pki(directory, names=("localhost", "127.0.0.1")):
    """A CA file and one shared daemon credential in ``directory``: (ca_file, cred_pem)."""
    os.makedirs(directory, exist_ok=True)
    ca = CertificateAuthority()
    ca_file = ca.write_ca(os.path.join(directory, "ca.pem"))
    cred = ca.issue(os.path.join(directory, "csm_cred.pem"), names)
    return ca_file, cred
