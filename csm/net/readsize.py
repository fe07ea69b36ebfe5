"""How much a link reads from its socket in one reactor turn.

Twisted reads up to 64 KiB a turn and hands it all to the protocol. On the master
that is ~350 RAS events of a flood, several milliseconds of handling, before the
reactor reads its database connections' answers: every statement of the write
queue waited that long, and the first rows of a flood came seconds after it began.
Reading a quarter of that a turn keeps the answers moving, for a few more system
calls.
"""

#: bytes a master's link from an aggregator or a utility reads a turn
MASTER_READ = 16384


def limit_reads(link, size):
    """Let ``link`` (a connected ``LinkProtocol``) read at most ``size`` bytes a turn."""
    transport = link.transport
    inner = getattr(transport, "transport", None)  # under TLS: the TCP connection
    target = inner if inner is not None else transport
    if hasattr(target, "bufferSize"):
        target.bufferSize = size
