"""Several database servers in ``csm.db.host``: libpq's multi-host connection string.

``csm.db.host`` may name several servers, comma-separated, each ``host``, ``host:port``
or ``[IPv6]:port`` (a server without a port uses ``csm.db.port``). libpq then tries
them in turn and, with ``target_session_attrs=read-write``, keeps the one that takes
writes: when Patroni promotes a replica, the master's next connection (the pool's
reconnection after the outage) finds the new primary without a restart.
"""

import re

_WITH_PORT = re.compile(r"^(?:\[(?P<v6>[^\]]+)\]|(?P<name>[^:]*)):(?P<port>\d+)$")


def host_list(host, port):
    """``(hosts, ports)`` as libpq's ``host`` and ``port`` keys take them, and whether there are several."""
    hosts, ports = [], []
    for entry in str(host).split(","):
        entry = entry.strip()
        if not entry:
            continue
        match = _WITH_PORT.match(entry)
        if match:
            hosts.append(match.group("v6") or match.group("name"))
            ports.append(match.group("port"))
        else:
            hosts.append(entry.strip("[]"))
            ports.append(str(port))
    return ",".join(hosts), ",".join(ports), len(hosts) > 1


def libpq_parts(db):
    """The server keys of a DSN from a ``DBConfig``-like object."""
    hosts, ports, several = host_list(db.host, db.port)
    parts = {"host": hosts, "port": ports}
    if several:
        parts["target_session_attrs"] = "read-write"
    return parts
