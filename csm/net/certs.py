"""Make a private CA and daemon certificates (for ``csm-certs``, the demo and the tests)."""

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


def write_pem(path, data, mode=0o600):
    """Write ``path`` with ``mode`` (also when it existed with another mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)


#: one certificate is both the client's and the server's (``ssl.cred_pem``)
_DAEMON_USAGE = x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                       x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH])
_DAEMON_KEY_USAGE = x509.KeyUsage(digital_signature=True, key_encipherment=False, content_commitment=False,
                                  data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                  crl_sign=False, encipher_only=False, decipher_only=False)
_CA_KEY_USAGE = x509.KeyUsage(digital_signature=False, key_encipherment=False, content_commitment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True,
                              crl_sign=True, encipher_only=False, decipher_only=False)


class CertificateAuthority:
    """A CA that signs daemon certificates."""

    def __init__(self, common_name="csm test CA", days=30, key=None, cert=None):
        """A new CA valid for ``days``; or, given ``key`` and ``cert``, an existing one
        (``days`` is then the validity of the certificates it issues)."""
        self.days = days
        if key is not None:
            self.key, self.cert = key, cert
            return
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(_CA_KEY_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @classmethod
    def load(cls, cert_path, key_path, days=30):
        """The CA kept in ``cert_path`` and ``key_path`` (PEM); ``ValueError`` if they do not pair."""
        with open(cert_path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        if key.public_key().public_numbers() != cert.public_key().public_numbers():
            raise ValueError("%s is not the key of %s" % (key_path, cert_path))
        return cls(days=days, key=key, cert=cert)

    def cert_pem(self):
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def key_pem(self):
        return _pem_key(self.key)

    def write_ca(self, path, key_path=None):
        """The CA certificate (0644) and, given ``key_path``, its key (0600)."""
        write_pem(path, self.cert_pem(), 0o644)
        if key_path is not None:
            write_pem(key_path, self.key_pem(), 0o600)
        return path

    def make(self, names=("localhost", "127.0.0.1"), common_name=None):
        """A daemon certificate for ``names`` (host names and addresses, its subjectAltName):
        ``(certificate PEM, key PEM)``."""
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
            .add_extension(_DAEMON_KEY_USAGE, critical=True)
            .add_extension(_DAEMON_USAGE, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                           critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)

    def issue(self, path, names=("localhost", "127.0.0.1"), common_name=None):
        """Write a certificate and its key into one PEM file (``ssl.cred_pem``)."""
        cert, key = self.make(names, common_name)
        write_pem(path, cert + key)
        return path


def make_pki(directory, names=("localhost", "127.0.0.1")):
    """A CA file and one shared daemon credential in ``directory``: (ca_file, cred_pem)."""
    os.makedirs(directory, exist_ok=True)
    ca = CertificateAuthority()
    ca_file = ca.write_ca(os.path.join(directory, "ca.pem"))
    cred = ca.issue(os.path.join(directory, "csm_cred.pem"), names)
    return ca_file, cred
