"""A private PostgreSQL cluster in a directory, for the demo and the tests.

``EmbeddedPostgres().start()`` runs ``initdb`` and ``pg_ctl`` (as the ``postgres``
user when we are root, since initdb refuses root), listens on a free loopback
port with a unix socket inside the directory, and returns a DSN. ``stop()``
stops the server and removes the directory it made. Synchronous: it is used
by command-line tools and tests, never inside the reactor.

The server is durable (``fsync`` and ``synchronous_commit`` on): an acknowledged
write survives a crash. ``fast=True`` trades that for speed, for the test suite only.
"""

import fcntl
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile

from csm import exitcleanup

#: Only for throw-away servers (the test suite): a crash may lose acknowledged writes.
FAST_OPTIONS = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
HBA = ("# written by csm.db.embedded\n"
       "local all all trust\n"
       "host  all all 127.0.0.1/32 trust\n")


class PostgresNotFound(RuntimeError):
    pass


def find_binary(name):
    """``name`` on PATH or under /usr/lib/postgresql/*/bin (newest first)."""
    path = shutil.which(name)
    if path:
        return path
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin/" + name), reverse=True):
        if os.access(candidate, os.X_OK):
            return candidate
    raise PostgresNotFound("PostgreSQL's %s was not found: install the 'postgresql' package" % name)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: lock files of the ports the servers of this machine hold (``reserve_port``)
PORT_LOCKS = os.path.join(tempfile.gettempdir(), "csm-pg-ports")


def _below_ephemeral(low=20000, high=30000):
    """``(low, high)`` ending below the ports the kernel hands out for ``bind(0)`` and
    outgoing connections."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            first = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return (low, min(high, first)) if first > low + 100 else (low, high)


def reserve_port(low=None, high=None):
    """A free loopback port in ``[low, high)`` (by default below the ephemeral range, so that
    no ``bind(0)`` takes it while its server is stopped for a restart) that no other process
    holds, and the open lock file that holds it until it is closed (or its process ends).
    ``free_port`` alone lets a parallel test take the port between a server's stop and start."""
    if low is None:
        low, high = _below_ephemeral()
    os.makedirs(PORT_LOCKS, exist_ok=True)
    try:
        os.chmod(PORT_LOCKS, 0o1777)
    except OSError:
        pass  # another user's folder: its files open read-only still
    ports = list(range(low, high))
    start = random.randrange(len(ports))
    for port in ports[start:] + ports[:start]:
        lease = os.open(os.path.join(PORT_LOCKS, str(port)), os.O_RDONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lease, fcntl.LOCK_EX | fcntl.LOCK_NB)
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
        except OSError:
            os.close(lease)
            continue
        return port, lease
    raise RuntimeError("no free loopback port in %d-%d" % (low, high - 1))


def reachable_by(user, path):
    """Whether ``user`` (a pwd entry) may enter every folder above ``path`` (and ``path``, if it exists)."""
    path = os.path.abspath(path)
    while True:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if st.st_uid == user.pw_uid:
                bit = 0o100
            elif st.st_gid == user.pw_gid:
                bit = 0o010
            else:
                bit = 0o001
            if not st.st_mode & bit:
                return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def query(dsn, statement, args=()):
    """Rows of one ``statement`` through ``dsn`` (autocommitted; None if it returns no rows)."""
    import psycopg2

    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        with connection.cursor() as cur:
            cur.execute(statement, args)
            return cur.fetchall() if cur.description else None
    finally:
        connection.close()


class EmbeddedPostgres:
    """One private server: ``start()`` -> DSN, ``stop_server()``/``start_server()``, ``stop()``.

    Run by root, the server runs as ``postgres``, which must reach its directory: where
    it cannot (a checkout under /root, or any folder only root may enter), the server's
    directory is a temporary one instead, and ``moved_from`` names the one asked for.
    """

    def __init__(self, directory=None, fast=False, port=None):
        self._as_postgres = os.geteuid() == 0
        self.moved_from = None
        if directory is not None and self._as_postgres and not reachable_by(pwd.getpwnam("postgres"), directory):
            self.moved_from, directory = directory, None
        self._made_directory = directory is None
        self.directory = directory or tempfile.mkdtemp(prefix="csm-pg-")
        self.data = os.path.join(self.directory, "data")
        self.logfile = os.path.join(self.directory, "postgres.log")
        self._port_lease = None
        if port is None:
            port, self._port_lease = reserve_port()
        self.port = port
        self.fast = fast
        self.running = False

    @property
    def dsn(self):
        return "host=127.0.0.1 port=%d dbname=postgres user=postgres" % self.port

    def dsn_for(self, dbname, user="postgres"):
        return "host=127.0.0.1 port=%d dbname=%s user=%s" % (self.port, dbname, user)

    def query(self, statement, args=(), dbname="postgres"):
        """Rows of one ``statement`` on ``dbname`` (autocommitted, so DDL such as CREATE
        DATABASE works too; None if it returns no rows)."""
        return query(self.dsn_for(dbname), statement, args)

    def _run(self, *cmd):
        if self._as_postgres:
            cmd = ("runuser", "-u", "postgres", "--") + cmd
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL, cwd="/")  # the caller's folder may be root's only
        if result.returncode != 0:
            raise RuntimeError("%s failed: %s" % (os.path.basename(cmd[4 if self._as_postgres else 0]),
                                                 result.stdout.strip()[-2000:]))
        return result.stdout

    def start(self):
        """Create the cluster if needed and start the server; returns the DSN."""
        exitcleanup.register(self.stop)
        try:
            if not os.path.exists(os.path.join(self.data, "PG_VERSION")):
                self._initdb()
            self.start_server()
        except Exception:
            self.stop()
            raise
        return self.dsn

    def _initdb(self):
        initdb = find_binary("initdb")
        os.makedirs(self.data, exist_ok=True)
        if self._as_postgres:
            os.chmod(self.directory, 0o755)
            owner = pwd.getpwnam("postgres")
            for path in (self.directory, self.data):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        os.chmod(self.data, 0o700)
        self._run(initdb, "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", *(("--no-sync",) if self.fast else ()))
        # trust, but only on the private unix socket and on IPv4 loopback
        with open(os.path.join(self.data, "pg_hba.conf"), "w") as f:
            f.write(HBA)

    def start_server(self):
        if self.running:
            return
        options = "-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=200" % (
            self.port, self.directory)
        if self.fast:
            options += " " + FAST_OPTIONS
        try:
            self._run(find_binary("pg_ctl"), "-D", self.data, "-l", self.logfile, "-w", "-t", "60",
                      "-o", options, "start")
        except RuntimeError as exc:
            raise RuntimeError("%s\n%s" % (exc, self.log_tail())) from None
        self.running = True

    def log_tail(self, lines=20):
        """The end of the server's log (why it would not start)."""
        try:
            with open(self.logfile, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def stop_server(self, mode="fast"):
        if not self.running:
            return
        self._run(find_binary("pg_ctl"), "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")
        self.running = False

    def restart(self):
        self.stop_server()
        self.start_server()

    def stop(self):
        """Stop the server and remove the directory if this object made it."""
        try:
            self.stop_server()
        except RuntimeError:
            pass
        if self._made_directory and os.path.isdir(self.directory):
            shutil.rmtree(self.directory, ignore_errors=True)
        if self._port_lease is not None:
            os.close(self._port_lease)
            self._port_lease = None
        exitcleanup.unregister(self.stop)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
