"""The service tree of a running daemon as text: the admin shell's ``tree()``."""

from twisted.application import internet, service


def _address(address):
    """``tcp 127.0.0.1:9815`` or ``unix /run/csmd.sock``."""
    if hasattr(address, "port"):
        return "%s %s:%d" % (address.type.lower(), address.host, address.port)
    name = getattr(address, "name", address)
    return "unix %s" % (name.decode() if isinstance(name, bytes) else name)


def _detail(svc):
    if isinstance(svc, internet.TimerService):
        function = svc.call[0]
        return "every %gs: %s" % (svc.step, getattr(function, "__name__", function))
    port = getattr(svc, "listener", None) or getattr(svc, "port", None)
    if port is not None and hasattr(port, "getHost"):
        return "listening on %s" % _address(port.getHost())
    if getattr(svc, "listener", False) is None and hasattr(svc, "open"):
        return "closed"
    return ""


def describe(svc):
    """One line for ``svc``: its class, its name, what it holds, and whether it runs."""
    parts = [type(svc).__name__]
    if svc.name:
        parts.append(repr(svc.name))
    detail = _detail(svc)
    if detail:
        parts.append(detail)
    if not svc.running:
        parts.append("(not running)")
    return " ".join(parts)


def service_tree(root):
    """The tree under ``root``, one service a line, children in start order."""
    lines = [describe(root)]

    def walk(parent, indent):
        children = list(parent) if isinstance(parent, service.MultiService) else []
        for index, child in enumerate(children):
            last = index == len(children) - 1
            lines.append(indent + ("`-- " if last else "|-- ") + describe(child))
            walk(child, indent + ("    " if last else "|   "))
    walk(root, "")
    return "\n".join(lines)
