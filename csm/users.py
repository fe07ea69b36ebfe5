"""Local users by uid and by name, as the API names its callers.

Password database look-ups (``getpwuid``/``getpwnam``) may go to LDAP or NIS through NSS
and block; the master's handlers call them on its reactor thread, so entries are kept
for ``TTL`` seconds (a renamed or new user is seen within that time).
"""

import pwd
import time

#: seconds an entry (or a "no such user") is kept
TTL = 300.0
#: entries kept at most; the oldest go first
MAX_ENTRIES = 4096


class PasswdCache:
    """``getpwuid``/``getpwnam`` that remember their answers (``KeyError`` included)."""

    def __init__(self, ttl=TTL, now=time.monotonic, by_uid=pwd.getpwuid, by_name=pwd.getpwnam):
        self.ttl = ttl
        self.now = now
        self._lookups = {"uid": by_uid, "name": by_name}
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


PASSWD = PasswdCache()


def user_name_of(uid):
    """The user name of ``uid``, or ``uid N`` for a uid with no entry."""
    try:
        return PASSWD.getpwuid(uid).pw_name
    except KeyError:
        return "uid %d" % uid
