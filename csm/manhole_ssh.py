"""The admin shell over SSH (``csm.manhole.ssh_port``): public keys from ``authorized_keys``
only, the host key made on first use. Apart from ``csm.manhole``, which imports it only when
configured: conch's SSH side brings cryptography."""

import os

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.conch import manhole_ssh
from twisted.conch.checkers import IAuthorizedKeysDB, SSHPublicKeyChecker, readAuthorizedKeyFile
from twisted.conch.ssh import keys
from twisted.cred import portal
from zope.interface import implementer

from csm import logs
from csm.manhole import session

log = logs.logger("csmd")


@implementer(IAuthorizedKeysDB)
class AuthorizedKeysFile:
    """The keys of one authorized_keys file, for any user name; read at each login."""

    def __init__(self, path):
        self.path = path

    def getAuthorizedKeys(self, username):
        try:
            with open(self.path, "rb") as f:
                return list(readAuthorizedKeyFile(f))
        except OSError:
            log.warn("manhole: cannot read {path}", path=self.path)
            return []


def host_key(path):
    """The SSH host key at ``path``, made (ed25519, mode 0600) if missing."""
    if not os.path.exists(path):
        key = ed25519.Ed25519PrivateKey.generate()
        data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                 serialization.NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return keys.Key.fromFile(path)


def ssh_factory(namespace, authorized_keys, key_path):
    realm = manhole_ssh.TerminalRealm()
    realm.chainedProtocolFactory = lambda: session(namespace)
    factory = manhole_ssh.ConchFactory(portal.Portal(realm, [SSHPublicKeyChecker(AuthorizedKeysFile(authorized_keys))]))
    key = host_key(key_path)
    factory.publicKeys = {key.sshType(): key.public()}
    factory.privateKeys = {key.sshType(): key}
    return factory
