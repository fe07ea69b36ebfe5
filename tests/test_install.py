"""A site's install: ``pip install .`` (not editable) into a fresh virtualenv gives working twistd
plugins and finds its data where it was installed.

The fresh virtualenv has no access to the system's or the test's packages. Its dependencies
come, with no index and no network, from wheels packed here from the distributions installed in
the virtualenv running the tests (their RECORD files list what each one installed), so the
install takes seconds and needs no registry. The virtualenv is made without pip (ensurepip took a third
of the test's time): the tests' pip installs into it with ``--python``.
"""

import base64
import csv
import glob
import hashlib
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile

from twisted.trial.unittest import SynchronousTestCase

from csm.cluster import PROJECT

ROLES = ("master", "aggregator", "utility", "compute")


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def pack_wheel(dist, directory):
    """A wheel of the installed distribution ``dist`` (its RECORD's files but scripts and
    byte-code: pip makes its own), written to ``directory``; the wheel's path."""
    info = next(str(f).split("/")[0] for f in dist.files if str(f).endswith(".dist-info/RECORD"))
    tags = [line.split(":", 1)[1].strip() for line in (dist.read_text("WHEEL") or "").splitlines()
            if line.startswith("Tag:")]
    parts = zip(*(tag.split("-") for tag in tags or ["py3-none-any"]))  # py2-none-any + py3-none-any:
    tag = "-".join(".".join(dict.fromkeys(values)) for values in parts)   # py2.py3-none-any
    name = dist.metadata["Name"].replace("-", "_").replace(".", "_")
    path = os.path.join(directory, "%s-%s-%s.whl" % (name, dist.version, tag))
    skip = {info + "/" + n for n in ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")}
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as wheel:
        for file in dist.files:
            relative = str(file)
            if relative.startswith("..") or "__pycache__" in relative or relative in skip:
                continue
            source = file.locate()
            if not os.path.isfile(source):
                continue
            with open(source, "rb") as f:
                data = f.read()
            entry = zipfile.ZipInfo(relative)
            entry.external_attr = (os.stat(source).st_mode & 0o777 | 0o100000) << 16
            wheel.writestr(entry, data)
            writer.writerow([relative, _record_hash(data), len(data)])
        writer.writerow([info + "/RECORD", "", ""])
        wheel.writestr(info + "/RECORD", record.getvalue())
    return path


def wheelhouse(directory):
    """Wheels of every distribution in this virtualenv but csm itself and pip."""
    site = sysconfig.get_path("purelib")
    os.makedirs(directory, exist_ok=True)
    for dist in importlib.metadata.distributions(path=[site]):
        if dist.metadata["Name"].lower() not in ("csm", "pip") and dist.files:
            pack_wheel(dist, directory)
    return directory


class FreshInstall:
    """``pip install .`` of this checkout into a new virtualenv under ``root``."""

    def __init__(self, root):
        self.root = root
        self.venv = os.path.join(self.root, "venv")
        self.work = os.path.join(self.root, "work")  # where commands run: not the checkout
        os.makedirs(self.work)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
        self.env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
                        PATH=os.path.join(self.venv, "bin") + os.pathsep + self.env.get("PATH", ""))
        self.env.pop("NOTIFY_SOCKET", None)
        # no pip of its own (ensurepip takes most of the time): this pip installs into it (--python)
        self.run(sys.executable, "-m", "venv", "--without-pip", self.venv)
        wheels = wheelhouse(os.path.join(self.root, "wheels"))
        # a copy of the checkout: pip's build leaves build/ and *.egg-info behind it
        source = os.path.join(self.root, "source")
        shutil.copytree(PROJECT, source, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "_trial_temp*", "__pycache__", "*.egg-info", "build", "dist", ".hypothesis", "run"))
        self.run(sys.executable, "-m", "pip", "--python", self.bin("python"), "install", "--no-compile", "--no-index",
                 "--find-links", wheels, source)
        self.site = self.output(self.bin("python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")

    def bin(self, name):
        return os.path.join(self.venv, "bin", name)

    def run(self, *argv):
        result = subprocess.run(argv, cwd=self.work, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
        if result.returncode != 0:
            raise AssertionError("%s exited %d:\n%s" % (" ".join(argv), result.returncode, result.stdout[-3000:]))
        return result

    def output(self, *argv):
        return self.run(*argv).stdout.strip()


class PlainInstallTests(SynchronousTestCase):
    """One test, so that the suite's parallel workers make one install, not one each."""

    def test_plain_install(self):
        root = tempfile.mkdtemp(prefix="csm-install-")
        self.addCleanup(shutil.rmtree, root, True)  # also after a failed or interrupted install
        self.install = FreshInstall(root)
        for check in (self.check_twistd_lists_the_four_roles, self.check_everything_comes_from_the_install,
                      self.check_conf_files_installed, self.check_the_plugin_cache_beside_the_installed_plugins,
                      self.check_the_commands_are_installed):
            check()

    def check_twistd_lists_the_four_roles(self):
        help_text = self.install.output(self.install.bin("twistd"), "--help")
        for role in ROLES:
            self.assertIn("csm-%s" % role, help_text)

    def check_everything_comes_from_the_install(self):
        where = self.install.output(self.install.bin("python"), "-c", "; ".join([
            "import csm, csm.db.schema as s, csm.db.admin as a, twisted.plugins.csm_plugins as p, sdnotify",
            "print(csm.__file__); print(p.__file__); print(a.DEFAULT_RAS_TYPES)",
            "print(s.SCHEMA_VERSION, len(s.VERSIONS)); print(sdnotify.__file__)"])).splitlines()
        site = self.install.site
        self.assertEqual(where[0], os.path.join(site, "csm", "__init__.py"))
        self.assertEqual(where[1], os.path.join(site, "twisted", "plugins", "csm_plugins.py"))
        self.assertEqual(where[2], os.path.join(self.install.venv, "share", "etc", "csm_ras_type_data.csv"))
        self.assertTrue(os.path.isfile(where[2]))
        from csm.db import schema
        self.assertEqual(where[3], "%s %d" % (schema.SCHEMA_VERSION, len(schema.VERSIONS)))
        self.assertTrue(where[4].startswith(site))  # a dependency setup.py names
        shipped = sorted(os.path.basename(p) for p in glob.glob(os.path.join(PROJECT, "csm", "db", "schema", "*.sql")))
        self.assertEqual(sorted(os.listdir(os.path.join(site, "csm", "db", "schema"))), shipped)

    def check_conf_files_installed(self):
        share = os.path.join(self.install.venv, "share", "etc")
        for name in ("csm_master.cfg", "csm_compute.cfg", "csm_api.acl", "csm_api.cfg", "csm_ras_type_data.csv"):
            self.assertTrue(os.path.isfile(os.path.join(share, name)), name)
        for role in ROLES:
            self.assertTrue(os.path.isfile(os.path.join(share, "systemd", "csmd-%s.service" % role)))
        self.assertTrue(os.access(os.path.join(share, "prologs", "privileged_prolog"), os.X_OK))

    def check_the_plugin_cache_beside_the_installed_plugins(self):
        cache = os.path.join(self.install.site, "twisted", "plugins", "dropin.cache")
        with open(cache, "rb") as f:  # written by the first twistd
            self.assertIn(b"csm_plugins", f.read())

    def check_the_commands_are_installed(self):
        for command in ("csm-certs", "csm-db", "csm_node_attributes_query", "csm_infrastructure_health_check"):
            self.assertTrue(os.access(self.install.bin(command), os.X_OK), command)
        self.assertIn("subjectAltName", self.install.output(self.install.bin("csm-certs"), "--help"))
        # setup.py's launcher: Python without the site module, the package from the install
        program = self.install.bin("csm_node_attributes_query")
        with open(program) as f:
            self.assertEqual(f.readline(), "#!/bin/sh\n")
        result = subprocess.run([program, "-n", "c01"], cwd=self.install.work, stdin=subprocess.DEVNULL,
                                env=dict(self.install.env, CSM_SOCKET="/nonexistent/csm.sock", PYTHONVERBOSE="1"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(result.returncode, 18, result.stdout)  # no daemon
        self.assertIn(os.path.join(self.install.site, "csm", "__init__.py"), result.stderr)
        self.assertNotIn("# code object from '%s" % os.path.join(sys.prefix, "lib"), result.stderr)
        self.assertNotRegex(result.stderr, r"import 'site'")
