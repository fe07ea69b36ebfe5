"""csm_ctrl_cmd --dump_mem: the object census runs off the reactor thread."""

import threading
import types

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from csm.api import ctrl


class DumpMemTests(TestCase):
    def ctx(self):
        return types.SimpleNamespace(daemon=types.SimpleNamespace(reactor=reactor))

    @defer.inlineCallbacks
    def test_census_in_a_thread(self):
        ran_in = []
        census = ctrl.memory_stats

        def memory_stats():
            ran_in.append(threading.current_thread())
            return census()
        self.patch(ctrl, "memory_stats", memory_stats)
        result = yield ctrl.handle(self.ctx(), {"dump_mem": True})
        self.assertGreater(result["memory"]["gc_objects"], 0)
        self.assertEqual(len(result["memory"]["top_types"]), 15)
        self.assertNotIn(threading.main_thread(), ran_in)
        self.assertEqual(len(ran_in), 1)
