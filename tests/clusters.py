"""Local clusters shared by the system tests of one test process.

trial has no class-level fixtures, so a cluster is started the first time a
test asks for it and stopped when the process exits (``LocalCluster`` sees to it).
"""

import os
import socket
import tempfile

from csm.cluster import LocalCluster

_clusters = {}


def shared_cluster(name, **options):
    """The running cluster called ``name``, started (and waited for) on first use."""
    cluster = _clusters.get(name)
    if cluster is None:
        run_dir = tempfile.mkdtemp(prefix="csm-%s-" % name)
        os.chmod(run_dir, 0o755)
        options.setdefault("fast_db", True)  # throw-away data: speed over durability
        cluster = LocalCluster(run_dir, **options)
        try:
            cluster.start()
            cluster.wait_complete(cluster.by_role("compute")[0].name, timeout=90)
        except Exception:
            cluster.stop()
            raise
        _clusters[name] = cluster
    return cluster


def held_port(testcase):
    """A loopback TCP port held listening until ``testcase`` ends: a port some other program took."""
    held = socket.socket()
    testcase.addCleanup(held.close)
    held.bind(("127.0.0.1", 0))
    held.listen(1)
    return held.getsockname()[1]


def sql(cluster, statement, args=()):
    """Rows of ``statement`` run on ``cluster``'s database (psycopg2, autocommitted)."""
    return cluster.sql(statement, args)


def manhole_talk(path, command, until, timeout=30):
    """Connect to a running daemon's admin shell, type ``command``, read until ``until`` shows up
    (blocking: the daemon is another process)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    sock.settimeout(timeout)
    sock.sendall(command)
    seen = b""
    while until not in seen:
        data = sock.recv(4096)
        if not data:
            break
        seen += data
    sock.close()
    return seen


def maps_file(pid, fragment):
    """Whether process ``pid`` has a file whose path holds ``fragment`` mapped (a library loaded)."""
    with open("/proc/%d/maps" % pid) as f:
        return any(fragment in line for line in f)
