"""The options of the four twistd plugins: what twistd loads before the reactor, so no daemon code."""

import sys

from twisted.python import usage


class DaemonOptions(usage.Options):
    """``twistd csm-<role> --config FILE [--role ROLE]``."""

    default_config = None
    optParameters = [
        ["config", "f", None, "the daemon's configuration file (CAST's JSON format)"],
        ["role", "r", None, "override the role in the file: master, aggregator, utility, compute"],
    ]

    def postOptions(self):
        if not self["config"]:
            self["config"] = self.default_config


def leave_out_pyopenssl(path, role_override):
    """Mark pyOpenSSL absent for a compute whose config enables no TLS; True if it did.

    Twisted's reactor imports pyOpenSSL, and with it cryptography and service_identity, whenever
    they are installed: about 13 MB of a compute's RSS that a compute without TLS links never
    uses. Python's own way to say "not installed" (``sys.modules[name] = None``) makes those
    imports fail as Twisted expects without pyOpenSSL. It must run before the reactor is imported:
    twistd parses options first.
    """
    if "OpenSSL" in sys.modules or not compute_without_tls(path, role_override):
        return False
    sys.modules["OpenSSL"] = None
    return True


def compute_without_tls(path, role_override):
    """Whether the config at ``path`` is a compute's without TLS. A config that does not load is
    not (the daemon reports it later, as always); nor is any other role (the master's and
    utility's UFM client speaks HTTPS)."""
    from csm.config import ConfigError, load_daemon_config
    try:
        config = load_daemon_config(path, role_override=role_override, warn=lambda text: None)
    except ConfigError:
        return False
    return config.role == "compute" and not config.net.ssl.enabled
