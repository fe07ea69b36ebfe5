"""UFM inventory collection: the master's periodic one and ``standalone_ib_and_switch_collection``.

Both ask UFM (``csm.ufm``), write the records they had to leave out to the
bad-record files in ``csm.inventory.csm_inv_log_dir``, and store the rest: the
master straight into its database, the tool through the three collection APIs
of the local daemon.
"""

import argparse
import os
import sys

from twisted.application.internet import TimerService
from twisted.internet import defer, threads

from csm import logs
from csm.config import ConfigError
from csm.ufm import UfmClient, UfmError, write_bad_records

log = logs.logger("csmd")

SWITCH_ERRORS = "bad_switch_records.txt"
CABLE_ERRORS = "bad_ib_cable_records.txt"
#: how long a collection waits for the database to be connected before it tries anyway
DB_WAIT = 30.0
#: the collection API of each kind
APIS = {"switches": "switch_inventory_collection", "modules": "switch_children_inventory_collection",
        "cables": "ib_cable_inventory_collection"}
#: -t values of CAST's tool
TYPES = {1: (False, True), 2: (True, False), 3: (True, True)}


def write_bad_files(inventory_config, inventory, switches=True, cables=True):
    """The bad-record files of this collection; their paths."""
    directory = inventory_config.csm_inv_log_dir
    names = inventory_config.ufm or {}
    paths = []
    if switches:
        paths.append(write_bad_records(directory, names.get("switch_errors") or SWITCH_ERRORS, "Switch",
                                       inventory.bad_switches))
    if cables:
        paths.append(write_bad_records(directory, names.get("ib_cable_errors") or CABLE_ERRORS, "IB cable",
                                       inventory.bad_cables))
    return paths


def collections(inventory, switches=True, cables=True):
    """``{kind: rows}`` for ``csm.db.switches.store``."""
    result = {}
    if switches:
        result.update(switches=inventory.switches, modules=inventory.modules)
    if cables:
        result["cables"] = inventory.cables
    return result


def unchanged(counts):
    """Records a collection found as they were (neither new, changed, nor refused)."""
    return counts["received"] - counts["inserted"] - counts["updated"] - len(counts.get("unknown_host") or ())


class UfmCollectionService(TimerService):
    """The master's collection every ``csm.ufm.collection_interval`` seconds (a run never overlaps the next)."""

    def __init__(self, reactor, clock, db, config, client=None):
        super().__init__(config.ufm.collection_interval, self.collect)
        self.reactor = reactor
        self.clock = clock
        self.db = db
        self.config = config
        try:
            self.client = client or UfmClient(reactor, config.ufm)
        except UfmError as exc:  # the master does not start: one line naming the key
            raise ConfigError(config.path, "csm.ufm.ufm_ssl_file_name", str(exc)) from None
        self.last = None
        self.runs = 0

    def connected(self):
        """Fires (with None) once the pool is connected, told by the pool, or after ``DB_WAIT``
        seconds (the collection then fails and is logged)."""
        if self.db.state == "connected":
            return defer.succeed(None)
        d = defer.Deferred()

        def observer(state):
            if state == "connected" and not d.called:
                d.callback(None)
        self.db.subscribe(observer)
        d.addTimeout(DB_WAIT, self.clock).addErrback(lambda f: f.trap(defer.TimeoutError))
        return d.addBoth(lambda result: self.db.observers.remove(observer))

    @defer.inlineCallbacks
    def collect(self):
        """One collection; fires with its summary (also kept as ``last``), never fails."""
        from csm.db import switches
        yield self.connected()  # the master's pool may still be connecting
        try:
            inventory = yield self.client.collect()
            # file writes (and makedirs) off the reactor thread: the master answers requests meanwhile
            yield threads.deferToThreadPool(self.reactor, self.reactor.getThreadPool(), write_bad_files,
                                            self.config.inventory, inventory)
            summary = yield self.db.runInteraction(switches.store, collections(inventory))
        except UfmError as exc:
            log.error("UFM inventory collection: {error}", error=str(exc))
            self.last = {"error": str(exc)}
        except Exception as exc:  # a database outage, a full disk: the next run tries again
            log.error("UFM inventory collection not stored: {error}", error=str(exc))
            self.last = {"error": str(exc)}
        else:
            summary["bad_switches"] = len(inventory.bad_switches)
            summary["bad_cables"] = len(inventory.bad_cables)
            log.info("UFM inventory collection: {summary}", summary=summary)
            self.last = summary
        self.runs += 1
        return self.last


@defer.inlineCallbacks
def run_tool(reactor, config, kinds, out, socket=None):
    """Ask UFM, write the bad-record files, send the rest through the local daemon; the exit status."""
    from csm import client as csm_client
    from csm.errors import CSMError, ErrorCode
    switches, cables = kinds
    try:
        inventory = yield UfmClient(reactor, config.ufm).collect(switches=switches, cables=cables)
    except UfmError as exc:
        out.write("standalone_ib_and_switch_collection FAILED: %s\n" % exc)
        return 1
    for path in write_bad_files(config.inventory, inventory, switches, cables):
        out.write("bad records: %s\n" % path)
    path = socket or config.net.local_client_listen.socket
    try:
        daemon = yield csm_client.connect(reactor, path)
    except Exception as exc:  # no daemon there, or it refused the hello
        out.write("standalone_ib_and_switch_collection FAILED: errcode: %d errmsg: Can not connect to daemon at "
                  "%s: %s\n" % (ErrorCode.CSMERR_INIT_LIB_FAILED, path, getattr(exc, "errmsg", None) or exc))
        return ErrorCode.CSMERR_INIT_LIB_FAILED
    rows = collections(inventory, switches, cables)

    @defer.inlineCallbacks
    def send(kinds):
        results = []
        for kind in kinds:
            if kind in rows:
                results.append((kind, (yield daemon.call(APIS[kind], {"inventory": rows[kind]}))))
        return results
    try:  # the cables go while the switches go, then their modules (which need their switches)
        sent = yield defer.gatherResults([send(("switches", "modules")), send(("cables",))], consumeErrors=True)
    except defer.FirstError as exc:
        error = exc.subFailure.value
        if not isinstance(error, CSMError):
            raise error
        out.write("standalone_ib_and_switch_collection FAILED: errcode: %d errmsg: %s\n"
                  % (int(error.errcode), error.errmsg))
        return int(error.errcode)
    finally:
        daemon.close()
    for kind, result in sent[0] + sent[1]:
        out.write("%s: %d received, %d new, %d changed, %d unchanged, %d no longer reported\n"
                  % (kind, result["received"], result["inserted"], result["updated"], unchanged(result),
                     result["missing"]))
    return 0


def main(argv=None, out=sys.stdout):
    from twisted.internet import task

    from csm.config import ConfigError, load_daemon_config
    parser = argparse.ArgumentParser(prog="standalone_ib_and_switch_collection",
                                     description="Collect switch and IB cable inventory from UFM into CSM.")
    parser.add_argument("-c", "--config", default="/etc/ibm/csm/csm_master.cfg", help="the master's config file")
    parser.add_argument("-t", "--type", type=int, choices=sorted(TYPES), default=3,
                        help="1 IB cables, 2 switches, 3 both (default)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = load_daemon_config(args.config, role_override="master")
    except ConfigError as exc:
        out.write("standalone_ib_and_switch_collection FAILED: %s\n" % exc)
        return 1
    if not config.ufm.rest_address:
        out.write("standalone_ib_and_switch_collection FAILED: csm.ufm.rest_address is not set in %s\n" % args.config)
        return 1
    status = []

    def run(reactor):
        return run_tool(reactor, config, TYPES[args.type], out, os.environ.get("CSM_SOCKET")).addCallback(
            status.append)
    try:
        task.react(run)
    except SystemExit:
        pass
    return status[0] if status else 1


if __name__ == "__main__":
    sys.exit(main())
