"""The admin shell: a real unix socket and a real SSH login."""

import os
import socket
import subprocess
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from twisted.internet import reactor, threads
from twisted.trial.unittest import TestCase

from csm.cluster import free_port
from csm.config import ManholeConfig
from csm.manhole import makeManholeService

NAMESPACE = {"status": lambda: {"role": "compute", "links": ["aggregatorA"]}}


def talk(path, command, until, timeout=10):
    """Connect, type ``command``, read until ``until`` shows up."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.settimeout(timeout)
    sock.sendall(command)
    seen = b""
    deadline = time.monotonic() + timeout
    while until not in seen and time.monotonic() < deadline:
        data = sock.recv(4096)
        if not data:
            break
        seen += data
    sock.close()
    return seen


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
        d = threads.deferToThread(talk, self.path, b"status()\r", b"aggregatorA")
        d.addCallback(lambda out: self.assertIn(b"'role': 'compute'", out))
        return d

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

        def ssh(key, command, until=b"'role': 'compute'", timeout=20):
            """Log in, type ``command``, and collect the output until ``until`` or the end."""
            proc = subprocess.Popen(["ssh", "-tt", "-i", key, "-p", str(port), "-o", "StrictHostKeyChecking=no",
                                     "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                                     "-o", "IdentitiesOnly=yes", "root@127.0.0.1"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            proc.stdin.write(command)
            proc.stdin.flush()
            seen = b""
            deadline = time.monotonic() + timeout
            os.set_blocking(proc.stdout.fileno(), False)
            while until not in seen and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
                seen += proc.stdout.read() or b""
            proc.kill()
            proc.wait()
            return seen, proc.stderr.read()

        def check(results):
            (good_out, _), (bad_out, bad_err) = results
            self.assertIn(b"'role': 'compute'", good_out)
            self.assertNotIn(b"'role'", bad_out)
            self.assertIn(b"Permission denied", bad_err)

        def both():
            return (ssh(good, b"status()\r"), ssh(bad, b"status()\r"))
        return threads.deferToThread(both).addCallback(check)
