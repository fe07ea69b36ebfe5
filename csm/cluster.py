"""A local CSM tree of real ``twistd`` processes on loopback (the demo and system tests).

``LocalCluster`` writes a config file per daemon (CAST's format) into a run
directory, makes TLS certificates when asked, starts master, aggregators,
utilities and computes as separate ``twistd -n csm-<role>`` processes, and stops
them with SIGTERM. Given ``hosts`` (a started ``csm.hosts.Network``), each daemon
runs in a host of its own: its name is its address in every config, and its
certificate names it and its address.
"""

import collections
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from csm import exitcleanup
from csm.db.embedded import EmbeddedPostgres, reserve_port
from csm.errors import CSMError

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)
#: The interpreter another user can run (the virtualenv's may sit under a private /root).
OTHER_USER_PYTHON = "/usr/bin/python3"
#: Prints where each package a csm_* command imports comes from (the csm package and what it
#: needs beyond the standard library), one path a line.
_COMMAND_IMPORTS = """
import importlib, os, pkgutil, sys
before = set(sys.modules)
import csm.cli, csm.client
for module in pkgutil.iter_modules(csm.cli.__path__):
    importlib.import_module("csm.cli." + module.name)
stdlib = os.path.dirname(os.__file__) + os.sep
for name in sorted({name.split(".")[0] for name in set(sys.modules) - before}):
    path = getattr(sys.modules[name], "__file__", None)
    if path and (not path.startswith(stdlib) or "-packages" + os.sep in path):
        print(os.path.dirname(path) if os.path.basename(path) == "__init__.py" else path)
"""
_other_user_path = []
#: the most nodes one csm-sim runs: it asks for 4 open files a node and 1,024 more (``csm.sim``),
#: within the hard limit
_FILES = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
SIM_NODES_PER_PROCESS = 1 << 30 if _FILES == resource.RLIM_INFINITY else max(1, (_FILES - 1024) // 4)


def other_user_pythonpath():
    """A world-readable copy of what a csm_* command imports, for running one as another user:
    the clone and its virtualenv may sit in a directory only root can read (a clone under
    ``mktemp -d``). Made once per process, removed at exit; the clone's modes are untouched."""
    if not _other_user_path:
        sources = subprocess.run([sys.executable, "-c", _COMMAND_IMPORTS], stdout=subprocess.PIPE, text=True,
                                 check=True, env=dict(os.environ, PYTHONPATH=PROJECT)).stdout.split()
        target = tempfile.mkdtemp(prefix="csm-other-user-")
        exitcleanup.register(shutil.rmtree, target, True)
        for source in sources:
            destination = os.path.join(target, os.path.basename(source))
            if os.path.isdir(source):
                shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"),
                                copy_function=shutil.copyfile)
            else:
                shutil.copyfile(source, destination)
        for directory, _dirs, files in os.walk(target):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        _other_user_path.append(target)
    return _other_user_path[0]


#: ports this process handed out lately (``free_port``): not given twice before their daemons listen
_given = collections.deque(maxlen=256)


def free_port():
    """A loopback port free now, below the kernel's ephemeral range: a port ``bind(0)`` gives
    may be taken by an outgoing connection before its daemon listens (a benchmark beside makes
    thousands a second: a master exited at start in test_system_patroni while a 4,608-node
    scale run connected). Not one this process gave lately, nor one a PostgreSQL here holds."""
    while True:
        port, lease = reserve_port()
        os.close(lease)
        if port not in _given:
            _given.append(port)
            return port


def terminate(process, timeout):
    """SIGTERM ``process`` (a Popen), SIGKILL after ``timeout`` seconds; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()


class Daemon:
    """One daemon process of the cluster."""

    def __init__(self, cluster, name, role, config):
        self.cluster = cluster
        self.name = name
        self.role = role
        self.config = config
        self.process = None
        self.front = None  # a proxy before its compute port (csm.netproxy.front)
        self.path = os.path.join(cluster.run_dir, name + ".cfg")
        self.socket = config["csm"]["net"]["local_client_listen"]["socket"]
        self.log = os.path.join(cluster.run_dir, name + ".log")
        self.out = os.path.join(cluster.run_dir, name + ".out")

    def write_config(self):
        with open(self.path, "w") as f:
            json.dump(self.config, f, indent=2)

    def start(self):
        self.write_config()
        cmd = self.cluster.on_host(self.name, [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                                               "--nodaemon", "--pidfile=", "--logfile", self.out,
                                               "csm-" + self.role, "--config", self.path])
        with open(self.out + ".stderr", "ab") as err:
            self.process = subprocess.Popen(cmd, cwd=self.cluster.run_dir, stdin=subprocess.DEVNULL,
                                            stdout=err, stderr=err, env=self.cluster.env())
        return self

    @property
    def running(self):
        return self.process is not None and self.process.poll() is None

    def signal(self, signum):
        if self.running:
            self.process.send_signal(signum)

    def stop(self, timeout=5.0):
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status."""
        return None if self.process is None else terminate(self.process, timeout)

    def kill(self):
        if self.running:
            self.process.kill()
            self.process.wait()

    def wait_socket(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:  # its output's end too: a test's clean-up removes the file
                raise RuntimeError("%s exited with %s; see %s, which ends:\n%s%s"
                                   % (self.name, self.process.returncode, self.out, _tail(self.out),
                                      _tail(self.out + ".stderr")))
            if os.path.exists(self.socket):
                return
            time.sleep(0.05)
        raise RuntimeError("%s did not open %s within %gs" % (self.name, self.socket, timeout))


def _tail(path, lines=20):
    """The last ``lines`` lines of the file at ``path`` (empty if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class SimGroup:
    """Several csm-sim processes that start and stop together (as one Popen)."""

    def __init__(self, processes):
        self.processes = processes
        self.pid = processes[0].pid

    def poll(self):
        """None while any runs, else the first non-zero exit status (or 0)."""
        codes = [process.poll() for process in self.processes]
        return None if None in codes else next((code for code in codes if code), 0)

    def send_signal(self, signum):
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signum)

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        for process in self.processes:
            process.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return self.poll()


class LocalCluster:
    """Master, aggregators, utilities and computes on loopback in ``run_dir``."""

    def __init__(self, run_dir, computes=2, aggregators=2, utilities=1, tls=True,
                 heartbeat_interval=15, extra=None, db=True, simulated=0, fast_db=False, metrics=False,
                 hosts=None, masters=1, patroni=None):
        """``fast_db`` runs PostgreSQL without fsync (the test suite only: not durable); ``metrics``
        gives every daemon a ``/metrics`` endpoint on a free loopback port (csm.net.metrics_listen);
        ``masters`` over 1 starts that many masters, elected through the database (csm.ha);
        ``patroni``, a started ``csm.db.patroni.PatroniCluster``, is the database (every node in csm.db.host)."""
        self.masters = masters
        self.patroni = patroni
        self._database_made = False
        self.metrics = metrics
        self.hosts = hosts
        self.simulated = simulated
        self.sim = None
        self.run_dir = os.path.abspath(run_dir)
        os.makedirs(self.run_dir, exist_ok=True)
        os.chmod(self.run_dir, 0o755)  # the postgres user and other users' commands reach into it
        self.postgres = None
        self.db = {"host": "NONE"}
        if patroni is not None:
            self.db = {"host": patroni.hosts(), "port": 5432, "name": "csmdb", "user": "csmdb", "password": "",
                       "connection_pool_size": 10}
        elif db:
            self.postgres = EmbeddedPostgres(os.path.join(self.run_dir, "postgres"), fast=fast_db)
            self.db = {"host": "127.0.0.1", "port": self.postgres.port, "name": "csmdb", "user": "csmdb",
                       "password": "", "connection_pool_size": 10}
            if hosts is not None:  # the database is on the master's host: its unix socket
                self.db["host"] = self.postgres.directory
        self.tls = tls
        self.heartbeat_interval = heartbeat_interval
        self.extra = extra or {}
        self.ssl = {"ca_file": "", "cred_pem": ""}
        self.ca = None
        if tls and hosts is not None:  # one certificate per host, issued in add()
            from csm.net.certs import CertificateAuthority
            os.makedirs(os.path.join(self.run_dir, "tls"), exist_ok=True)
            self.ca = CertificateAuthority()
            self.ssl = {"ca_file": self.ca.write_ca(os.path.join(self.run_dir, "tls", "ca.pem")), "cred_pem": ""}
        elif tls:
            from csm.net.certs import make_pki
            ca, cred = make_pki(os.path.join(self.run_dir, "tls"))
            self.ssl = {"ca_file": ca, "cred_pem": cred}
        self._write_api_files()
        self.daemons = {}
        for index in range(masters):
            self.ports = {"aggregator_listen": free_port(), "utility_listen": free_port()}
            self.add("master" if index == 0 else "master%d" % (index + 1), "master")
        for i in range(1, aggregators + 1):
            self.add("agg%02d" % i, "aggregator", compute_port=free_port())
        for i in range(1, utilities + 1):
            self.add("util%02d" % i, "utility")
        aggs = [d for d in self.daemons.values() if d.role == "aggregator"]
        for i in range(1, computes + 1):
            pair = [aggs[(i - 1) % len(aggs)], aggs[i % len(aggs)]] if len(aggs) > 1 else aggs
            self.add("c%02d" % i, "compute", aggregators=pair)

    def address(self, name):
        """Where daemon ``name`` is reached: its host name, or loopback without hosts."""
        return "127.0.0.1" if self.hosts is None else name

    def on_host(self, name, argv):
        """``argv`` as run on the host of daemon ``name`` (as is without hosts)."""
        return argv if self.hosts is None else self.hosts.hosts[name].command(argv)

    def _host_credential(self, name):
        """Add the host ``name`` and issue its certificate (name and address); the PEM's path."""
        host = self.hosts.add(name)
        if self.ca is None:
            return ""
        return self.ca.issue(os.path.join(self.run_dir, "tls", name + ".pem"), names=(name, host.address))

    def env(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = PROJECT + os.pathsep + env.get("PYTHONPATH", "")
        return env

    def _write_api_files(self):
        conf = os.path.join(PROJECT, "conf")
        for name in ("csm_api.acl", "csm_api.cfg"):
            with open(os.path.join(conf, name)) as src, open(os.path.join(self.run_dir, name), "w") as dst:
                dst.write(src.read())

    def _base(self, role, name):
        return {"csm": {
            "role": role.capitalize(),
            "node_name": name,
            "thread_pool_size": 1,
            "api_permission_file": os.path.join(self.run_dir, "csm_api.acl"),
            "api_configuration_file": os.path.join(self.run_dir, "csm_api.cfg"),
            "log": {"format": "%TimeStamp% %SubComponent%::%Severity% | %Message%",
                    "consoleLog": False, "fileLog": os.path.join(self.run_dir, name + ".log"),
                    "rotationSize": 10000000, "default_sev": "info"},
            "net": {"heartbeat_interval": self.heartbeat_interval,
                    "local_client_listen": {"socket": os.path.join(self.run_dir, name + ".sock"),
                                            "permissions": 777, "group": ""},
                    "ssl": dict(self.ssl)},
            "manhole": {"socket": os.path.join(self.run_dir, name + ".manhole")},
        }}

    def add(self, name, role, compute_port=None, aggregators=()):
        config = self._base(role, name)
        net = config["csm"]["net"]
        here = self.address(name)
        if self.hosts is not None:
            net["ssl"]["cred_pem"] = self._host_credential(name)
        if self.metrics:
            net["metrics_listen"] = {"host": here, "port": free_port()}
        if role == "master":
            config["csm"]["db"] = dict(self.db)
            config["csm"]["ras"] = {"event_log": os.path.join(self.run_dir, "ras_events.json"), "action": {
                "scriptdir": os.path.join(self.run_dir, "ras_actions"),
                "logdir": os.path.join(self.run_dir, "ras_logs"), "timeout": 10, "maxactions": 100}}
            net["aggregator_listen"] = {"host": here, "port": self.ports["aggregator_listen"]}
            net["utility_listen"] = {"host": here, "port": self.ports["utility_listen"]}
            if self.masters > 1:
                config["csm"]["ha"] = {"enabled": True}
        elif role == "aggregator":
            self._master_links(net, "aggregator_listen")
            net["compute_listen"] = {"host": here, "port": compute_port}
            config["csm"]["bds"] = {"host": "NONE", "port": 10522}
        elif role == "utility":
            self._master_links(net, "utility_listen")
        else:
            for key, agg in zip(("aggregatorA", "aggregatorB"), aggregators):
                net[key] = dict(agg.config["csm"]["net"]["compute_listen"])
            if len(aggregators) < 2:
                net["aggregatorB"] = {"host": "NONE", "port": 0}
            # the shipped sample prolog/epilog; no cgroups (one machine, many computes)
            config["csm"].update(prolog=os.path.join(PROJECT, "conf", "prologs", "privileged_prolog"),
                                 epilog=os.path.join(PROJECT, "conf", "prologs", "privileged_epilog"),
                                 cgroup_root="none")
        for path, value in self.extra.get(role, {}).items():
            _set(config["csm"], path, value)
        daemon = self.daemons[name] = Daemon(self, name, role, config)
        return daemon

    def _master_links(self, net, listen):
        """``csm.net.master`` (the first master) and, with several, ``csm.net.masters``."""
        masters = [dict(d.config["csm"]["net"][listen]) for d in self.by_role("master")]
        net["master"] = masters[0]
        if len(masters) > 1:
            net["masters"] = masters[1:]

    def active_master(self):
        """The name of the master that serves now (by its status), or None; a master that
        does not answer within 2 s (stopped) is passed over."""
        from csm.client import Client
        for daemon in self.by_role("master"):
            try:
                with Client(daemon.socket, timeout=2) as client:
                    status = client.call("ctrl_cmd", {"status": True})["status"]
            except (CSMError, OSError):
                continue
            if status.get("ha_state", "active") == "active":
                return daemon.name
        return None

    def sim_names(self, nodes=None, prefix="sim"):
        """The names ``csm-sim`` gives its nodes."""
        return ["%s%05d" % (prefix, index) for index in range(self.simulated if nodes is None else nodes)]

    def compute_names(self):
        """Every compute of the tree: the daemons, then the simulated nodes."""
        return [d.name for d in self.by_role("compute")] + self.sim_names()

    def start_sim(self, nodes, record=None, settings=None, prefix="sim"):
        """``csm-sim`` with ``nodes`` simulated computes on this cluster's aggregators (a Popen).

        ``settings`` are config paths and values, as ``extra`` (``{"log.csmnet": "warning"}``).
        With hosts, one csm-sim per aggregator, each on a host of its own (``sim01``...) with its
        share of the nodes, primary on that aggregator or the next: a ``SimGroup``. Without,
        one csm-sim, or as many as it takes to stay within the open-file limit (a ``SimGroup``
        of ``sim01``...: 11,136 nodes need more sockets than one process may open here)."""
        aggregators = [d.front or d.config["csm"]["net"]["compute_listen"] for d in self.by_role("aggregator")]
        if self.hosts is None:
            processes = math.ceil(nodes / SIM_NODES_PER_PROCESS)
            if processes <= 1:
                return self._sim("sim", nodes, 0, aggregators, record, settings, prefix)

            def pair(index):
                return aggregators
        else:
            processes = len(aggregators)

            def pair(index):
                return [aggregators[index], aggregators[(index + 1) % len(aggregators)]][:len(aggregators)]
        group, first = [], 0
        for index in range(processes):
            share = nodes // processes + (index < nodes % processes)
            group.append(self._sim("sim%02d" % (index + 1), share, first, pair(index),
                                   record and "%s.%02d" % (record, index + 1), settings, prefix))
            first += share
        return SimGroup(group)

    def _sim(self, name, nodes, first, aggregators, record, settings, prefix):
        """One csm-sim process called ``name`` (its config, log and output are ``name``.*)."""
        ssl = dict(self.ssl)
        if self.hosts is not None:
            ssl["cred_pem"] = self._host_credential(name)
        config = {"csm": {"role": "Compute",
                          "api_permission_file": os.path.join(self.run_dir, "csm_api.acl"),
                          "api_configuration_file": os.path.join(self.run_dir, "csm_api.cfg"),
                          "log": {"consoleLog": False, "fileLog": os.path.join(self.run_dir, name + ".log")},
                          "net": {"heartbeat_interval": self.heartbeat_interval, "aggregatorA": aggregators[0],
                                  "ssl": ssl}}}
        for path, value in (settings or {}).items():
            _set(config["csm"], path, value)
        path = os.path.join(self.run_dir, name + ".cfg")
        with open(path, "w") as f:
            json.dump(config, f, indent=2)
        cmd = [sys.executable, "-m", "csm.sim", "--config", path, "--nodes", str(nodes), "--prefix", prefix,
               "--first", str(first),
               "--aggregators", ",".join("%s:%d" % (a["host"], a["port"]) for a in aggregators)]
        if record:
            cmd += ["--record", record]
        with open(os.path.join(self.run_dir, name + ".out"), "ab") as out:
            return subprocess.Popen(self.on_host(name, cmd), env=self.env(), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=out)

    @staticmethod
    def stop_sim(sim, timeout=60.0):
        """SIGTERM a ``csm-sim`` process (SIGKILL after ``timeout``); its exit status."""
        return terminate(sim, timeout)

    def by_role(self, role):
        return [d for d in self.daemons.values() if d.role == role]

    def start_database(self):
        """The private PostgreSQL with the CSM database created (csm-db create)."""
        from csm.db import admin
        if self.patroni is not None:
            where = ["--host", "127.0.0.1", "--port", str(self.patroni.port(self.patroni.primary()))]
        else:
            self.postgres.start()
            where = ["--port", str(self.postgres.port)]
        with open(os.path.join(self.run_dir, "csm-db.log"), "w") as out:
            if admin.main(where + ["create"], out) != 0:
                raise RuntimeError("csm-db create failed; see %s" % out.name)
        self._database_made = True

    def start(self, timeout=30.0):
        """Start the database and every daemon, parents first, and wait for their sockets (stopped
        at exit or on a signal, if not before)."""
        exitcleanup.register(self.stop)
        if (self.postgres is not None and not self.postgres.running) or (self.patroni and not self._database_made):
            self.start_database()
        for role in ("master", "aggregator", "utility", "compute"):
            for daemon in self.by_role(role):
                daemon.start()
            for daemon in self.by_role(role):
                daemon.wait_socket(timeout)
                if role in ("aggregator", "utility"):
                    self.wait_for(lambda: self._upstream_up(daemon.name), timeout=timeout,
                                  interval=0.05, what="%s to reach the master" % daemon.name)
        if self.simulated and self.sim is None:
            self.sim = self.start_sim(self.simulated, settings=self.extra.get("compute"))
        return self

    def _upstream_up(self, name):
        return any(link["name"] == "master" and link["state"] == "HAPPY"
                   for link in self.status(name)["links"])

    def stop(self):
        """SIGTERM every daemon, children first; returns {name: exit status}."""
        status = {}
        if self.sim is not None:
            status["csm-sim"] = self.stop_sim(self.sim)
            self.sim = None
        for role in ("compute", "utility", "aggregator", "master"):
            for daemon in self.by_role(role):
                status[daemon.name] = daemon.stop()
        if self.postgres is not None:
            self.postgres.stop()
        exitcleanup.unregister(self.stop)
        return status

    def cli(self, daemon, command, *args, user=None, timeout=60):
        """Run a csm_* command against ``daemon``'s socket; (exit status, output)."""
        env = self.env()
        env["CSM_SOCKET"] = self.daemons[daemon].socket
        cmd = [sys.executable, "-c", "import sys; from csm.cli.main import main; "
               "sys.argv[0] = %r; sys.exit(main())" % command] + list(args)
        cwd = None
        if user:
            # /root is private, so another user runs the system python on a copy of our packages
            cmd = ["runuser", "-u", user, "--", "env", "PYTHONPATH=" + other_user_pythonpath(),
                   "CSM_SOCKET=" + env["CSM_SOCKET"], OTHER_USER_PYTHON] + cmd[1:]
            cwd = "/"  # ours may be out of the user's reach
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                              stdin=subprocess.DEVNULL, timeout=timeout, text=True)
        return proc.returncode, proc.stdout

    def sql(self, statement, args=()):
        """Rows of ``statement`` on this cluster's database (autocommitted; None if it returns none)."""
        if self.patroni is not None:
            return self.patroni.query(statement, args, dbname="csmdb")
        return self.postgres.query(statement, args, dbname="csmdb")

    def health(self, daemon):
        """The health check report (a dict) through ``daemon``'s socket."""
        from csm.client import Client
        with Client(self.daemons[daemon].socket) as client:
            return client.call("infrastructure_health_check", {"verbose_health": True})

    def status(self, daemon):
        """``csm_ctrl_cmd --status`` of ``daemon`` as a dict."""
        from csm.client import Client
        with Client(self.daemons[daemon].socket) as client:
            return client.call("ctrl_cmd", {"status": True})["status"]

    def primary_of(self, compute):
        """The aggregator node ``compute`` uses as primary, or None."""
        for link in self.status(compute)["links"]:
            if link["name"].endswith("(PRIMARY)") and link["state"] != "DISCONNECTED":
                return link["peer"]
        return None

    def log_text(self, daemon):
        with open(self.daemons[daemon].log, errors="replace") as f:
            return f.read()

    def complete(self, report, redundant=False):
        """Every daemon of this cluster answers in ``report``, each compute with a primary
        (and, with ``redundant``, a secondary too where there are two aggregators)."""
        aggregators = [a for a in report.get("aggregators", []) if a.get("responding")]
        utilities = [u for u in report.get("utilities", []) if u.get("responding")]
        links = {}
        for aggregator in aggregators:
            for compute in aggregator.get("computes", []):
                if compute.get("responding"):
                    links.setdefault(compute.get("link"), set()).add(compute["node"])
        computes = set(self.compute_names())
        return (len(aggregators) == len(self.by_role("aggregator"))
                and len(utilities) == len(self.by_role("utility"))
                and links.get("PRIMARY", set()) == computes
                and (not redundant or len(aggregators) < 2 or links.get("SECONDARY", set()) == computes))

    def wait_complete(self, daemon, timeout=60.0, redundant=False):
        """Wait until the health check through ``daemon`` shows the whole tree."""
        return self.wait_for(lambda: (lambda r: r if self.complete(r, redundant) else None)(self.health(daemon)),
                             timeout=timeout, interval=0.3,
                             what="the whole tree to answer%s" % (" through both links" if redundant else ""))

    def wait_for(self, predicate, timeout=30.0, interval=0.2, what="condition"):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                result = predicate()
                if result:
                    return result
            except (CSMError, OSError) as exc:
                last = exc
            time.sleep(interval)
        raise RuntimeError("timed out waiting for %s (last error: %s)" % (what, last))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _set(tree, path, value):
    keys = path.split(".")
    for key in keys[:-1]:
        tree = tree.setdefault(key, {})
    tree[keys[-1]] = value
