"""TLS for daemon links: one certificate (``ssl.cred_pem``) serves as client and
server certificate, ``ssl.ca_file`` is the only trusted root, and both sides must
present a certificate (mutual TLS). Clients also check the server's name or IP
against its certificate (service-identity).
"""

from twisted.internet import ssl


class TLSContexts:
    """The certificates of one daemon, loaded once."""

    def __init__(self, ca_file, cred_pem):
        with open(ca_file, "rb") as f:
            self.ca = ssl.Certificate.loadPEM(f.read())
        with open(cred_pem, "rb") as f:
            self.cred = ssl.PrivateCertificate.loadPEM(f.read())
        self._client = {}

    @classmethod
    def from_config(cls, ssl_config):
        """``None`` when the config does not enable TLS (both files must be set)."""
        if not ssl_config.enabled:
            return None
        return cls(ssl_config.ca_file, ssl_config.cred_pem)

    def server_options(self):
        return self.cred.options(self.ca)

    def client_options(self, hostname):
        """One client context per server name, shared by every link to it."""
        options = self._client.get(hostname)
        if options is None:
            options = self._client[hostname] = ssl.optionsForClientTLS(hostname, trustRoot=self.ca,
                                                                       clientCertificate=self.cred)
        return options
