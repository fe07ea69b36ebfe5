"""The admin shell of every daemon (``csm.manhole`` in the daemon's config).

A Python prompt inside the running daemon, with its services, links, command
registry, database pool (master) and a ``status()`` helper. Off unless
configured. On a unix socket (mode 0600, owned by root; a peer whose uid is
neither root nor the daemon's is refused even if the mode is loosened)::

    socat -,raw,echo=0 UNIX-CONNECT:/run/csmd_master.manhole
    >>> status()

and optionally over SSH on ``ssh_host:ssh_port``, public keys from
``authorized_keys`` only (the host key is made at ``host_key`` on first use)::

    ssh -p 2222 root@127.0.0.1
"""

import os

from twisted.application import service
from twisted.conch import manhole
from twisted.conch.insults import insults
from twisted.internet import endpoints, protocol

from csm import logs
from csm.net.listen import ListeningService, UnixListenService
from csm.net.local import peer_credentials

log = logs.logger("csmd")


def session(namespace):
    """A terminal protocol running a Python prompt in a fresh copy of ``namespace``."""
    scope = dict(namespace, __name__="__csm_manhole__")
    return insults.ServerProtocol(manhole.ColoredManhole, scope)


class _CheckedServerProtocol(insults.ServerProtocol):
    """Refuses any peer but root and the daemon's own user (SO_PEERCRED)."""

    def connectionMade(self):
        _pid, uid, _gid = peer_credentials(self.transport)
        if uid not in (0, os.geteuid()):
            log.warn("manhole: refused uid {uid}", uid=uid)
            self.transport.write(b"manhole: permission denied\r\n")
            self.transport.loseConnection()
            return
        super().connectionMade()


class _UnixFactory(protocol.ServerFactory):
    def __init__(self, namespace):
        self.namespace = namespace

    def buildProtocol(self, addr):
        proto = _CheckedServerProtocol(manhole.ColoredManhole, dict(self.namespace, __name__="__csm_manhole__"))
        proto.factory = self
        return proto


def unix_manhole_service(reactor, path, namespace, mode=0o600, config_key=None):
    """The shell on a unix socket; the file is made ``mode``, owned by root, and replaced at start
    unless a live process still listens there."""
    return UnixListenService(reactor, path, _UnixFactory(namespace), mode, root_owned=True, config_key=config_key)


def makeManholeService(config, namespace, reactor=None, mode=0o600, config_path=None):
    """The configured shells (unix socket and/or SSH) as one MultiService; a socket or port in
    use stops the start, naming its key in ``config_path``."""
    if reactor is None:
        from twisted.internet import reactor
    top = service.MultiService()
    top.setName("manhole")
    if config.socket:
        unix_manhole_service(reactor, config.socket, namespace, mode,
                             config_key=config_path and (config_path, "csm.manhole.socket")).setServiceParent(top)
    if config.ssh_port:
        from csm.manhole_ssh import ssh_factory  # conch's SSH and cryptography: only when configured

        factory = ssh_factory(namespace, config.authorized_keys, config.host_key or config.socket + ".host_key")
        endpoint = endpoints.serverFromString(reactor, "tcp:%d:interface=%s" % (
            config.ssh_port, endpoints.quoteStringArgument(config.ssh_host or "127.0.0.1")))
        ListeningService(endpoint, factory, config_key=config_path and (config_path, "csm.manhole.ssh_port")
                         ).setServiceParent(top)
    return top
