"""The master's transaction and allocation metrics logs."""

import datetime
import json
import os

import attrs
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from csm.api.joblogs import JobLogs
from csm.config import LogConfig
from csm.logfile import JsonLines


class JobLogTests(SynchronousTestCase):
    def test_records(self):
        directory = self.mktemp()
        config = attrs.evolve(LogConfig(), transaction_file=os.path.join(directory, "tx.log"),
                              allocation_metrics_file=os.path.join(directory, "metrics.log"))
        logs = JobLogs(config)
        self.addCleanup(logs.close)
        logs.transaction("allocation", 7, 99, {"allocation_id": 7, "state": "running"})
        logs.allocation_metrics(7, {
            "n01": {"errcode": 0, "output": {"cpus": {"cpu_0": 5}, "gpus": [{"gpu_id": 0, "gpu_usage": 3,
                                                                            "max_gpu_memory": 8}]}},
            "n02": {"errcode": 5, "errmsg": "timeout", "output": None}})
        logs.flush()
        with open(os.path.join(directory, "tx.log")) as f:
            (record,) = [json.loads(line) for line in f]
        self.assertEqual((record["type"], record["uid"], record["traceid"], record["data"]["state"]),
                         ("allocation", 7, 99, "running"))
        self.assertRegex(record["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        with open(os.path.join(directory, "metrics.log")) as f:
            records = [json.loads(line) for line in f]
        self.assertEqual([(r["type"], r["source"]) for r in records], [("allocation-gpu", "n01"),
                                                                       ("allocation-cpu", "n01")])
        self.assertEqual(records[0]["data"], {"allocation_id": 7, "gpu_id": 0, "gpu_usage": 3, "max_gpu_memory": 8})
        self.assertEqual(records[1]["data"], {"allocation_id": 7, "cpu_0": 5})

    def test_off(self):
        logs = JobLogs(attrs.evolve(LogConfig(), transaction=False, transaction_file=self.mktemp()))
        logs.transaction("allocation", 1, 1, {})
        self.assertIsNone(logs.transactions)
        self.assertIsNone(logs.metrics)  # allocation_metrics_file "none"

    def test_rotation(self):
        path = os.path.join(self.mktemp(), "tx.log")
        log = JsonLines(path, rotate_bytes=200)
        self.addCleanup(log.close)
        for number in range(20):
            log.write({"n": number, "pad": "x" * 40})
        log.flush()
        self.assertTrue(os.path.exists(path + ".1"))
        with open(path) as f:
            last = [json.loads(line) for line in f][-1]
        self.assertEqual(last["n"], 19)

    def test_records_buffered_until_the_turn_ends(self):
        """A burst of records is one write at the end of the reactor turn (not one per record)."""
        clock = Clock()
        path = os.path.join(self.mktemp(), "ras.json")
        log = JsonLines(path, clock=clock)
        self.addCleanup(log.close)
        for number in range(100):
            log.write({"n": number})
        self.assertFalse(os.path.exists(path))
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(0)
        with open(path) as f:
            self.assertEqual([json.loads(line)["n"] for line in f], list(range(100)))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_line_is_sorted_json_with_text_for_the_rest(self):
        """Each record is one line: keys sorted, what JSON cannot hold (a datetime) as its text."""
        path = os.path.join(self.mktemp(), "ras.json")
        log = JsonLines(path, clock=Clock())
        self.addCleanup(log.close)
        when = datetime.datetime(2026, 12, 2, 6, 0, 1, 5)
        log.write({"type": "csm-ras-event", "data": {"rec_id": 7, "msg_id": "a.b", "time_stamp": when,
                                                     "kvcsv": None, "message": "n01: \u00e9"}})
        log.write({"b": 1, "a": [1.5, True]})
        log.flush()
        with open(path) as f:
            self.assertEqual(f.read(), '{"data": {"kvcsv": null, "message": "n01: \\u00e9", "msg_id": "a.b", '
                             '"rec_id": 7, "time_stamp": "2026-12-02 06:00:01.000005"}, "type": "csm-ras-event"}\n'
                             '{"a": [1.5, true], "b": 1}\n')
