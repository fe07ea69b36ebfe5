"""Safe, bounded readers of a /proc and /sys tree rooted at a configurable directory.

Nothing here raises for a missing or unreadable file: the reader gives None (or an
empty result) and the caller decides what to log.  Reads are capped at ``MAX_BYTES``
and directory scans at ``MAX_ENTRIES`` so a strange tree cannot stall a collector.
"""

import itertools
import os
import re

MAX_BYTES = 4 << 20
MAX_ENTRIES = 4096

_PCI_ADDRESS = re.compile(r"^[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$")
_PLACEHOLDERS = frozenset((
    "", "none", "unknown", "n/a", "na", "not specified", "not provided", "not available",
    "to be filled by o.e.m.", "default string", "system serial number", "0", "0x0",
    "0123456789", "no dimm", "serial number", "unknown serial",
))


def meaningful(value):
    """``value`` stripped, or None when it is empty or a firmware placeholder."""
    if value is None:
        return None
    value = value.strip()
    return None if value.lower() in _PLACEHOLDERS or not value.strip("0") else value


def natural_key(name):
    """Sort key putting ``cpu2`` before ``cpu10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def decode(data):
    """Bytes (or str) as text without NULs and surrounding blanks; None stays None."""
    if data is None:
        return None
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    return data.replace("\x00", "").strip()


def parse_fields(text, sep):
    """``KEY<sep>value`` lines as a dict; values lose blanks and surrounding quotes."""
    fields = {}
    for line in (text or "").splitlines():
        key, found, value = line.partition(sep)
        if found and key.strip():
            fields[key.strip()] = value.strip().strip("\"'")
    return fields


class SysTree:
    """A filesystem tree (``/`` on a live node, a fixture in tests) read without raising."""

    def __init__(self, root="/"):
        self.root = os.path.abspath(root)

    @property
    def is_live(self):
        """True when the tree is this machine's own root."""
        return self.root == "/"

    def path(self, rel):
        return os.path.join(self.root, rel.lstrip("/"))

    def read_bytes(self, rel, limit=MAX_BYTES):
        try:
            with open(self.path(rel), "rb") as handle:
                return handle.read(limit)
        except (OSError, ValueError):
            return None

    def read(self, rel):
        """The file's text, stripped; None when missing, unreadable or empty."""
        return decode(self.read_bytes(rel)) or None

    def read_int(self, rel, base=10):
        try:
            return int(self.read(rel), base)
        except (TypeError, ValueError):
            return None

    def fields(self, rel, sep):
        """A ``KEY<sep>value`` file as a dict (empty when unreadable)."""
        return parse_fields(self.read(rel), sep)

    def listdir(self, rel, pattern=None, limit=MAX_ENTRIES):
        """Entry names of a directory matching ``pattern`` (a regex), naturally sorted."""
        regex = re.compile(pattern) if pattern else None
        try:
            with os.scandir(self.path(rel)) as entries:
                names = [entry.name for entry in itertools.islice(entries, limit)]
        except OSError:
            return []
        return sorted((n for n in names if regex is None or regex.fullmatch(n)), key=natural_key)

    def pci_address(self, rel):
        """The PCI address (``0000:3a:00.0``) nearest to ``rel`` once its links are resolved."""
        parts = os.path.realpath(self.path(rel)).split(os.sep)
        return next((part for part in reversed(parts) if _PCI_ADDRESS.match(part)), None)
