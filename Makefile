# loggen: `make run` shows the whole loop on loopback; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PORTS ?= 55514-55515
DEMO_RATE ?= 200k
DEMO_DURATION ?= 10s
DEMO_WORKERS ?= 2
DEMO_DASHBOARD_PORT ?= 8080
BENCH_SECONDS ?= 2
BENCH_REPEATS ?= 3
YARDSTICK ?= $(wildcard ../shared/yardstick)
# `make install` (root) puts loggen here, in a venv of INSTALL_PYTHON (the system's: the unit's
# throw-away user must be able to run it, and cannot see /root or /home).
INSTALL_PYTHON ?= /usr/bin/python3
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= /etc/systemd/system
LIBDIR ?= /opt/loggen
DOCDIR ?= $(PREFIX)/share/doc/loggen

.PHONY: venv run test test-fast test-coverage bench docs-sources docs-scenarios lint build build-dev clean install uninstall \
	test-performance run-test optimize-system restore-system soak fuzz

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# The whole loop on loopback: 2 workers send to 2 ports, the local sink receives and counts,
# the dashboard shows both at http://127.0.0.1:$(DEMO_DASHBOARD_PORT)/ while it runs.
run: venv
	$(BIN)/loggend run --config config/loggen.yaml --target 127.0.0.1 --ports $(DEMO_PORTS) \
		--workers $(DEMO_WORKERS) --rate $(DEMO_RATE) --duration $(DEMO_DURATION) --local-sink \
		--dashboard 127.0.0.1:$(DEMO_DASHBOARD_PORT)

test: venv
	@scripts/system-deps.sh
	$(BIN)/python -m pytest

# Under 30 s: everything but the slow, root-only and browser tests (no system packages installed).
test-fast: venv
	$(BIN)/python -m pytest -q -m "not slow and not root and not browser"

# The property tests of everything that reads outside input, with thousands of examples each
# (make test runs a few hundred); FUZZ_EXAMPLES sets how many.
FUZZ_EXAMPLES ?= 20000
fuzz: venv
	HYPOTHESIS_PROFILE=fuzz FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -m fuzz -p no:cacheprovider

# The whole suite under coverage (branch), children and forks included; a total and reports/coverage/index.html.
test-coverage: build-dev
	@scripts/system-deps.sh
	rm -f .coverage .coverage.*
	$(BIN)/coverage run -m pytest -q
	$(BIN)/coverage combine -q
	@echo "total coverage (statements and branches): $$($(BIN)/coverage report --format=total --precision=1) %"
	$(BIN)/coverage html -q -d reports/coverage
	@echo "coverage report: reports/coverage/index.html"

# A wheel and an sdist in dist/ (the dashboard inside).
build: build-dev
	rm -rf dist
	@$(BIN)/python -m build --outdir dist . >build.log 2>&1 || { cat build.log; exit 1; }
	@rm -f build.log; ls dist

# Editable install with the dev tools (build, coverage, py-spy for `loggend profile`). Python has no race
# detector build; scripts/loggend-dev runs loggend in Python's development mode instead (-X dev: faulthandler
# on crashes and hangs, debug memory allocators, warnings shown, asyncio debug).
build-dev: $(VENV)/.dev
$(VENV)/.dev: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,lint,dev]'
	touch $@

# The 30-minute performance test against the targets (DURATION=, RATE=, WORKERS= to change).
test-performance: venv
	DURATION=$(or $(DURATION),30m) scripts/test.sh

# The soak: a long run into the local sink (DURATION=, RATE=, WORKERS= to change), watched for growing
# memory, descriptors and threads, and inexact counts; PASS / FAIL and reports/soak-DATE/soak.json.
soak: venv
	$(BIN)/loggend soak --duration $(or $(DURATION),1h) --rate $(or $(RATE),200k) --workers $(or $(WORKERS),40)

# The same for 5 minutes.
run-test: venv
	DURATION=5m scripts/test.sh

# Kernel network tuning (root); the previous values are saved and put back by restore-system.
optimize-system: venv
	$(BIN)/loggend tune apply

restore-system: venv
	$(BIN)/loggend tune restore

# docs/sources/<family>.md from the code (a test holds them equal)
docs-sources: venv
	$(BIN)/python -m loggend.tools.sourcedocs docs/sources

# docs/scenarios.md from the code (a test holds it equal)
docs-scenarios: venv
	$(BIN)/python -m loggend.tools.scenarios docs/scenarios.md

bench: venv
	$(BIN)/loggend bench --seconds $(BENCH_SECONDS) --repeats $(BENCH_REPEATS) --yardstick '$(YARDSTICK)'

lint: venv
	$(BIN)/ruff check loggend tests
	$(BIN)/mypy

# Installs loggend into its own venv of INSTALL_PYTHON (refused in one line when the unit's user could
# not run it), links $(PREFIX)/bin/loggend, the config (never over an existing one), the systemd units
# (loggen.service, and loggen@.service for one instance per /etc/loggen/NAME.yaml) and the docs, then
# runs the installed loggend as an unprivileged user. Run as root.
UNIT_PATHS = -e 's\#/usr/local/bin/loggend\#$(PREFIX)/bin/loggend\#g' -e 's\#/etc/loggen\#$(SYSCONFDIR)/loggen\#g' \
	-e 's\#/usr/local/share/doc/loggen\#$(DOCDIR)\#g'
install:
	@scripts/install-check python $(INSTALL_PYTHON)
	umask 022 && $(INSTALL_PYTHON) -m venv --clear $(LIBDIR)
	umask 022 && $(LIBDIR)/bin/pip install --quiet .
	install -d $(PREFIX)/bin $(SYSCONFDIR) $(UNITDIR) $(DOCDIR)
	ln -sfn $(LIBDIR)/bin/loggend $(PREFIX)/bin/loggend
	@if [ -e $(SYSCONFDIR)/loggen.yaml ]; then echo "keeping the existing $(SYSCONFDIR)/loggen.yaml"; \
	else install -m 0644 config/loggen.yaml $(SYSCONFDIR)/loggen.yaml; fi
	sed $(UNIT_PATHS) systemd/loggen.service > $(UNITDIR)/loggen.service
	sed $(UNIT_PATHS) systemd/loggen@.service > $(UNITDIR)/loggen@.service
	chmod 0644 $(UNITDIR)/loggen.service $(UNITDIR)/loggen@.service
	install -m 0644 README.md config/loggen.yaml $(DOCDIR)/
	@scripts/install-check installed $(PREFIX)/bin/loggend
	@if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed $$($(PREFIX)/bin/loggend --version) from $(INSTALL_PYTHON): edit $(SYSCONFDIR)/loggen.yaml, then: systemctl start loggen"

uninstall:
	@if [ -d /run/systemd/system ]; then systemctl disable --now loggen 2>/dev/null || true; \
	systemctl stop 'loggen@*' 2>/dev/null || true; fi
	rm -f $(PREFIX)/bin/loggend $(UNITDIR)/loggen.service $(UNITDIR)/loggen@.service
	rm -rf $(LIBDIR) $(DOCDIR)
	@if cmp -s config/loggen.yaml $(SYSCONFDIR)/loggen.yaml; then rm -f $(SYSCONFDIR)/loggen.yaml; \
	elif [ -e $(SYSCONFDIR)/loggen.yaml ]; then echo "kept $(SYSCONFDIR)/loggen.yaml (edited)"; fi
	@if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf $(VENV) build dist reports *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
