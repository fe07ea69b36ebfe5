"""What a csm_* command and a compute daemon import: only what they use.

Each check runs a fresh interpreter (this one has imported everything) and
looks at ``sys.modules`` after the imports in question.
"""

import json
import os
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def modules_after(code):
    """The module names a fresh interpreter holds after running ``code``."""
    script = code + "\nimport sys\nloaded = sorted(sys.modules)\nimport json\nprint(json.dumps(loaded))\n"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(out.stderr)
    return set(json.loads(out.stdout.splitlines()[-1]))


def loaded(modules, *packages):
    return sorted(name for name in modules if name.split(".")[0] in packages)


class CommandPathTests(SynchronousTestCase):
    def test_command_imports_no_daemon_libraries(self):
        """The command's module, its registry, formats and client: no reactor, TLS, attrs,
        host ranges, argparse (a plain line needs none), what a random id would bring, or the
        json package and re (the wire's codec is the C one), enum (the error codes and header
        values are plain ints), or the cgroup code."""
        modules = modules_after("import csm.cli.main")
        self.assertEqual(loaded(modules, "twisted", "OpenSSL", "cryptography", "attr", "attrs", "ClusterShell",
                                "psycopg2", "txpostgres", "prometheus_client", "shutil", "random", "socket",
                                "argparse", "gettext", "re", "json", "signal", "enum"), [])

    def test_one_call_imports_nothing_heavy(self):
        """Reading a plain command line and failing to connect: still none of them."""
        modules = modules_after(
            "import io, os\nos.environ['CSM_SOCKET'] = '/nonexistent/csm.sock'\n"
            "from csm.cli.main import REGISTRY, run\n"
            "out = io.StringIO()\n"
            "assert run(REGISTRY.by_cli['csm_node_attributes_query'], ['-n', 'c01', '-l', '5'], out) == 18, "
            "out.getvalue()\n")
        self.assertEqual(loaded(modules, "twisted", "attr", "attrs", "ClusterShell", "shutil", "socket", "argparse"),
                         [])

    def test_command_loads_its_own_definition_only(self):
        """A command finds its entry through csm/api/cli_index.py: the other API families, their
        output formats, the registry of every API and collections stay out."""
        modules = modules_after(
            "from csm.cli.main import main\nfrom csm.api import cli_index\n"
            "assert cli_index.find('csm_node_attributes_query').name == 'node_attributes_query'\n"
            "import csm.api.commands\nassert 'REGISTRY' not in vars(csm.api.commands)\n")
        self.assertEqual(sorted(name for name in modules if name in (
            "csm.api.wm_commands", "csm.api.bb_commands", "csm.api.diag_commands", "csm.api.switch_commands",
            "csm.api.cgroup_commands", "csm.cli.switch_formats", "csm.cli.diag_formats", "collections")), [])

    def test_allocation_command_loads_no_other_family(self):
        """csm_allocation_create and csm_allocation_delete find their entries in
        csm/api/lifecycle_commands.py, which builds on the registry alone: the node and RAS commands
        (csm/api/commands.py), the other allocation and step commands and the other families stay out."""
        modules = modules_after(
            "from csm.cli.main import main\nfrom csm.api import cli_index\n"
            "assert cli_index.find('csm_allocation_create').name == 'allocation_create'\n"
            "assert cli_index.find('csm_allocation_delete').name == 'allocation_delete'\n")
        self.assertIn("csm.api.lifecycle_commands", modules)
        self.assertEqual(sorted(name for name in modules if name in (
            "csm.api.commands", "csm.api.wm_commands", "csm.api.bb_commands", "csm.api.diag_commands",
            "csm.api.switch_commands", "csm.api.cgroup_commands")), [])

    def test_host_ranges_still_expand(self):
        """ClusterShell comes in when a value has a range."""
        modules = modules_after(
            "from csm.cli.main import REGISTRY, expand_ranges\n"
            "command = REGISTRY.by_cli['csm_node_attributes_query']\n"
            "assert expand_ranges(command, {'node_names': 'c[01-02]'}) == {'node_names': ['c01', 'c02']}\n")
        self.assertIn("ClusterShell", modules)


def run_program(program, *args):
    """``program`` run as a user runs it, its daemon absent, timing its imports: (status,
    output, the modules it imported). Without PYTHONPATH (trial's parallel workers set it)."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    out = subprocess.run([program] + list(args), env=dict(env, CSM_SOCKET="/nonexistent/csm.sock",
                                                          PYTHONPROFILEIMPORTTIME="1"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         timeout=120)
    modules = {line.rsplit("|", 1)[1].strip() for line in out.stderr.splitlines()
               if line.startswith("import time:") and not line.endswith("imported package")}
    return out.returncode, out.stdout, modules


class LauncherTests(SynchronousTestCase):
    """The csm_* programs as setup.py writes them (``LAUNCHER``; ``make venv`` installs them)."""

    program = os.path.join(os.path.dirname(sys.executable), "csm_node_attributes_query")

    def setUp(self):
        with open(self.program) as f:
            if f.readline() != "#!/bin/sh\n":
                self.fail("%s is not setup.py's launcher: run make venv" % self.program)

    def test_program_starts_python_without_site_and_imports_the_command_path_only(self):
        status, output, modules = run_program(self.program, "-n", "c01")
        self.assertEqual(status, 18, output)  # CSMERR_INIT_LIB_FAILED: no daemon
        self.assertIn("Can not connect to daemon at /nonexistent/csm.sock", output)
        self.assertIn("csm.cli.main", modules)
        self.assertEqual(loaded(modules, "site", "sitecustomize", "twisted", "OpenSSL", "attr", "attrs", "collections",
                                "json", "re", "enum", "argparse", "socket", "os", "_collections_abc"), [])
        self.assertEqual(sorted(name for name in modules if name.startswith("csm.api.") and name not in (
            "csm.api.cli_index", "csm.api.registry", "csm.api.commands")), [])

    def test_program_linked_elsewhere_finds_its_prefix(self):
        """Run through a symbolic link in another directory (a site may link the programs into
        /usr/bin): the site-packages beside the program's own bin/, still without site."""
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="csm-launcher-")
        self.addCleanup(shutil.rmtree, directory, True)
        prefix = os.path.join(directory, "prefix")
        site = os.path.join(prefix, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
        os.makedirs(site)
        os.symlink(os.path.join(ROOT, "csm"), os.path.join(site, "csm"))
        program = self.stripped_copy(os.path.join(prefix, "bin"))
        os.mkdir(os.path.join(directory, "elsewhere"))
        link = os.path.join(directory, "elsewhere", "csm_node_attributes_query")
        os.symlink(os.path.relpath(program, os.path.dirname(link)), link)
        status, output, modules = run_program(link, "-n", "c01")
        self.assertEqual(status, 18, output)
        self.assertIn("csm.cli.main", modules)
        self.assertNotIn("site", modules)

    def test_a_dependency_only_site_finds_is_found(self):
        """ClusterShell not beside the program (a venv made --system-site-packages, where pip found
        it in the system's site-packages, or a .pth path): a host range runs site and expands
        (it was a ModuleNotFoundError traceback; only csm's own import fell back to site)."""
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="csm-launcher-")
        self.addCleanup(shutil.rmtree, directory, True)
        site = os.path.join(directory, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")
        os.makedirs(site)
        os.symlink(os.path.join(ROOT, "csm"), os.path.join(site, "csm"))  # csm alone
        program = self.stripped_copy(os.path.join(directory, "bin"))
        status, output, modules = run_program(program, "-n", "c[01-02]")
        self.assertEqual(status, 18, output)  # no daemon: the range expanded
        self.assertIn("site", modules)
        self.assertIn("ClusterShell.NodeSet", modules)

    def stripped_copy(self, directory):
        """The program copied into ``directory`` without the source tree an editable install adds."""
        os.makedirs(directory, exist_ok=True)
        copy = os.path.join(directory, "csm_node_attributes_query")
        with open(self.program) as f, open(copy, "w") as out:
            out.writelines(line for line in f if not line.startswith("sys.path.append('"))
        os.chmod(copy, 0o755)
        return copy

    def test_program_elsewhere_falls_back_to_site(self):
        """Copied where no site-packages lies beside its bin/ (and without the source tree an
        editable install adds): the site module finds the package."""
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="csm-launcher-")
        self.addCleanup(shutil.rmtree, directory, True)
        copy = self.stripped_copy(os.path.join(directory, "bin"))
        status, output, modules = run_program(copy, "-n", "c01")
        self.assertEqual(status, 18, output)
        self.assertIn("site", modules)
        self.assertIn("csm.cli.main", modules)


class ComputePathTests(SynchronousTestCase):
    def test_compute_role_imports_no_master_or_exporter_parts(self):
        """The compute daemon's module: not the aggregator, the database driver, Prometheus
        and its web server, or the admin shell (those come only when configured)."""
        modules = modules_after("import csm.tap.compute, csm.roles.compute")
        self.assertEqual(sorted(name for name in modules if name in (
            "csm.roles.aggregator", "csm.roles.master", "psycopg2", "txpostgres", "twisted.web.server",
            "csm.metrics_http", "csm.manhole", "twisted.conch", "pynvml", "prometheus_client")), [])

    def test_compute_role_imports_no_database_code(self):
        """The compute's handlers (csm.api.compute_handlers) bring none of the master's sides of
        their APIs, which read the database: no csm.db, no allocation, bb, cgroup, diag or
        recovery handler module."""
        modules = modules_after("import csm.tap.compute, csm.roles.compute")
        self.assertIn("csm.api.compute_handlers", modules)
        self.assertEqual(sorted(name for name in modules if name.split(".")[:2] == ["csm", "db"] or name in (
            "csm.api.allocation", "csm.api.bb", "csm.api.cgroup", "csm.api.diag", "csm.api.recovery")), [])

    def tls_libraries_of_compute(self, ssl):
        """The TLS libraries a fresh interpreter holds after twistd's order for a compute whose
        config has ``ssl``: its options parsed, its service made, then the reactor imported."""
        import shutil
        import tempfile
        directory = tempfile.mkdtemp(prefix="csm-lean-")
        self.addCleanup(shutil.rmtree, directory, True)
        with open(os.path.join(ROOT, "conf", "csm_compute.cfg")) as f:
            config = json.load(f)
        config["csm"]["net"]["local_client_listen"]["socket"] = os.path.join(directory, "csmd.sock")
        config["csm"]["net"]["ssl"] = ssl
        config["csm"]["log"].update(consoleLog=False, fileLog="none")
        path = os.path.join(directory, "csm_compute.cfg")
        with open(path, "w") as f:
            json.dump(config, f)
        script = ("import json, sys\nfrom csm.tap import compute\nopts = compute.Options()\n"
                  "opts.parseOptions(['--config', %r])\ncompute.makeService(opts)\n"
                  "from twisted.internet import reactor\n"
                  "print(json.dumps(sorted(name for name, module in sys.modules.items() if module is not None\n"
                  "                        and name.split('.')[0] in ('OpenSSL', 'cryptography', 'service_identity'))))"
                  % path)
        out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        if out.returncode != 0:
            raise AssertionError(out.stderr)
        return {name.split(".")[0] for name in json.loads(out.stdout.splitlines()[-1])}

    def test_compute_without_tls_leaves_out_pyopenssl(self):
        """CAST's default compute config (no ``ssl`` files): the reactor comes up without pyOpenSSL,
        cryptography and service_identity (about 13 MB of its RSS)."""
        self.assertEqual(self.tls_libraries_of_compute({"ca_file": "", "cred_pem": ""}), set())

    def test_compute_with_tls_has_pyopenssl(self):
        from csm.net.certs import make_pki
        import tempfile
        import shutil
        directory = tempfile.mkdtemp(prefix="csm-lean-pki-")
        self.addCleanup(shutil.rmtree, directory, True)
        ca, cred = make_pki(directory)
        self.assertEqual(self.tls_libraries_of_compute({"ca_file": ca, "cred_pem": cred}),
                         {"OpenSSL", "cryptography", "service_identity"})

    def test_only_a_compute_config_without_tls_leaves_it_out(self):
        """A config that does not load keeps pyOpenSSL (the daemon reports it later), and so does
        another role."""
        from csm.tap.options import compute_without_tls
        default = os.path.join(ROOT, "conf", "csm_compute.cfg")
        self.assertTrue(compute_without_tls(default, None))
        self.assertFalse(compute_without_tls("/nonexistent/csm_compute.cfg", None))
        self.assertFalse(compute_without_tls(default, "utility"))
        self.assertFalse(compute_without_tls(os.path.join(ROOT, "conf", "csm_aggregator.cfg"), None))

    def test_no_nvml_library_no_pynvml(self):
        """Without the NVML library, opening NVML fails with pynvml's message and never imports it."""
        modules = modules_after(
            "from csm.node import nvml\n"
            "nvml.LIBRARY = 'libcsm-test-absent-nvml.so.1'\n"
            "n = nvml.Nvml()\n"
            "assert n.open() is False and n.error == nvml.NO_LIBRARY, n.error\n")
        self.assertNotIn("pynvml", modules)


class ProgramExitTests(SynchronousTestCase):
    def test_program_ends_without_teardown_and_output_complete(self):
        """A command run as a program exits with its status once its output is flushed,
        without the interpreter's teardown (atexit handlers never run)."""
        script = ("import atexit, sys\natexit.register(lambda: print('teardown ran'))\n"
                  "import os\nos.environ['CSM_SOCKET'] = '/nonexistent/csm.sock'\n"
                  "from csm.cli.main import main\nsys.argv = ['csm_node_attributes_query', '-h']\nsys.exit(main())\n")
        out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        self.assertEqual(out.returncode, 2)  # CSMI_HELP
        self.assertTrue(out.stdout.startswith("usage: csm_node_attributes_query"), out.stdout)
        self.assertIn("--node_names", out.stdout)
        self.assertNotIn("teardown ran", out.stdout)

    def test_in_process_call_returns(self):
        """Given its arguments, ``main`` returns the status (tests and other callers)."""
        from csm.cli.main import main
        self.assertEqual(main(["csm_no_such_command"]), 11)


class ApiCountsTests(SynchronousTestCase):
    def test_plain_counts_read_as_the_exporters(self):
        """--dump_perf_data reads the same from plain counters as from the Prometheus registry."""
        from csm.api_counts import ApiCounts
        from csm.metrics import ApiStats
        from prometheus_client import CollectorRegistry
        plain, exported = ApiCounts(), ApiStats(CollectorRegistry(auto_describe=False))
        for api, seconds, ok in (("csm_node_attributes_query", 0.25, True), ("csm_node_attributes_query", 0.5, False),
                                 ("csm_allocation_create", 0.125, True), ("csm_node_attributes_query", 0.25, True)):
            plain.observe(api, seconds, ok)
            exported.observe(api, seconds, ok)
        self.assertEqual(plain.perf_data(), {"csm_node_attributes_query": {"ok": 2, "error": 1, "seconds": 1.0},
                                             "csm_allocation_create": {"ok": 1, "error": 0, "seconds": 0.125}})
        self.assertEqual(plain.perf_data(), exported.perf_data())

    def test_dump_perf_data_reads_the_routers_counts(self):
        from types import SimpleNamespace

        from csm.api import ctrl
        from csm.api_counts import ApiCounts
        counts = ApiCounts()
        counts.observe("csm_ras_event_create", 0.5, True)
        ctx = SimpleNamespace(daemon=SimpleNamespace(router=SimpleNamespace(stats=counts)))
        self.assertEqual(ctrl.handle(ctx, {"dump_perf": True})["perf_data"],
                         {"csm_ras_event_create": {"ok": 1, "error": 0, "seconds": 0.5}})
