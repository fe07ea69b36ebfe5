"""Computes -> aggregator -> a Logstash-like TCP sink that goes away and comes back."""

import json
import socket
import tempfile
import threading
import time
import urllib.request

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import LocalCluster, free_port
from tests.clusters import maps_file


class JsonLinesSink:
    """A TCP server collecting JSON lines, that can be stopped and started on one port."""

    def __init__(self, port):
        self.port = port
        self.records = []
        self._server = None
        self._conns = []
        self._lock = threading.Lock()

    def start(self):
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(8)
        threading.Thread(target=self._accept, args=(self._server,), daemon=True).start()

    def stop(self):
        server, self._server = self._server, None
        server.close()
        for conn in self._conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._conns = []

    def _accept(self, server):
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn):
        buffer = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            *lines, buffer = buffer.split(b"\n")
            with self._lock:
                self.records.extend(json.loads(line) for line in lines if line)

    def seqs(self, source):
        with self._lock:
            return [r["data"]["seq"] for r in self.records if r["source"] == source
                    and r["type"] == "csm-test-env"]


class EnvDataTests(SynchronousTestCase):
    def test_outage_window_records_arrive_once(self):
        port = free_port()
        sink = JsonLinesSink(port)
        sink.start()
        self.addCleanup(lambda: sink._server and sink.stop())
        run_dir = tempfile.mkdtemp(prefix="csm-env-")
        buckets = [{"execution_interval": "00:00:01", "item_list": ["debug"]}]
        metrics_port = free_port()
        cluster = LocalCluster(run_dir, computes=2, aggregators=1, utilities=0, tls=False, extra={
            "aggregator": {"bds": {"host": "127.0.0.1", "port": port, "reconnect_interval_max": 1,
                                   "data_cache_expiration": 600},
                           "net.metrics_listen": {"host": "127.0.0.1", "port": metrics_port}},
            "compute": {"data_collection.buckets": buckets}})
        self.addCleanup(cluster.stop)
        cluster.start()
        cluster.wait_for(lambda: len(sink.seqs("c01")) >= 2 and len(sink.seqs("c02")) >= 2,
                         timeout=30, what="records at the sink")
        cluster.health("c01")
        # CAST's default, no TLS: the computes' reactors come up without pyOpenSSL and cryptography
        self.assertFalse(maps_file(cluster.daemons["c01"].process.pid, "/cryptography/"))
        self.assertTrue(maps_file(cluster.daemons["agg01"].process.pid, "/cryptography/"))
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port, timeout=10).read().decode()
        self.assertRegex(text, r'csm_env_csm_test_env_seq\{Hostname="c01"\} \d+')
        self.assertIn('csm_daemon_info{node="agg01",role="aggregator",version="1.8.5"} 1.0', text)
        self.assertRegex(text, r'csm_api_requests_total\{api="csm_infrastructure_health_check",result="ok"\} [1-9]')
        self.assertIn('csm_aggregator_computes{link="PRIMARY"} 2.0', text)
        sink.stop()
        stopped = {name: max(sink.seqs(name)) for name in ("c01", "c02")}
        time.sleep(4)
        # the daemons keep serving while Logstash is away
        self.assertTrue(cluster.complete(cluster.health("c01")))
        sink.start()
        cluster.wait_for(lambda: all(len(sink.seqs(n)) and max(sink.seqs(n)) > stopped[n] + 5
                                     for n in ("c01", "c02")), timeout=30, what="records after the outage")
        for name in ("c01", "c02"):
            seqs = sink.seqs(name)
            self.assertEqual(len(seqs), len(set(seqs)), "duplicates for %s" % name)
            # every record made during the outage (after the stop was noticed) arrived
            window = range(stopped[name] + 2, max(seqs) + 1)
            self.assertEqual(sorted(s for s in seqs if s in window), list(window))
