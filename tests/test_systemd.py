"""Readiness told to systemd: READY=1 once the daemon listens, STOPPING=1 at stop, on a
notification socket the test binds itself (a unix datagram socket, as systemd's); the units in
conf/systemd checked by ``systemd-analyze verify`` and run as systemd would."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

from twisted.application import service
from twisted.internet import defer
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from csm.cluster import PROJECT, free_port
from csm.systemd import SystemdNotify, notifier_from_environment

ROLES = ("master", "aggregator", "utility", "compute")
UNITS = os.path.join(PROJECT, "conf", "systemd")
INSTALLED_TWISTD = "/opt/ibm/csm/bin/twistd"


class NotifySocket:
    """A bound unix datagram socket standing in for systemd's ``$NOTIFY_SOCKET``."""

    def __init__(self, case):
        directory = tempfile.mkdtemp(prefix="csm-notify-")
        case.addCleanup(shutil.rmtree, directory, True)
        self.path = os.path.join(directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        case.addCleanup(self.sock.close)
        self.sock.bind(self.path)

    def receive(self, timeout):
        """The next datagram as text, or None after ``timeout`` seconds."""
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except socket.timeout:
            return None


def master_config(directory):
    """A master's config in ``directory`` (no database): (its path, local socket, ports)."""
    socket_path = os.path.join(directory, "master.sock")
    ports = (free_port(), free_port())
    path = os.path.join(directory, "master.cfg")
    with open(path, "w") as f:
        json.dump({"csm": {"role": "Master", "node_name": "master", "db": {"host": "NONE"},
                           "log": {"fileLog": os.path.join(directory, "master.log")},
                           "net": {"local_client_listen": {"socket": socket_path},
                                   "aggregator_listen": {"host": "127.0.0.1", "port": ports[0]},
                                   "utility_listen": {"host": "127.0.0.1", "port": ports[1]}}}}, f)
    return path, socket_path, ports


class StandInDaemon(service.Service):
    role = "compute"
    node_name = "c01"

    def __init__(self):
        self.listens = defer.Deferred()

    def listening(self):
        return self.listens


class SystemdNotifyTests(SynchronousTestCase):
    def environ(self, **values):
        self.patch(os, "environ", dict({k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}, **values))

    def test_no_socket_no_notifier(self):
        self.environ()
        self.assertIsNone(notifier_from_environment())

    def test_ready_only_once_listening_and_stopping_at_stop(self):
        notify = NotifySocket(self)
        self.environ(NOTIFY_SOCKET=notify.path)
        notifier = notifier_from_environment()
        self.assertNotIn("NOTIFY_SOCKET", os.environ)  # not handed on to prologs and actions
        daemon = StandInDaemon()
        top = service.MultiService()
        daemon.setServiceParent(top)
        reactor = MemoryReactor()
        SystemdNotify(daemon, notifier, reactor).setServiceParent(top)
        top.startService()
        self.assertIsNone(notify.receive(0.2))  # the reactor does not run yet
        reactor.run()
        self.assertIsNone(notify.receive(0.2))  # it runs, but the daemon does not listen yet
        daemon.listens.callback(None)
        ready = notify.receive(5)
        self.assertIn("READY=1", ready.split("\n"))
        self.assertIn("MAINPID=%d" % os.getpid(), ready.split("\n"))
        top.stopService()
        self.assertEqual(notify.receive(5), "STOPPING=1")

    def test_stopped_before_listening_is_never_ready(self):
        notify = NotifySocket(self)
        self.environ(NOTIFY_SOCKET=notify.path)
        reactor = MemoryReactor()
        notifying = SystemdNotify(StandInDaemon(), notifier_from_environment(), reactor)
        notifying.startService()
        reactor.run()
        self.assertIsNone(notify.receive(0.2))
        notifying.stopService()
        self.assertEqual(notify.receive(5), "STOPPING=1")
        self.assertIsNone(notify.receive(0.2))


class MasterProcessTests(SynchronousTestCase):
    """A real ``twistd csm-master`` (no database) under a stand-in of systemd's socket."""

    def setUp(self):
        self.notify = NotifySocket(self)
        self.dir = tempfile.mkdtemp(prefix="csm-sd-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.config, self.socket, self.ports = master_config(self.dir)

    def start(self):
        env = dict(os.environ, PYTHONPATH=PROJECT, NOTIFY_SOCKET=self.notify.path)
        process = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()", "--nodaemon", "--pidfile=",
             "--logfile", os.path.join(self.dir, "twistd.log"), "csm-master", "--config", self.config],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def stop():
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stderr.close()
        self.addCleanup(stop)
        return process

    def test_ready_once_listening_stopping_at_sigterm(self):
        process = self.start()
        ready = self.notify.receive(60)
        self.assertIsNotNone(ready, "no READY=1 within 60 s")
        self.assertIn("READY=1", ready.split("\n"))
        self.assertIn("MAINPID=%d" % process.pid, ready.split("\n"))
        # at READY=1 every listener accepts: the local API and both ports
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as local:
            local.connect(self.socket)
        for port in self.ports:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        process.send_signal(signal.SIGTERM)
        self.assertEqual(self.notify.receive(30), "STOPPING=1")
        self.assertEqual(process.wait(30), 0)

    def test_no_ready_when_a_port_cannot_be_had(self):
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", self.ports[1]))
        taken.listen(1)
        process = self.start()
        self.assertNotEqual(process.wait(60), 0)
        self.assertIsNone(self.notify.receive(0.5))
        with open(os.path.join(self.dir, "twistd.log")) as log:
            self.assertIn("127.0.0.1:%d" % self.ports[1], log.read())


class SystemdUnitTests(SynchronousTestCase):
    """The units in conf/systemd, their twistd the one of this virtualenv (a plain install's
    is checked by tests/test_install.py)."""

    def units(self):
        if shutil.which("systemd-analyze") is None:
            raise SkipTest("systemd-analyze is not installed (package systemd)")
        twistd = os.path.join(sys.prefix, "bin", "twistd")
        directory = tempfile.mkdtemp(prefix="csm-units-")
        self.addCleanup(shutil.rmtree, directory, True)
        units = {}
        for role in ROLES:
            name = "csmd-%s.service" % role
            with open(os.path.join(UNITS, name)) as f:
                text = f.read()
            self.assertIn(INSTALLED_TWISTD, text)
            units[role] = os.path.join(directory, name)
            with open(units[role], "w") as f:
                f.write(text.replace(INSTALLED_TWISTD, twistd))
        return units

    def test_systemd_analyze_verify(self):
        units = self.units()
        result = subprocess.run(["systemd-analyze", "verify"] + sorted(units.values()), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual((result.returncode, result.stdout), (0, ""))  # a warning is a failure too

    def test_as_cast_runs_them(self):
        """Type=notify, as root, CAST's config path, CAST's restart policy (none for computes)."""
        units = self.units()
        for role, path in units.items():
            with open(path) as f:
                lines = [line.strip() for line in f if "=" in line and not line.startswith("#")]
            settings = dict(line.split("=", 1) for line in lines)
            self.assertEqual(settings["Type"], "notify")
            self.assertNotIn("User", settings)
            self.assertEqual(settings.get("Restart"), None if role == "compute" else "on-failure")
            argv = settings["ExecStart"].split()
            self.assertEqual(argv[-2:], ["--config", "/etc/ibm/csm/csm_%s.cfg" % role])
            self.assertIn("--nodaemon", argv)  # systemd watches the process it started
            # the command line parses: the role's plugin, its options
            help_text = subprocess.run(argv + ["--help"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       env=dict(os.environ, PYTHONPATH=PROJECT), text=True, timeout=60).stdout
            self.assertIn("--config=", help_text)

    def test_no_unit_requires_a_local_database(self):
        """The database may be remote or under Patroni: ordering after a local one, never requiring it."""
        for role in ROLES:
            with open(os.path.join(UNITS, "csmd-%s.service" % role)) as f:
                settings = [line.strip().split("=", 1) for line in f if "=" in line and not line.startswith("#")]
            for key, value in settings:
                if key in ("Requires", "Requisite", "BindsTo", "PartOf"):
                    self.assertNotIn("postgresql", value, role)
            if role == "master":
                self.assertIn(["Wants", "network-online.target"], settings)
                after = " ".join(value for key, value in settings if key == "After").split()
                self.assertIn("network-online.target", after)
                self.assertIn("postgresql.service", after)

    def test_the_master_unit_command_tells_systemd_it_is_ready(self):
        """ExecStart of csmd-master.service as systemd runs it (a notify socket, no terminal), on
        a config of its own (no database): READY=1, then STOPPING=1 and exit 0 on SIGTERM."""
        units = self.units()
        with open(units["master"]) as f:
            argv = next(line for line in f if line.startswith("ExecStart=")).strip().split("=", 1)[1].split()
        directory = tempfile.mkdtemp(prefix="csm-unit-")
        self.addCleanup(shutil.rmtree, directory, True)
        config = master_config(directory)[0]
        notify = NotifySocket(self)
        process = subprocess.Popen(argv[:-1] + [config], cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL,
                                   env=dict(os.environ, PYTHONPATH=PROJECT, NOTIFY_SOCKET=notify.path))
        self.addCleanup(lambda: process.poll() is None and (process.kill(), process.wait()))
        ready = notify.receive(60)
        self.assertIn("READY=1", (ready or "no READY=1 within 60 s").split("\n"))
        process.send_signal(signal.SIGTERM)
        self.assertEqual(notify.receive(30), "STOPPING=1")
        self.assertEqual(process.wait(30), 0)
