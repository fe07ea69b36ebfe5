"""A stand-in for Mellanox UFM's REST API (no UFM runs here): UFM-shaped JSON over HTTP.

It serves the two resources CSM asks for: switches with their modules
(``/ufmRest/resources/systems``) and links with their cables
(``/ufmRest/resources/links``), generated for any number of switches and
cables, with bad records on request, and answers badly on request
(``mode``: ``ok``, ``malformed``, ``http500``, ``slow``). A thread of the
caller's process serves it, so a test that blocks on its daemons still gets
answers.
"""

import http.server
import json
import threading
import time

MODULE_KINDS = (("FAN", 1), ("FAN", 2), ("PS", 1), ("PS", 2), ("MGMT", 1))


def switch_guid(index):
    return "e41d2d03%08x" % index


def system(index):
    guid = switch_guid(index)
    name = "ib-sw%04d" % index
    return {
        "name": guid, "guid": guid, "system_guid": guid, "system_name": name, "description": "MSB7800",
        "model": "MSB7800", "vendor": "Mellanox", "fw_version": "15.2008.2102", "sw_version": "3.9.1002",
        "ip": "10.1.%d.%d" % (index // 250, index % 250 + 1), "psid": "MT_2630110032", "has_ufm_agent": False,
        "role": "core" if index % 10 == 0 else "tor", "server_operation_mode": "Switch", "sm_mode": "noSM",
        "state": "active", "total_alarms": 0, "type": "switch", "serial_number": "MT%08d" % index,
        "modules": [{"name": "%s_%s%d" % (guid, kind, number), "description": kind, "device_name": name,
                     "device_type": "Switch", "hw_version": "A1", "max_ib_ports": 0, "module_index": number,
                     "number_of_chips": 0, "path": "default / Switch: %s / %s %d" % (name, kind, number),
                     "serial_number": "MT%08d%s%d" % (index, kind, number), "severity": "Info", "status": "OK",
                     "type": kind, "fw_version": ""} for kind, number in MODULE_KINDS],
    }


def link(index, switches):
    a, b = index % switches, (index * 7 + 1) % switches
    port_a, port_b = index % 36 + 1, (index // 36) % 36 + 1
    return {
        "name": "%s_%d:%s_%d" % (switch_guid(a), port_a, switch_guid(b), port_b),
        "source_guid": switch_guid(a), "source_port": str(port_a),
        "destination_guid": switch_guid(b), "destination_port": str(port_b),
        "severity": "Info", "width": "IB_4x",
        "cable_info": {"serial_number": "MT17%08d" % index, "part_number": "MFS1S00-H003E", "length": "3 m",
                       "identifier": "QSFP28", "technology": "Optical cable - 850 nm", "revision": "A2"},
    }


class UfmStandIn:
    """``start()`` listens on 127.0.0.1 (a free port); change ``switches``, ``cables``, ``gone``, ``mode`` at will."""

    def __init__(self, switches=10, cables=40, bad_switches=0, bad_cables=0):
        self.switches = switches
        self.cables = cables
        self.bad_switches = bad_switches
        self.bad_cables = bad_cables
        self.gone = 0  # the first cables no longer reported
        self.severity = "Info"  # of every cable
        self.mode = "ok"
        self.requests = []
        self._cache = {}
        self._server = None

    def systems(self):
        records = [system(index) for index in range(self.switches)]
        for index in range(self.bad_switches):
            bad = system(10000 + index)
            del bad["guid"]  # UFM lost it: not storable
            records.append(bad)
        return records

    def links(self):
        records = []
        for index in range(self.gone, self.cables):
            record = link(index, max(1, self.switches))
            record["severity"] = self.severity
            records.append(record)
        for index in range(self.bad_cables):
            bad = link(100000 + index, max(1, self.switches))
            bad["cable_info"] = {} if index % 2 == 0 else dict(bad["cable_info"], serial_number="N/A")
            records.append(bad)
        if self.bad_cables and records:
            records.append(dict(records[0]))  # the same cable twice
        return records

    def answer(self, path):
        """(status, body bytes) for one GET."""
        self.requests.append(path)
        if self.mode == "http500":
            return 500, b'{"error": "internal"}'
        if path.startswith("/ufmRest/resources/systems"):
            body = self._cached("systems", self.systems)
        elif path.startswith("/ufmRest/resources/links"):
            body = self._cached("links", self.links)
        else:
            return 404, b"{}"
        if self.mode == "malformed" and path.startswith("/ufmRest/resources/links"):
            body = body[:len(body) // 2]  # cut off mid-answer
        return 200, body

    def _cached(self, what, make):
        """The answer's bytes, made again only when the settings changed (the benchmark times CSM, not us)."""
        key = (what, self.switches, self.cables, self.bad_switches, self.bad_cables, self.gone, self.severity)
        if self._cache.get(what, (None,))[0] != key:
            self._cache[what] = (key, json.dumps(make()).encode())
        return self._cache[what][1]

    @property
    def address(self):
        return "http://127.0.0.1"

    @property
    def port(self):
        return self._server.server_address[1]

    def start(self):
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if standin.mode == "slow":
                    time.sleep(5)
                status, body = standin.answer(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
