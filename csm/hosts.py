"""Hosts in network namespaces: many machines with their own names and addresses on one.

``Network`` makes a private bridge in a network namespace of its own (the host's
network is never touched) and, for each ``add(name)``, a namespace plugged into it
by a veth pair, with an address from a private subnet and a line in a hosts file
every namespace reads as its ``/etc/hosts`` (``ip netns exec`` mounts
``/etc/netns/<namespace>/hosts`` there). ``Host.command(argv)`` runs a program in
the host: its network namespace and a UTS namespace whose host name is the host's.

Faults: ``cut(a, b)`` drops every packet between two hosts (an unreachable route
each way: new connections fail at once, open ones go silent), ``heal(a, b)`` undoes it;
``isolate(name)`` unplugs a host from the bridge (its peers hear nothing),
``rejoin(name)`` plugs it back, ``heal_all()`` undoes every fault.

Every name starts with ``csmh<pid>-`` (the creating process). ``stop()`` removes
the namespaces, the bridge and the files, and kills what still runs in them; it is
also run at exit and on SIGTERM, SIGINT or SIGHUP (``csm.exitcleanup``; the previous
handlers are back after ``stop()``). ``remove_stale()``, run by ``start()``, removes what runs of dead
processes left behind (after a SIGKILL): their namespaces and their state folders
(``<tmp>/csm-hosts-<pid>-*``, the hosts file every namespace reads). Needs root and ``ip`` (iproute2);
``unavailable()`` says why not, in one line, or returns None.

    with Network() as network:                      # or network = Network().start() ... network.stop()
        node = network.add("node01")                # a Host: name, address, namespace
        ctl = network.add("ctl")
        subprocess.Popen(node.command(["slurmd", "-D", "-N", "node01"]))   # reaches "ctl" by name
        network.cut("node01", "ctl")                # ... and network.heal("node01", "ctl")
"""

import ipaddress
import os
import shutil
import signal
import subprocess
import tempfile

from csm import exitcleanup

PREFIX = "csmh"
SUBNET = "10.213.0.0/16"
NETNS_DIR = "/run/netns"
ETC_NETNS = "/etc/netns"
BRIDGE = "br0"
STATE_PREFIX = "csm-hosts-"  # then the owner's pid, a dash: a folder under the temporary directory


def _ip(*args, check=True):
    """Run ``ip args``; raises ``RuntimeError`` with ip's message when it fails and ``check``."""
    proc = subprocess.run(("ip",) + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), proc.stdout.strip()))
    return proc.stdout


def unavailable():
    """Why namespaces cannot be made here (one line), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "network namespaces need ip (iproute2) and unshare (util-linux)"
    probe = "%s%d-probe" % (PREFIX, os.getpid())
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError) as exc:
        return "cannot make a network namespace: %s" % exc
    _ip("netns", "del", probe, check=False)
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _kill_inside(namespace):
    """SIGKILL every process in ``namespace``."""
    for line in _ip("netns", "pids", namespace, check=False).split():
        if line.isdigit():
            try:
                os.kill(int(line), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _remove_namespace(namespace):
    _kill_inside(namespace)
    _ip("netns", "del", namespace, check=False)
    shutil.rmtree(os.path.join(ETC_NETNS, namespace), ignore_errors=True)


def _dead_owner(name, prefix):
    """Whether ``name`` is ``<prefix><pid>-...`` of a process that is gone."""
    owner = name[len(prefix):].split("-", 1)[0]
    return name.startswith(prefix) and owner.isdigit() and not _alive(int(owner))


def remove_stale():
    """Remove the namespaces (and their /etc/netns files) and the state folders of runs whose
    process is gone; their names."""
    names = set(os.listdir(NETNS_DIR)) if os.path.isdir(NETNS_DIR) else set()
    if os.path.isdir(ETC_NETNS):
        names |= set(os.listdir(ETC_NETNS))
    removed, folders = [], set()
    for name in sorted(names):
        if _dead_owner(name, PREFIX):
            folders.add(_state_of(name))
            _remove_namespace(name)
            removed.append(name)
    temp = tempfile.gettempdir()  # the folders whose namespaces went already
    folders.update(os.path.join(temp, name) for name in os.listdir(temp) if _dead_owner(name, STATE_PREFIX))
    for folder in sorted(folders - {None}):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(os.path.basename(folder))
    return removed


def _state_of(namespace):
    """The state folder whose hosts file ``namespace`` reads (its maker's temporary directory
    may not be this process's), or None."""
    try:
        folder = os.path.dirname(os.readlink(os.path.join(ETC_NETNS, namespace, "hosts")))
    except OSError:
        return None
    return folder if os.path.basename(folder).startswith(STATE_PREFIX) else None


class Host:
    """One host: a name, an address on the private bridge, a network namespace."""

    def __init__(self, network, name, address, namespace, port):
        self.network = network
        self.name = name
        self.address = address
        self.namespace = namespace
        self.port = port  # its veth end on the bridge

    def command(self, argv):
        """``argv`` as run in this host (network namespace, /etc/hosts, host name)."""
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "--", "sh", "-c",
                'hostname "$0" && exec "$@"', self.name] + list(argv)

    def run(self, argv, **kwargs):
        """``subprocess.run`` of ``argv`` in this host."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.command(argv), **kwargs)

    def __repr__(self):
        return "<Host %s %s>" % (self.name, self.address)


class Network:
    """A private bridge and hosts on it (see the module's docstring)."""

    def __init__(self, subnet=SUBNET):
        self.prefix = "%s%d-" % (PREFIX, os.getpid())
        self.subnet = ipaddress.ip_network(subnet)
        self._addresses = self.subnet.hosts()
        self.hosts = {}
        self.bridge_namespace = self.prefix + "bridge"
        self._state = None
        self._cuts = set()
        self._isolated = set()
        self._started = False

    def start(self):
        """Remove stale namespaces of dead runs, then make the bridge."""
        remove_stale()
        self._state = tempfile.mkdtemp(prefix="%s%d-" % (STATE_PREFIX, os.getpid()))
        self._hosts_file = os.path.join(self._state, "hosts")
        with open(self._hosts_file, "w") as f:
            f.write("127.0.0.1 localhost\n")
        exitcleanup.register(self.stop)
        self._started = True
        _ip("netns", "add", self.bridge_namespace)
        _ip("-n", self.bridge_namespace, "link", "add", BRIDGE, "type", "bridge")
        _ip("-n", self.bridge_namespace, "link", "set", BRIDGE, "up")
        return self

    def add(self, name):
        """A new host called ``name`` with the next address of the subnet."""
        if name in self.hosts:
            raise ValueError("host %s exists" % name)
        address = str(next(self._addresses))
        namespace = self.prefix + name
        port = "v%d" % (len(self.hosts) + 1)
        host = self.hosts[name] = Host(self, name, address, namespace, port)
        etc = os.path.join(ETC_NETNS, namespace)
        os.makedirs(etc, exist_ok=True)
        os.symlink(self._hosts_file, os.path.join(etc, "hosts"))
        with open(self._hosts_file, "a") as f:  # the same file (inode) every namespace mounts
            f.write("%s %s\n" % (address, name))
        _ip("netns", "add", namespace)
        _ip("-n", self.bridge_namespace, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", namespace)
        _ip("-n", self.bridge_namespace, "link", "set", port, "master", BRIDGE, "up")
        _ip("-n", namespace, "addr", "add", "%s/%d" % (address, self.subnet.prefixlen), "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        return host

    def cut(self, a, b):
        """Drop every packet between hosts ``a`` and ``b`` (by name), both ways."""
        for one, other in ((a, b), (b, a)):
            _ip("-n", self.hosts[one].namespace, "route", "add", "unreachable",
                self.hosts[other].address + "/32")
        self._cuts.add((a, b))

    def heal(self, a, b):
        """Undo ``cut(a, b)``."""
        for one, other in ((a, b), (b, a)):
            _ip("-n", self.hosts[one].namespace, "route", "del", "unreachable",
                self.hosts[other].address + "/32", check=False)
        self._cuts.discard((a, b))

    def isolate(self, name):
        """Unplug host ``name`` from the bridge: no packet reaches it or leaves it."""
        _ip("-n", self.bridge_namespace, "link", "set", self.hosts[name].port, "down")
        self._isolated.add(name)

    def rejoin(self, name):
        """Plug host ``name`` back in."""
        _ip("-n", self.bridge_namespace, "link", "set", self.hosts[name].port, "up")
        self._isolated.discard(name)

    def heal_all(self):
        """Undo every ``cut`` and ``isolate``."""
        for a, b in list(self._cuts):
            self.heal(a, b)
        for name in list(self._isolated):
            self.rejoin(name)

    def stop(self):
        """Kill what runs in the hosts, remove every namespace and file this network made."""
        if not self._started:
            return
        self._started = False
        for host in self.hosts.values():
            _remove_namespace(host.namespace)
        _remove_namespace(self.bridge_namespace)
        shutil.rmtree(self._state, ignore_errors=True)
        exitcleanup.unregister(self.stop)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
