"""TLS for daemon links: one certificate (``ssl.cred_pem``) serves as client and
server certificate, ``ssl.ca_file`` is the only trusted root, and both sides must
present a certificate (mutual TLS). Clients also check the server's name or IP
against its certificate (service-identity).
"""

from OpenSSL.crypto import Error as OpenSSLError
from twisted.internet import ssl

from csm.config import ConfigError


def _load(loader, path, key, what, source):
    """``loader`` applied to the file's bytes; ``ConfigError`` naming ``key`` if it cannot be."""
    try:
        with open(path, "rb") as f:
            return loader(f.read())
    except OSError as exc:
        problem = "cannot read %s: %s" % (path, exc.strerror or exc)
    except (OpenSSLError, ValueError):
        problem = "%s is not %s in PEM format" % (path, what)
    raise ConfigError(source or path, key, problem)


class TLSContexts:
    """The certificates of one daemon, loaded once."""

    def __init__(self, ca_file, cred_pem, source=None):
        """``source``: the config file the paths came from (named by a ``ConfigError``)."""
        self.ca = _load(ssl.Certificate.loadPEM, ca_file, "csm.net.ssl.ca_file", "a certificate", source)
        self.cred = _load(ssl.PrivateCertificate.loadPEM, cred_pem, "csm.net.ssl.cred_pem",
                          "a certificate with its private key", source)
        self._client = {}

    @classmethod
    def from_config(cls, ssl_config, source=None):
        """``None`` when the config does not enable TLS (both files must be set)."""
        if not ssl_config.enabled:
            return None
        return cls(ssl_config.ca_file, ssl_config.cred_pem, source)

    def server_options(self):
        return self.cred.options(self.ca)

    def client_options(self, hostname):
        """One client context per server name, shared by every link to it."""
        options = self._client.get(hostname)
        if options is None:
            options = self._client[hostname] = ssl.optionsForClientTLS(hostname, trustRoot=self.ca,
                                                                       clientCertificate=self.cred)
        return options
