"""Password database look-ups are remembered: the master's handlers do not block on NSS each call."""

import os
import pwd

from twisted.trial.unittest import SynchronousTestCase

from csm.users import PasswdCache


class PasswdCacheTests(SynchronousTestCase):
    def setUp(self):
        self.now = 0.0
        self.asked = []

        def by_uid(uid):
            self.asked.append(uid)
            return pwd.getpwuid(uid)
        self.cache = PasswdCache(ttl=300, now=lambda: self.now, by_uid=by_uid)

    def test_answers_kept_for_the_ttl(self):
        uid = os.getuid()
        name = pwd.getpwuid(uid).pw_name
        self.assertEqual([self.cache.getpwuid(uid).pw_name for _ in range(3)], [name] * 3)
        self.assertEqual(self.asked, [uid])
        self.now = 300.0
        self.assertEqual(self.cache.getpwuid(uid).pw_name, name)
        self.assertEqual(self.asked, [uid, uid])

    def test_unknown_user_remembered_too(self):
        missing = 2 ** 31 - 7
        for _ in range(2):
            self.assertRaises(KeyError, self.cache.getpwuid, missing)
        self.assertEqual(self.asked, [missing])

    def test_by_name(self):
        entry = pwd.getpwuid(os.getuid())
        self.assertEqual(PasswdCache().getpwnam(entry.pw_name).pw_uid, entry.pw_uid)
