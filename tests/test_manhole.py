"""The admin shell: a real unix socket and a real SSH login.

The clients are Twisted protocols that fire when the expected output arrives or the
connection ends: nothing polls or sleeps."""

import os
import shutil
import signal
import subprocess
import tempfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.internet import defer, protocol, reactor, threads
from twisted.internet.endpoints import UNIXClientEndpoint, connectProtocol
from twisted.trial.unittest import TestCase

from csm.cluster import free_port
from csm.config import ConfigError, ManholeConfig
from csm.manhole import makeManholeService
from tests.clusters import held_port

NAMESPACE = {"status": lambda: {"role": "compute", "links": ["aggregatorA"]}}


class Typist(protocol.Protocol):
    """Types ``command``; ``seen`` fires with the output once ``until`` shows up or the
    connection ends."""

    def __init__(self, command, until):
        self.command, self.until = command, until
        self.output = b""
        self.seen = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.command)

    def dataReceived(self, data):
        self.output += data
        if self.until in self.output and not self.seen.called:
            self.seen.callback(self.output)
            self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.seen.called:
            self.seen.callback(self.output)


@defer.inlineCallbacks
def talk(path, command, until):
    """Connect to the unix socket, type ``command``; fires with the output up to ``until``."""
    typist = Typist(command, until)
    yield connectProtocol(UNIXClientEndpoint(reactor, path), typist)
    return (yield typist.seen)


class Ssh(protocol.ProcessProtocol):
    """An ``ssh`` client process: types ``command``; ``done`` fires with (output, errors) once
    ``until`` shows up (then it is killed) or it ends."""

    def __init__(self, command, until):
        self.command, self.until = command, until
        self.output = self.errors = b""
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.command)

    def outReceived(self, data):
        self.output += data
        if self.until in self.output:
            self.transport.signalProcess(signal.SIGKILL)

    def errReceived(self, data):
        self.errors += data

    def processEnded(self, reason):
        self.done.callback((self.output, self.errors))


def write_key(path):
    key = ed25519.Ed25519PrivateKey.generate()
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                  serialization.NoEncryption()))
    os.chmod(path, 0o600)
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)


class UnixShellTests(TestCase):
    def start(self, mode=0o600):
        self.dir = tempfile.mkdtemp()
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "csmd.manhole")
        svc = makeManholeService(ManholeConfig(socket=self.path), NAMESPACE, reactor, mode=mode)
        svc.startService()
        self.addCleanup(svc.stopService)
        return svc

    def test_status_over_the_socket(self):
        self.start()
        self.assertEqual(os.stat(self.path).st_mode & 0o777, 0o600)
        d = talk(self.path, b"status()\r", b"aggregatorA")
        d.addCallback(lambda out: self.assertIn(b"'role': 'compute'", out))
        return d

    def test_live_shell_socket_is_not_taken_over(self):
        """A second daemon with the same manhole socket stops at start; the first's shell stays."""
        self.start()
        second = makeManholeService(ManholeConfig(socket=self.path), NAMESPACE, reactor, config_path="/etc/c.cfg")
        error = self.assertRaises(ConfigError, second.startService)
        self.assertIn("csm.manhole.socket: %s is in use by a running daemon (pid %d)" % (self.path, os.getpid()),
                      str(error))
        return talk(self.path, b"status()\r", b"aggregatorA").addCallback(
            lambda out: self.assertIn(b"'role': 'compute'", out))

    def test_socket_removed_at_stop(self):
        svc = self.start()
        d = svc.stopService()
        d.addCallback(lambda _: self.assertFalse(os.path.exists(self.path)))
        return d

    def test_other_user_refused_even_with_an_open_mode(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a client as another user")
        self.start(mode=0o666)
        # the refusal comes unasked (a request written first could meet the closed socket)
        script = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
                  "s.settimeout(5); print(s.recv(4096))")
        d = threads.deferToThread(subprocess.run, ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c",
                                                   script, self.path], capture_output=True, text=True, timeout=20)
        d.addCallback(lambda result: self.assertIn("permission denied", result.stdout, result.stderr))
        return d


class SshShellTests(TestCase):
    timeout = 60

    def test_port_in_use_names_its_key(self):
        port = held_port(self)
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory)
        svc = makeManholeService(ManholeConfig(ssh_port=port, ssh_host="127.0.0.1",
                                               host_key=os.path.join(directory, "host_key")),
                                 NAMESPACE, reactor, config_path="/etc/c.cfg")
        error = self.assertRaises(ConfigError, svc.startService)
        self.assertEqual(str(error), "/etc/c.cfg: csm.manhole.ssh_port: cannot listen on 127.0.0.1:%d: "
                                     "Address already in use" % port)

    def test_known_key_gets_a_shell_unknown_key_refused(self):
        directory = tempfile.mkdtemp()
        good, bad = os.path.join(directory, "good"), os.path.join(directory, "bad")
        authorized = os.path.join(directory, "authorized_keys")
        with open(authorized, "wb") as f:
            f.write(write_key(good) + b"\n")
        write_key(bad)
        port = free_port()
        svc = makeManholeService(ManholeConfig(ssh_port=port, ssh_host="127.0.0.1", authorized_keys=authorized,
                                               host_key=os.path.join(directory, "host_key")), NAMESPACE, reactor)
        svc.startService()
        self.addCleanup(svc.stopService)

        def ssh(key, command, until=b"'role': 'compute'"):
            """Log in, type ``command``; fires with (output, errors) up to ``until`` or the end."""
            client = Ssh(command, until)
            argv = ["ssh", "-tt", "-i", key, "-p", str(port), "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                    "root@127.0.0.1"]
            process = reactor.spawnProcess(client, shutil.which("ssh") or "/usr/bin/ssh", argv, env=os.environ.copy())
            self.addCleanup(lambda: process.pid and process.signalProcess(signal.SIGKILL))
            return client.done

        def check(results):
            (good_out, _), (bad_out, bad_err) = results
            self.assertIn(b"'role': 'compute'", good_out)
            self.assertNotIn(b"'role'", bad_out)
            self.assertIn(b"Permission denied", bad_err)

        return defer.gatherResults([ssh(good, b"status()\r"), ssh(bad, b"status()\r")]).addCallback(check)
