"""Where a compute daemon's memory goes (issue 21: idle RSS at most 40 MB).

Three measurements, each of VmRSS from /proc:

1. layers: one fresh interpreter takes the compute's imports step by step (the
   interpreter alone, ``twistd``, the reactor, twistd's plugin discovery, the TLS and
   endpoint modules, then csm's compute modules) and reports its RSS after each;
2. the floor: a bare Python with the Twisted reactor and one idle, mutually
   verified pyOpenSSL TLS connection (the certificates the cluster uses) to a
   server in another process: what any Twisted daemon with TLS links holds;
3. the compute: ``twistd csm-compute`` of a ``LocalCluster`` (master, one aggregator,
   the default buckets, no admin shell, no exporter, as ``bench/slurm.py``), idle, split
   into anonymous memory and the mapped libraries' pages, with its CPU over ``--idle``
   seconds: once as CAST's default config has it, without TLS (the compute then leaves
   pyOpenSSL out: ``csm.tap.options.leave_out_pyopenssl``), once with TLS links.

Run: ``.venv/bin/python bench/compute_rss.py [--idle 10] [--record]``.
"""

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.results import QUIET, cpu_rss, record, stop_on_signals  # noqa: E402
from csm.client import Client  # noqa: E402
from csm.cluster import LocalCluster  # noqa: E402
from csm.net.certs import make_pki  # noqa: E402

TARGET = 40.0  # MB, issue 21

RSS = """
def rss():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024.0
"""

#: (label, statement) run in order in one fresh interpreter
LAYERS = (
    ("the interpreter alone", "pass"),
    ("twistd (twisted.scripts.twistd)", "import twisted.scripts.twistd"),
    ("the reactor (twisted.internet.tcp brings pyOpenSSL and cryptography for TLS)",
     "import twisted.internet.reactor"),
    ("twistd's plugin discovery (every IServiceMaker module)",
     "from twisted.plugin import getPlugins\nfrom twisted.application.service import IServiceMaker\n"
     "list(getPlugins(IServiceMaker))"),
    ("TLS options, endpoints, application.internet",
     "import twisted.internet.ssl, twisted.internet.endpoints, twisted.application.internet"),
    ("csm's compute modules (csm.tap.compute, csm.roles.compute)", "import csm.tap.compute, csm.roles.compute"),
)

SERVER = """
import sys
from twisted.internet import protocol, reactor, ssl
ca = ssl.Certificate.loadPEM(open(sys.argv[1], "rb").read())
cred = ssl.PrivateCertificate.loadPEM(open(sys.argv[2], "rb").read())
class Echo(protocol.Protocol):
    def dataReceived(self, data):
        self.transport.write(data)
port = reactor.listenSSL(0, protocol.Factory.forProtocol(Echo), cred.options(ca), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
"""

CLIENT = """
import sys
from twisted.internet import protocol, reactor, ssl
ca = ssl.Certificate.loadPEM(open(sys.argv[1], "rb").read())
cred = ssl.PrivateCertificate.loadPEM(open(sys.argv[2], "rb").read())
class Once(protocol.Protocol):
    def connectionMade(self):
        self.transport.write(b"up")
    def dataReceived(self, data):
        print(data.decode(), flush=True)
options = ssl.optionsForClientTLS("localhost", trustRoot=ca, clientCertificate=cred)
reactor.connectSSL("127.0.0.1", int(sys.argv[3]), protocol.ClientFactory.forProtocol(Once), options)
reactor.run()
"""


def layers():
    """[(label, cumulative RSS in MB)] from one fresh interpreter."""
    code = [RSS, "steps = []"]
    for label, statement in LAYERS:
        code += [statement, "steps.append((%r, rss()))" % label]
    code.append("import json\nprint(json.dumps(steps))")
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], cwd=ROOT, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, check=True, text=True, env=dict(os.environ, PYTHONPATH=ROOT))
    return json.loads(out.stdout.splitlines()[-1])


def memory_map(pid):
    """(anonymous MB, file-backed MB, {mapped file: MB}) of a process."""
    files, anon, current = collections.Counter(), 0, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                current = parts[5] if len(parts) > 5 and parts[5].startswith("/") else None
            elif parts[0] == "Rss:" and current:
                files[current] += int(parts[1])
            elif parts[0] == "Anonymous:":
                anon += int(parts[1])
                if current:  # a library's written (copied) pages: anonymous, not the file's
                    files[current] -= int(parts[1])
    return anon / 1024.0, sum(files.values()) / 1024.0, {k: v / 1024.0 for k, v in files.items()}


def without_pyopenssl():
    """RSS (MB) of twistd's and the reactor's imports with pyOpenSSL unimportable (Twisted
    then has no TLS): the share of pyOpenSSL and cryptography, by difference."""
    code = RSS + ("import sys\nsys.modules['OpenSSL'] = None\n"
                  "import twisted.scripts.twistd, twisted.internet.reactor\nprint(rss())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         check=True, text=True)
    return float(out.stdout.split()[-1])


def floor(tls_dir, settle):
    """RSS (MB) and memory map of a bare reactor holding one idle TLS connection."""
    ca, cred = make_pki(tls_dir)
    server = client = None
    try:
        server = subprocess.Popen([sys.executable, "-c", SERVER, ca, cred], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, text=True)
        port = server.stdout.readline().strip()
        client = subprocess.Popen([sys.executable, "-c", CLIENT, ca, cred, port], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, text=True)
        if client.stdout.readline().strip() != "up":
            raise RuntimeError("the floor's TLS connection did not come up")
        time.sleep(settle)
        return cpu_rss(client.pid)[1], memory_map(client.pid)
    finally:
        for process in (client, server):
            if process is not None:
                process.kill()
                process.wait()


def compute(run_dir, settle, idle, tls):
    """RSS (MB), memory map and idle CPU (%) of a compute of a running LocalCluster."""
    quiet = {role: dict(QUIET) for role in ("master", "aggregator", "compute")}
    quiet["compute"].update({"prolog": "none", "epilog": "none", "manhole.socket": ""})  # CAST's defaults
    cluster = LocalCluster(run_dir, computes=1, aggregators=1, utilities=0, tls=tls, extra=quiet)
    try:
        cluster.start()
        client = Client(cluster.daemons["master"].socket)
        try:  # registered: its inventory is in the database
            cluster.wait_for(lambda: client.call("node_attributes_query", {"node_names": ["c01"]})["results"],
                             timeout=60, what="c01's inventory")
        finally:
            client.close()
        time.sleep(settle)
        pid = cluster.daemons["c01"].process.pid
        before = cpu_rss(pid)[0]
        time.sleep(idle)
        cpu, rss = cpu_rss(pid)
        return rss, memory_map(pid), 100.0 * (cpu - before) / idle, len(os.listdir("/proc/%d/task" % pid))
    finally:
        cluster.stop()


def _libraries(files, count=4):
    top = sorted(files.items(), key=lambda item: -item[1])[:count]
    return ", ".join("%s %.1f MB" % (os.path.basename(path), size) for path, size in top)


def command_line(args):
    """The command that reruns this run, as RESULTS.md shows it."""
    return "python bench/compute_rss.py --idle %g --settle %g --record" % (args.idle, args.settle)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds the compute's idle CPU is taken over")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start before measuring")
    parser.add_argument("--record", action="store_true", help="append the figures to bench/RESULTS.md")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    stop_on_signals()
    run_dir = tempfile.mkdtemp(prefix="csm-bench-rss-")
    try:
        steps = layers()
        no_tls = without_pyopenssl()
        floor_rss, (floor_anon, floor_file, floor_files) = floor(os.path.join(run_dir, "floor-tls"), args.settle)
        plain = compute(os.path.join(run_dir, "cluster"), args.settle, args.idle, tls=False)
        rss, (anon, mapped, files), cpu, threads = compute(os.path.join(run_dir, "cluster-tls"), args.settle,
                                                           args.idle, tls=True)
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    previous, parts = 0.0, []
    for label, value in steps:
        parts.append("%s %s%.1f MB" % (label, "+" if previous else "", value - previous))
        previous = value
    plain_rss, (plain_anon, plain_mapped, plain_files), plain_cpu, plain_threads = plain
    verdict = "met" if rss <= TARGET else "not met, %.1fx the target" % (rss / TARGET)
    plain_verdict = "met" if plain_rss <= TARGET else "not met, %.1fx the target" % (plain_rss / TARGET)
    floor_verdict = ("the floor alone is %.1f MB over it" % (floor_rss - TARGET) if floor_rss > TARGET
                     else "%.1f MB under the floor's" % (TARGET - floor_rss))
    lines = [
        "imports, one fresh interpreter, RSS after each step: " + "; ".join(parts) + "; total %.1f MB" % previous,
        "pyOpenSSL and cryptography (which twisted.internet.tcp imports whenever pyOpenSSL is installed): "
        "twistd and the reactor take %.1f MB with them, %.1f MB without them (then no TLS): %.1f MB theirs"
        % (steps[2][1], no_tls, steps[2][1] - no_tls),
        "floor: bare Python, the Twisted reactor and one idle mutually verified pyOpenSSL TLS connection: "
        "%.1f MB (anonymous %.1f MB, mapped libraries %.1f MB: %s)" % (floor_rss, floor_anon, floor_file,
                                                                       _libraries(floor_files)),
        "csm-compute idle, CAST's default config (twistd, no TLS: no pyOpenSSL, a plain link to 1 aggregator, "
        "default buckets, no admin shell, no exporter): %.1f MB (anonymous %.1f MB, mapped libraries %.1f MB: %s); "
        "%d threads; CPU over %.0f s idle %.2f%%"
        % (plain_rss, plain_anon, plain_mapped, _libraries(plain_files), plain_threads, args.idle, plain_cpu),
        "csm-compute idle with TLS links (the same, ssl files set): "
        "%.1f MB (anonymous %.1f MB, mapped libraries %.1f MB: %s); %d threads; CPU over %.0f s idle %.2f%%"
        % (rss, anon, mapped, _libraries(files), threads, args.idle, cpu),
        "target: compute idle RSS at most %.1f MB: default config (no TLS) %.1f MB: %s; with TLS %.1f MB: %s (%s)"
        % (TARGET, plain_rss, plain_verdict, rss, verdict, floor_verdict),
        "load average %.1f (RSS is little affected by load)" % os.getloadavg()[0],
    ]
    for line in lines:
        print(line)
    if args.record:
        record("compute_rss", command_line(args), lines)


if __name__ == "__main__":
    main()
