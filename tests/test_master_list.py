"""A list of masters: the config key, and moving on to the next master without the back-off."""

import json
import os
import tempfile

from twisted.internet import defer
from twisted.internet.error import ConnectionRefusedError
from twisted.trial import unittest

from csm.config import ConfigError, load_daemon_config
from csm.config.models import Endpoint
from csm.errors import CSMError, ErrorCode
from csm.roles.master_list import NOT_ACTIVE, QUICK_DELAY, MasterList
from csm.roles.upstream import Backoff, RefusalNotingEndpoint


def write_config(testcase, net):
    directory = tempfile.mkdtemp()
    testcase.addCleanup(lambda: os.path.exists(path) and os.remove(path) or os.rmdir(directory))
    path = os.path.join(directory, "csm_aggregator.cfg")
    net = dict({"compute_listen": {"host": "127.0.0.1", "port": 9800}}, **net)
    with open(path, "w") as f:
        json.dump({"csm": {"role": "Aggregator", "node_name": "agg01", "net": net}}, f)
    return path


class ConfigTests(unittest.TestCase):
    def test_master_first_then_the_others_once_each(self):
        path = write_config(self, {"master": {"host": "m1", "port": 9815},
                                   "masters": [{"host": "m2", "port": 9815}, {"host": "m1", "port": 9815}]})
        self.assertEqual(load_daemon_config(path).net.master_list, (Endpoint("m1", 9815), Endpoint("m2", 9815)))

    def test_a_single_master_stays_valid(self):
        path = write_config(self, {"master": {"host": "m1", "port": 9815}})
        self.assertEqual(load_daemon_config(path).net.master_list, (Endpoint("m1", 9815),))

    def test_a_bad_entry_is_named(self):
        path = write_config(self, {"master": {"host": "m1", "port": 9815}, "masters": [{"host": "m2", "port": "x"}]})
        with self.assertRaises(ConfigError) as caught:
            load_daemon_config(path)
        self.assertIn("csm.net.masters[0].port", str(caught.exception))
        path = write_config(self, {"master": {"host": "m1", "port": 9815}, "masters": "m2"})
        self.assertRaises(ConfigError, load_daemon_config, path)


class Refusing:
    def __init__(self, name, log):
        self.name, self.log = name, log

    def connect(self, factory):
        self.log.append(self.name)
        return defer.fail(ConnectionRefusedError())


class MasterListTests(unittest.TestCase):
    def setUp(self):
        self.tried = []
        self.backoff = Backoff(draw=lambda: 1.0)
        self.masters = MasterList([RefusalNotingEndpoint(Refusing(n, self.tried), self.backoff) for n in "abc"],
                                  ["a", "b", "c"], self.backoff)

    def attempt(self):
        d = self.masters.connect(None)
        d.addErrback(lambda f: None)
        return self.backoff(1)

    def test_the_next_master_at_once_until_a_round_is_done(self):
        delays = [self.attempt() for _ in range(6)]
        self.assertEqual(self.tried, list("abcabc"))
        self.assertEqual(delays[:2], [QUICK_DELAY, QUICK_DELAY])
        self.assertGreater(delays[2], QUICK_DELAY)  # a, b, c all failed: the back-off counts
        self.assertEqual(self.backoff.failures, 2)

    def test_a_standby_sends_the_link_to_the_next_master(self):
        self.masters.refused(CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, NOT_ACTIVE + ": m1 is a standby"))
        self.assertEqual((self.masters.current, self.backoff(1)), ("b", QUICK_DELAY))
        self.masters.refused(CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, NOT_ACTIVE + ": m2 is a standby"))
        self.masters.refused(CSMError(ErrorCode.CSMERR_SENDRCV_ERROR, NOT_ACTIVE + ": m3 is a standby"))
        self.assertEqual(self.masters.current, "a")
        for _ in range(20):  # an election under way: never more than CAST's quick retries
            self.assertLessEqual(self.backoff(1), 1.25)

    def test_another_refusal_keeps_the_master(self):
        self.masters.refused(CSMError(ErrorCode.CSMERR_GENERIC, "VERSION MISMATCH"))
        self.assertEqual((self.masters.current, self.backoff.quick), ("a", False))
