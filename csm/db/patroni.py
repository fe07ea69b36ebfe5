"""PostgreSQL made highly available by Patroni with etcd, on loopback (demo, tests, bench).

``PatroniCluster(nodes=2, etcd_members=3).start()`` runs an etcd cluster and one
Patroni per PostgreSQL node, each in a folder of a temporary directory and as
``postgres`` when run by root (PostgreSQL refuses root). Patroni bootstraps the
primary, the others follow it by synchronous streaming replication. ``hosts()`` is the value
of ``csm.db.host`` that names every node (libpq multi-host). ``kill(node)`` kills a
node's Patroni and PostgreSQL (SIGKILL), as a host that dies: its leader key expires
after ``ttl`` seconds and a replica is promoted. ``stop()`` stops everything and
removes the directory, also at exit.
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from csm import exitcleanup
from csm.db.embedded import find_binary, free_port, query, reachable_by

#: Seconds Patroni's leader key lives without renewal: how long a dead primary goes unnoticed.
TTL = 8
LOOP_WAIT = 1
RETRY_TIMEOUT = 3


class PatroniNotFound(RuntimeError):
    pass


def find_tools():
    """The ``etcd`` and ``patroni`` executables, or ``PatroniNotFound`` naming the missing Debian package."""
    tools = {}
    for name, package in (("etcd", "etcd-server"), ("patroni", "patroni")):
        path = shutil.which(name) or ("/usr/bin/" + name if os.access("/usr/bin/" + name, os.X_OK) else None)
        if path is None:
            raise PatroniNotFound("%s was not found: install Debian's '%s' package" % (name, package))
        tools[name] = path
    return tools


def _get(url, timeout=1.0):
    """The HTTP status of ``url`` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return 0


class PatroniCluster:
    def __init__(self, directory=None, nodes=2, etcd_members=1, fast=False):
        self.tools = find_tools()
        self.as_postgres = os.geteuid() == 0
        self.made = directory is None
        if directory is not None and self.as_postgres and not reachable_by(pwd.getpwnam("postgres"), directory):
            directory, self.made = None, True
        self.directory = directory or tempfile.mkdtemp(prefix="csm-patroni-")
        os.makedirs(self.directory, exist_ok=True)
        os.chmod(self.directory, 0o755)
        self.fast = fast
        self.etcd = [{"name": "etcd%d" % i, "client": free_port(), "peer": free_port()}
                     for i in range(1, etcd_members + 1)]
        self.nodes = {"pg%d" % i: {"port": free_port(), "rest": free_port()} for i in range(1, nodes + 1)}
        self.processes = {}
        exitcleanup.register(self.stop)

    # -- etcd -----------------------------------------------------------------------------

    def _start_etcd(self):
        peers = ",".join("%s=http://127.0.0.1:%d" % (m["name"], m["peer"]) for m in self.etcd)
        for member in self.etcd:
            data = os.path.join(self.directory, member["name"])
            client, peer = "http://127.0.0.1:%d" % member["client"], "http://127.0.0.1:%d" % member["peer"]
            self._spawn(member["name"], [
                self.tools["etcd"], "--name", member["name"], "--data-dir", data,
                "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", peers, "--initial-cluster-state", "new",
                "--initial-cluster-token", "csm-" + os.path.basename(self.directory)], as_postgres=False)
        self._wait(lambda: all(_get("http://127.0.0.1:%d/health" % m["client"]) == 200 for m in self.etcd),
                   60, "etcd to be healthy")

    # -- Patroni --------------------------------------------------------------------------

    def _config(self, name):
        node = self.nodes[name]
        here = os.path.join(self.directory, name)
        # a commit waits until the synchronous replica has written it (not flushed it to its disk):
        # it survives the primary's loss; waiting for the replica's fsync too made every commit slow
        parameters = {"max_connections": 200, "unix_socket_directories": here, "wal_level": "replica",
                      "hot_standby": "on", "max_wal_senders": 10, "max_replication_slots": 10,
                      "wal_keep_size": "64MB", "synchronous_commit": "remote_write"}
        if self.fast:
            parameters.update(fsync="off", full_page_writes="off")
        hba = ["local all all trust", "host all all 127.0.0.1/32 trust",
               "host replication replicator 127.0.0.1/32 trust"]
        return {
            "scope": "csm-" + os.path.basename(self.directory),
            "name": name,
            "log": {"level": "WARNING", "dir": here},
            "restapi": {"listen": "127.0.0.1:%d" % node["rest"], "connect_address": "127.0.0.1:%d" % node["rest"]},
            "etcd3": {"hosts": ["127.0.0.1:%d" % m["client"] for m in self.etcd]},
            "bootstrap": {
                # synchronous: a commit is on a replica before it is acknowledged, so a promoted
                # replica has every acknowledged write (Patroni promotes only the synchronous one)
                "dcs": {"ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                        "maximum_lag_on_failover": 1048576, "synchronous_mode": True,
                        "postgresql": {"use_pg_rewind": False, "use_slots": True, "parameters": parameters}},
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}] + ([] if not self.fast else ["no-sync"]),
                "pg_hba": hba,
            },
            "postgresql": {
                "listen": "127.0.0.1:%d" % node["port"], "connect_address": "127.0.0.1:%d" % node["port"],
                "data_dir": os.path.join(here, "data"),
                "bin_dir": os.path.dirname(find_binary("pg_controldata")),  # beside postgres, pg_ctl
                "pgpass": os.path.join(here, "pgpass"),
                "authentication": {"superuser": {"username": "postgres", "password": "postgres"},
                                   "replication": {"username": "replicator", "password": "replicator"}},
                "parameters": {"unix_socket_directories": here},
                "pg_hba": hba,
            },
            "tags": {"nofailover": False, "noloadbalance": False, "clonefrom": False, "nosync": False},
        }

    def start_node(self, name):
        here = os.path.join(self.directory, name)
        os.makedirs(here, exist_ok=True)
        path = os.path.join(here, "patroni.yml")
        with open(path, "w") as f:
            json.dump(self._config(name), f, indent=2)  # JSON is YAML
        if self.as_postgres:
            owner = pwd.getpwnam("postgres")
            for folder, _dirs, files in os.walk(here):
                os.chown(folder, owner.pw_uid, owner.pw_gid)
                for file_name in files:
                    os.chown(os.path.join(folder, file_name), owner.pw_uid, owner.pw_gid)
        self._spawn(name, [self.tools["patroni"], path])

    def _spawn(self, name, argv, as_postgres=True):
        if as_postgres and self.as_postgres:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        with open(os.path.join(self.directory, name + ".out"), "ab") as out:
            self.processes[name] = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                                    cwd="/", start_new_session=True)

    def start(self, timeout=120):
        """etcd, then every node; returns once there is a primary and every replica streams."""
        exitcleanup.register(self.stop)  # again after a stop()
        self._start_etcd()
        for name in self.nodes:
            self.start_node(name)
            if name == "pg1":
                self._wait(lambda: self.primary() == "pg1", timeout, "pg1 to bootstrap the primary")
        self._wait(lambda: all(self.role(n) in ("primary", "replica") for n in self.nodes), timeout,
                   "every node to run")
        return self

    # -- what the tests ask ---------------------------------------------------------------

    def hosts(self):
        """``csm.db.host`` naming every node."""
        return ",".join("127.0.0.1:%d" % node["port"] for node in self.nodes.values())

    def role(self, name):
        """``primary``, ``replica`` (streaming) or ``down``, from the node's REST API."""
        rest = "http://127.0.0.1:%d" % self.nodes[name]["rest"]
        if _get(rest + "/primary") == 200:
            return "primary"
        if _get(rest + "/replica") == 200:
            return "replica"
        return "down"

    def primary(self):
        for name in self.nodes:
            if self.role(name) == "primary":
                return name
        return None

    def port(self, name):
        return self.nodes[name]["port"]

    def dsn(self, name, dbname="postgres"):
        return "host=127.0.0.1 port=%d dbname=%s user=postgres" % (self.port(name), dbname)

    def query(self, statement, args=(), dbname="postgres"):
        """Rows of one ``statement`` on the primary (autocommitted; None if it returns none)."""
        hosts = ",".join("127.0.0.1" for _ in self.nodes)
        ports = ",".join(str(node["port"]) for node in self.nodes.values())
        return query("host=%s port=%s dbname=%s user=postgres target_session_attrs=read-write connect_timeout=5"
                     % (hosts, ports, dbname), statement, args)

    def kill(self, name):
        """SIGKILL the node's Patroni and its PostgreSQL (every process of the postmaster's group)."""
        process = self.processes.pop(name, None)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._kill_postmaster(name)

    def _kill_postmaster(self, name):
        pid_file = os.path.join(self.directory, name, "data", "postmaster.pid")
        try:
            with open(pid_file) as f:
                pid = int(f.readline())
        except (OSError, ValueError):
            return
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.05)

    def stop(self):
        """Stop every node and etcd member; remove the directory if it was made here."""
        for name in list(self.nodes):
            process = self.processes.pop(name, None)
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            self._kill_postmaster(name)
        for member in self.etcd:
            process = self.processes.pop(member["name"], None)
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self.made and os.path.isdir(self.directory):
            shutil.rmtree(self.directory, ignore_errors=True)
        exitcleanup.unregister(self.stop)

    def _wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError("%s exited (%s) while waiting for %s; see %s" % (
                        name, process.returncode, what, os.path.join(self.directory, name + ".out")))
            time.sleep(0.1)
        raise RuntimeError("timed out waiting for %s (see %s)" % (what, self.directory))
