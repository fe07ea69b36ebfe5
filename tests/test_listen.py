"""Listening services: a port that cannot be opened stops the start; unix sockets get their mode."""

import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

from twisted.internet import defer, endpoints, protocol, reactor
from twisted.internet.error import CannotListenError
from twisted.trial.unittest import TestCase

from csm.config import ConfigError
from csm.net.listen import ListeningService, SocketInUse, UnixListenService
from tests.clusters import held_port


class ListeningServiceTests(TestCase):
    def test_port_in_use_raises_at_start(self):
        port = held_port(self)
        endpoint = endpoints.serverFromString(reactor, "tcp:%d:interface=127.0.0.1" % port)
        service = ListeningService(endpoint, protocol.Factory.forProtocol(protocol.Protocol))
        self.assertRaises(CannotListenError, service.startService)
        self.assertFalse(service.running)
        self.assertIsNone(service.port)

    def test_port_in_use_names_the_key_it_was_given(self):
        port = held_port(self)
        endpoint = endpoints.serverFromString(reactor, "tcp:%d:interface=127.0.0.1" % port)
        service = ListeningService(endpoint, protocol.Factory.forProtocol(protocol.Protocol),
                                   config_key=("/etc/m.cfg", "csm.net.aggregator_listen"))
        error = self.assertRaises(ConfigError, service.startService)
        self.assertEqual(str(error), "/etc/m.cfg: csm.net.aggregator_listen: cannot listen on 127.0.0.1:%d: "
                                     "Address already in use" % port)
        self.assertFalse(service.running)

    def test_unix_socket_refused_names_its_path(self):
        directory = tempfile.mkdtemp(prefix="csm-listen-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "missing", "agg.sock")
        endpoint = endpoints.serverFromString(reactor, "unix:%s:lockfile=0" % path)
        service = ListeningService(endpoint, protocol.Factory.forProtocol(protocol.Protocol),
                                   config_key=("/etc/m.cfg", "csm.net.aggregator_listen"))
        error = self.assertRaises(ConfigError, service.startService)
        self.assertEqual(str(error), "/etc/m.cfg: csm.net.aggregator_listen: cannot listen on %s: "
                                     "No such file or directory" % path)

    @defer.inlineCallbacks
    def test_unix_socket_mode_and_stale_file(self):
        directory = tempfile.mkdtemp(prefix="csm-listen-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "sub", "api.sock")
        os.makedirs(os.path.dirname(path))
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)  # bound, never listening: what a killed daemon leaves
        stale.close()
        service = UnixListenService(reactor, path, protocol.Factory.forProtocol(protocol.Protocol), 0o660)
        service.startService()
        self.assertTrue(stat.S_ISSOCK(os.stat(path).st_mode))
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o660)
        yield service.stopService()
        self.assertFalse(service.running)

    def test_live_unix_socket_is_left_alone(self):
        """A socket a live process listens on is not removed and bound again (the local API's
        and the admin shell's alike): the start fails naming it, and the key when given."""
        directory = tempfile.mkdtemp(prefix="csm-listen-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "csmd.manhole")
        live = socket.socket(socket.AF_UNIX)
        self.addCleanup(live.close)
        live.bind(path)
        live.listen(8)
        factory = protocol.Factory.forProtocol(protocol.Protocol)
        error = self.assertRaises(SocketInUse, UnixListenService(reactor, path, factory, 0o600).startService)
        self.assertEqual(str(error), "%s is in use by a running daemon (pid %d): stop it first, or give this "
                                     "daemon another socket" % (path, os.getpid()))
        service = UnixListenService(reactor, path, factory, 0o600, config_key=("/etc/c.cfg", "csm.manhole.socket"))
        error = self.assertRaises(ConfigError, service.startService)
        self.assertTrue(str(error).startswith("/etc/c.cfg: csm.manhole.socket: %s is in use" % path))
        self.assertFalse(service.running)
        client = socket.socket(socket.AF_UNIX)
        self.addCleanup(client.close)
        client.connect(path)  # still the live listener's

    def test_a_daemon_starting_on_the_same_socket_is_waited_for(self):
        """Another daemon is between its look and its bind (it holds the folder's lock, a stale
        socket file still there): this start waits for it and then finds it live, instead of
        finding the file stale too and unlinking the other's socket."""
        directory = tempfile.mkdtemp(prefix="csm-listen-")
        self.addCleanup(shutil.rmtree, directory)
        path = os.path.join(directory, "csmd.sock")
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(path)
        stale.close()
        other = subprocess.Popen([sys.executable, "-c", OTHER_DAEMON, directory, path], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        self.addCleanup(other.wait)
        self.addCleanup(other.stdin.close)
        self.assertEqual(other.stdout.readline(), "locked\n")
        service = UnixListenService(reactor, path, protocol.Factory.forProtocol(protocol.Protocol), 0o600)
        error = self.assertRaises(SocketInUse, service.startService)
        self.assertIn("pid %d" % other.pid, str(error))


#: a daemon's start as UnixListenService makes it, slowed between its look and its bind
OTHER_DAEMON = """
import fcntl, os, socket, sys, time
folder, path = sys.argv[1:]
lock = os.open(folder, os.O_RDONLY)
fcntl.flock(lock, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(0.5)
os.unlink(path)
listener = socket.socket(socket.AF_UNIX)
listener.bind(path)
listener.listen(8)
os.close(lock)
sys.stdin.read()
"""
