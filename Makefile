# The two commands a new user runs: `make demo` and `make test`.
# Both build their own virtualenv in $(VENV) and install everything they need.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
NODES ?= 4

.PHONY: demo test venv postgres pamtester iproute2 prometheus slurm patroni etcd systemd compile clean bench

venv: $(VENV)/.installed

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/pip install -q -e '.[test]' --config-settings editable_mode=compat
	@# setuptools' distutils shim: a .pth that imports a module at every interpreter start
	@# (each csm_* command); nothing here imports distutils
	rm -f $(VENV)/lib/python*/site-packages/distutils-precedence.pth
	touch $@

postgres:
	@sh tools/ensure-package.sh postgresql required 'command -v initdb || ls /usr/lib/postgresql/*/bin/initdb'

pamtester:
	@sh tools/ensure-package.sh pamtester optional 'command -v pamtester'

# systemd-analyze checks the units in conf/systemd (tests/test_systemd.py)
systemd:
	@sh tools/ensure-package.sh systemd optional 'command -v systemd-analyze'

# ip, for hosts in network namespaces (csm-demo --hosts, the network fault tests)
iproute2:
	@sh tools/ensure-package.sh iproute2 optional 'command -v ip'

# Prometheus and promtool (one Debian package): the demo runs it where installed; the tests
# check the rules in conf/prometheus and have it scrape a tree. `make demo PROMETHEUS=1` installs it.
prometheus:
	@sh tools/ensure-package.sh prometheus optional 'command -v prometheus && command -v promtool'

# Slurm (slurmctld, slurmd, the client commands, munge) for the Slurm system tests, which skip
# naming the package where it is missing.
slurm:
	@sh tools/ensure-package.sh slurm-wlm optional 'test -x /usr/sbin/slurmctld -a -x /usr/sbin/slurmd -a -x /usr/sbin/munged && command -v sbatch'

# Patroni and etcd (Debian packages): the database made highly available, for `make demo HA=1`
# and the tests of high availability (which skip, naming the package, where it is missing).
patroni:
	@sh tools/ensure-package.sh patroni optional 'command -v patroni'

etcd:
	@sh tools/ensure-package.sh etcd-server optional 'command -v etcd'

# Byte-code written ahead, even where PYTHONDONTWRITEBYTECODE is set: every csm_* command
# starts a fresh interpreter, and compiling the package each time costs it ~10 ms.
compile: venv
	@$(PY) -m compileall -q csm twisted/plugins

demo: venv postgres compile $(if $(findstring --hosts,$(DEMO_ARGS)),iproute2) $(if $(PROMETHEUS),prometheus) $(if $(HA),patroni etcd)
	$(VENV)/bin/csm-demo --nodes $(NODES) $(if $(HA),--ha) $(DEMO_ARGS)

test: venv postgres pamtester iproute2 prometheus slurm patroni etcd systemd compile
	$(PY) tools/run_tests.py $(TESTS)

clean:
	rm -rf $(VENV) _trial_temp* build *.egg-info
