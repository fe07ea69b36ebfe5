"""Local users by uid and by name, as the API names its callers, and their groups.

Password and group database look-ups (``getpwuid``/``getpwnam``/``getgrouplist``) may go
to LDAP or NIS through NSS and block; the daemons call them on their reactor thread (the
master's handlers, every daemon's ACL check of a local caller), so entries are kept for
``TTL`` seconds (a renamed or new user, or a changed group, is seen within that time).
"""

import os
import pwd
import time

#: seconds an entry (or a "no such user") is kept
TTL = 300.0
#: entries kept at most; the oldest go first
MAX_ENTRIES = 4096


class PasswdCache:
    """``getpwuid``/``getpwnam`` that remember their answers (``KeyError`` included)."""

    def __init__(self, ttl=TTL, now=time.monotonic, by_uid=pwd.getpwuid, by_name=pwd.getpwnam,
                 grouplist=os.getgrouplist):
        self.ttl = ttl
        self.now = now
        self._lookups = {"uid": by_uid, "name": by_name, "groups": lambda key: _groups(grouplist, *key)}
        self._entries = {}

    def _get(self, kind, key):
        now = self.now()
        cached = self._entries.get((kind, key))
        if cached is None or cached[0] <= now:
            try:
                cached = (now + self.ttl, self._lookups[kind](key))
            except KeyError:
                cached = (now + self.ttl, None)
            self._entries.pop((kind, key), None)
            if len(self._entries) >= MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]
            self._entries[(kind, key)] = cached
        if cached[1] is None:
            raise KeyError(key)
        return cached[1]

    def getpwuid(self, uid):
        return self._get("uid", uid)

    def getpwnam(self, name):
        return self._get("name", name)

    def groups_of(self, uid, gid):
        """The group ids of user ``uid`` (``gid`` its primary group among them); ``KeyError``
        when ``uid`` has no entry or its groups cannot be read."""
        return self._get("groups", (self.getpwuid(uid).pw_name, gid))


def _groups(grouplist, name, gid):
    try:
        return tuple(grouplist(name, gid))
    except OSError:
        raise KeyError(name) from None


PASSWD = PasswdCache()


def user_name_of(uid):
    """The user name of ``uid``, or ``uid N`` for a uid with no entry."""
    try:
        return PASSWD.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid
