"""Mellanox UFM's REST API (treq) and the mapping of its records to CSM's switch and cable rows.

UFM answers two requests, as for CAST: the switches with their modules
(``systems?type=switch&chassis=t``) and the links with their cables
(``links?cable_info=true``). Every answer is read whole and mapped before
anything is written, so a malformed answer writes nothing; a record that
cannot be stored (no name, no serial number, a duplicate) is left out and
written to ``bad_switch_records.txt`` or ``bad_ib_cable_records.txt``.
"""

import base64
import json
import os
import time

import attrs
from twisted.internet import defer

SYSTEMS_PATH = "/ufmRest/resources/systems?type=switch&chassis=t"
LINKS_PATH = "/ufmRest/resources/links?cable_info=true"
#: values UFM uses for "not known"
UNKNOWN = ("", "NA", "N/A")

#: csm_switch column <- UFM system field
SWITCH_FIELDS = {
    "switch_name": "name", "serial_number": "serial_number", "description": "description",
    "fw_version": "fw_version", "gu_id": "guid", "has_ufm_agent": "has_ufm_agent", "hw_version": "hw_version",
    "ip": "ip", "model": "model", "ps_id": "psid", "role": "role", "server_operation_mode": "server_operation_mode",
    "sm_mode": "sm_mode", "state": "state", "sw_version": "sw_version", "system_guid": "system_guid",
    "system_name": "system_name", "total_alarms": "total_alarms", "type": "type", "vendor": "vendor",
}
#: csm_switch_inventory column <- UFM module field
MODULE_FIELDS = {
    "name": "name", "description": "description", "device_name": "device_name", "device_type": "device_type",
    "hw_version": "hw_version", "max_ib_ports": "max_ib_ports", "module_index": "module_index",
    "number_of_chips": "number_of_chips", "path": "path", "serial_number": "serial_number",
    "severity": "severity", "status": "status", "type": "type", "fw_version": "fw_version",
}
#: csm_ib_cable column <- UFM link field (``cable_info.`` fields from the link's cable)
CABLE_FIELDS = {
    "name": "name", "guid_s1": "source_guid", "port_s1": "source_port", "guid_s2": "destination_guid",
    "port_s2": "destination_port", "severity": "severity", "width": "width",
    "serial_number": "cable_info.serial_number", "part_number": "cable_info.part_number",
    "length": "cable_info.length", "identifier": "cable_info.identifier", "type": "cable_info.technology",
    "revision": "cable_info.revision",
}
INT_COLUMNS = frozenset(("total_alarms", "max_ib_ports", "module_index", "number_of_chips", "num_modules"))


class UfmError(Exception):
    """UFM could not be asked, or its answer cannot be used (nothing was written)."""


@attrs.define
class Inventory:
    """One collection, mapped: rows for the three tables and the records left out (record, reason)."""

    switches: list = attrs.Factory(list)
    modules: list = attrs.Factory(list)
    cables: list = attrs.Factory(list)
    bad_switches: list = attrs.Factory(list)
    bad_cables: list = attrs.Factory(list)


def _value(record, path):
    value = record
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _row(record, fields):
    """The columns of one record; ValueError names a field of the wrong kind."""
    row = {}
    for column, path in fields.items():
        value = _value(record, path)
        if value is None or isinstance(value, (dict, list)):
            row[column] = None
        elif column in INT_COLUMNS:
            try:
                row[column] = int(value)
            except (TypeError, ValueError):
                raise ValueError("%s is not a number: %r" % (path, value)) from None
        elif column == "has_ufm_agent":
            row[column] = value if isinstance(value, bool) else str(value).lower() in ("true", "t", "1", "yes")
        else:
            row[column] = str(value)
    return row


def _known(value):
    return value is not None and str(value).strip() not in UNKNOWN


def _mapped(records, what, fields, bad, prefix=""):
    """(record, row) for each record of UFM's list that maps; the others go to ``bad`` with the reason."""
    if not isinstance(records, list):
        raise UfmError("malformed %s answer: expected a list, got %s" % (what, type(records).__name__))
    for record in records:
        row = None
        if not isinstance(record, dict):
            bad.append((record, prefix + "not an object"))
        else:
            try:
                row = _row(record, fields)
            except ValueError as exc:
                bad.append((record, prefix + str(exc)))
        if row is not None:
            yield record, row


def map_systems(systems, inventory):
    """UFM systems (with their ``modules``) -> switch and module rows of ``inventory``."""
    names, guids, modules = set(), set(), set()
    bad = inventory.bad_switches
    for record, row in _mapped(systems, "systems", SWITCH_FIELDS, bad):
        if not _known(row["switch_name"]) or not _known(row["gu_id"]):
            bad.append((record, "no name or guid"))
            continue
        if row["switch_name"] in names or row["gu_id"] in guids:
            bad.append((record, "duplicate name or guid"))
            continue
        names.add(row["switch_name"])
        guids.add(row["gu_id"])
        children = record.get("modules") if isinstance(record.get("modules"), list) else []
        row["num_modules"] = len(children)
        inventory.switches.append(row)
        for module, child in _mapped(children, "modules", MODULE_FIELDS, bad, "module of %s: " % row["switch_name"]):
            if not _known(child["name"]) or child["name"] in modules:
                bad.append((module, "module of %s without a name, or a duplicate" % row["switch_name"]))
                continue
            modules.add(child["name"])
            child["host_system_guid"] = row["gu_id"]
            inventory.modules.append(child)
    return inventory


def map_links(links, inventory):
    """UFM links (with ``cable_info``) -> cable rows of ``inventory``."""
    serials = set()
    for record, row in _mapped(links, "links", CABLE_FIELDS, inventory.bad_cables):
        if not _known(row["serial_number"]):
            inventory.bad_cables.append((record, "no cable serial number"))
        elif row["serial_number"] in serials:
            inventory.bad_cables.append((record, "duplicate serial number"))
        else:
            serials.add(row["serial_number"])
            inventory.cables.append(row)
    return inventory


def write_bad_records(directory, filename, what, bad, now=time.time):
    """Rewrite ``directory/filename`` with the records left out of this collection; its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, filename)
    with open(path + ".tmp", "w") as f:
        f.write("CSM %s inventory collection\nFile created: %s\n" % (what, time.ctime(now())))
        f.write("The following %d record(s) are incomplete and were not inserted into the CSM database.\n\n"
                % len(bad))
        for number, (record, reason) in enumerate(bad, 1):
            f.write("%s %d: %s\n%s\n\n" % (what, number, reason, json.dumps(record, sort_keys=True, default=str)))
    os.replace(path + ".tmp", path)
    return path


class UfmClient:
    """GETs against UFM's REST API (``csm.ufm`` block of csm_master.cfg) with treq."""

    def __init__(self, reactor, config, http=None):
        self.reactor = reactor
        self.http = http or _http_client(reactor)
        address = config.rest_address
        if "://" not in address:
            address = "https://" + address  # CAST always spoke https to UFM
        self.base = "%s:%d" % (address.rstrip("/"), config.rest_port)
        self.timeout = config.timeout
        self.headers = {}
        key_file = os.path.join(config.ufm_ssl_file_path, config.ufm_ssl_file_name)
        if os.path.isfile(key_file):  # base64 of user:password, as CAST's csm_ufm_ssl_key.txt
            try:
                with open(key_file) as f:
                    token = f.read().strip()
                base64.b64decode(token, validate=True)
            except (OSError, ValueError) as exc:
                raise UfmError("cannot use the UFM key file %s: %s" % (key_file, exc)) from None
            self.headers["Authorization"] = "Basic " + token

    @defer.inlineCallbacks
    def get_json(self, path):
        url = self.base + path
        fetch = self.http.get(url, headers=self.headers)
        fetch.addCallback(lambda response: response.content().addCallback(lambda body: (response, body)))
        late = []
        fetch.addTimeout(self.timeout, self.reactor, onTimeoutCancel=lambda result, _t: late.append(1) or result)
        try:
            response, body = yield fetch
        except Exception as exc:  # connection refused, DNS, TLS, reset: all mean UFM is unreachable
            if late:
                raise UfmError("UFM at %s did not answer within %ss" % (self.base, self.timeout)) from None
            raise UfmError("UFM at %s is unreachable: %s" % (self.base, _reason(exc))) from None
        if response.code != 200:
            raise UfmError("UFM answered %s with HTTP %d" % (path, response.code))
        try:
            return json.loads(body)
        except ValueError:
            raise UfmError("UFM answered %s with malformed JSON (%d bytes)" % (path, len(body))) from None

    @defer.inlineCallbacks
    def collect(self, switches=True, cables=True):
        """Fires with an ``Inventory`` of what was asked for, or fails with ``UfmError``."""
        inventory = Inventory()
        if switches:
            map_systems((yield self.get_json(SYSTEMS_PATH)), inventory)
        if cables:
            map_links((yield self.get_json(LINKS_PATH)), inventory)
        return inventory


def _http_client(reactor):
    """treq without persistent connections: a collection every few minutes keeps no socket open between."""
    from treq.client import HTTPClient  # only the master and the collection tool need treq
    from twisted.web.client import Agent, HTTPConnectionPool
    return HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))


def _reason(exc):
    reasons = getattr(exc, "reasons", None)  # twisted.web's ResponseNeverReceived and friends
    if reasons:
        return "; ".join(r.getErrorMessage() for r in reasons)
    return str(exc) or type(exc).__name__
