"""What the four twistd plugins share: ``makeService`` (their options: ``csm.tap.options``)."""

import os
import signal
import sys

from twisted.application import service
from twisted.logger import Logger

from csm import logfile, systemd
from csm.config import ConfigError, load_daemon_config, report_unused
from csm.heap import HeapFreezer
from csm.net.local import SocketInUse, check_socket_free
from csm.roles import daemon_class


def make_daemon(options, plugin_role, reactor=None):
    """Load the config and build the daemon; a bad set-up is one clear line and exit 1."""
    try:
        return _make_daemon(options, plugin_role, reactor)
    except ConfigError as exc:
        sys.stderr.write("csm-%s: %s\n" % (plugin_role, exc))
        raise SystemExit(1)


def _make_daemon(options, plugin_role, reactor):
    config = load_daemon_config(options["config"], role_override=options["role"])
    socket = config.net.local_client_listen.socket
    if socket:  # first: the same config would truncate the running daemon's log
        try:
            os.makedirs(os.path.dirname(socket) or ".", exist_ok=True)
            check_socket_free(socket)
        except OSError as exc:
            raise ConfigError(config.path, "csm.net.local_client_listen.socket", "cannot make the directory %s: %s"
                              % (os.path.dirname(socket), exc.strerror or exc)) from None
        except SocketInUse as exc:
            raise ConfigError(config.path, "csm.net.local_client_listen.socket", str(exc)) from None
    logfile.apply_levels(config.log)
    try:
        logfile.install_file_log(config.log)
    except OSError as exc:
        raise ConfigError(config.path, "csm.log.fileLog", "cannot write %s: %s"
                          % (config.log.fileLog, exc.strerror or exc)) from None
    report_unused(config, Logger(namespace="csmd"))
    if config.role == "master" and config.db.enabled:
        problem = check_database(config.db)
        if problem:
            sys.stderr.write("csm-%s: %s\n" % (plugin_role, problem))
            raise SystemExit(1)
    if reactor is None:
        from twisted.internet import reactor
    return process_service(daemon_class(config.role)(config, reactor), reactor)


def process_service(daemon, reactor):
    """What one daemon process runs: the daemon, its readiness told to systemd (under a
    ``Type=notify`` unit), a clean exit on SIGTERM, the heap freezer (one per process, not per
    daemon: csm-sim runs thousands of daemons in one)."""
    top = ProcessService(daemon.role)
    daemon.setServiceParent(top)
    CleanExitOnTerm(reactor).setServiceParent(top)
    HeapFreezer(reactor).setServiceParent(top)
    notifier = systemd.notifier_from_environment()
    if notifier is not None:
        systemd.SystemdNotify(daemon, notifier, reactor).setServiceParent(top)
    return top


class ProcessService(service.MultiService):
    """The top of a daemon process. A bad set-up found only at start (a port in use raises
    ``ConfigError`` from its listener) is one line on the process's stderr and in the log, and
    exit 1: twistd would print the traceback."""

    def __init__(self, role):
        super().__init__()
        self.role = role

    def startService(self):
        try:
            super().startService()
        except ConfigError as exc:
            line = "csm-%s: %s" % (self.role, exc)
            Logger(namespace="csmd").error("{line}", line=line)
            sys.__stderr__.write(line + "\n")  # twistd's log has taken sys.stderr by now
            sys.__stderr__.flush()
            raise SystemExit(1)


def check_database(db):
    """Before the reactor runs: the master needs its database at the schema version it knows."""
    import psycopg2

    from csm.db import schema
    from csm.db.pool import dsn_from_config
    try:
        connection = psycopg2.connect(dsn_from_config(db) + " connect_timeout=10")
    except psycopg2.Error as exc:
        return "cannot connect to the database %s on %s:%s: %s" % (db.name, db.host, db.port,
                                                                 str(exc).strip().splitlines()[0])
    try:
        with connection.cursor() as cur:
            schema.check_version(schema.current_version(cur))
    except schema.SchemaError as exc:
        return "database %s: %s" % (db.name, exc)
    finally:
        connection.close()
    return None


class CleanExitOnTerm(service.Service):
    """SIGTERM stops the daemon in order and exits 0 (twistd would re-raise the signal)."""

    def __init__(self, reactor):
        self.reactor = reactor

    def startService(self):
        super().startService()
        # after the reactor's own handlers are in place (before systemd hears READY=1)
        self.reactor.callWhenRunning(signal.signal, signal.SIGTERM, self._terminate)

    def _terminate(self, signum, frame):
        self.reactor.callFromThread(self.reactor.stop)
