# loggen: `make run` shows the whole loop on loopback; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PORTS ?= 55514-55515
DEMO_RATE ?= 20k
DEMO_DURATION ?= 60s
DEMO_WORKERS ?= 2
DEMO_DASHBOARD_PORT ?= 58080
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
MANDIR ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions

.PHONY: venv run test test-fast test-coverage bench docs docs-sources docs-scenarios reference man completion lint build build-dev \
	clean install uninstall test-performance run-test optimize-system restore-system soak fuzz

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# The whole loop on loopback: 2 workers send to 2 ports, the local sink receives and counts,
# the dashboard shows both at http://127.0.0.1:$(DEMO_DASHBOARD_PORT)/ while it runs. A minute at 20k ev/s
# (under a tenth of a 2-core laptop's CPU); Ctrl-C ends it early with the summary. DEMO_DURATION=, DEMO_RATE=,
# DEMO_WORKERS=, DEMO_PORTS=, DEMO_DASHBOARD_PORT= change it, e.g. make run DEMO_DURATION=5m DEMO_RATE=200k.
run: venv
	$(BIN)/loggend run --config config/loggen.yaml --target 127.0.0.1 --ports $(DEMO_PORTS) \
		--workers $(DEMO_WORKERS) --rate $(DEMO_RATE) --duration $(DEMO_DURATION) --local-sink \
		--dashboard 127.0.0.1:$(DEMO_DASHBOARD_PORT)

# Three passes: the independent tests spread over TEST_JOBS processes (pytest-xdist, work-stealing); then
# the timing-exact but light ones (marked serial) SERIAL_JOBS at a time, beside no other load; then the ones
# that take the whole machine or change what it runs under (marked alone) by themselves. At the end the 25
# slowest tests of all passes (reports/tests-*.xml).
# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: without it every `python -m loggend` the tests
# start compiles the package again (0.46 s of CPU instead of 0.26 s) and every pass rewrites every test's asserts.
# Three jobs per CPU: the suite's tests mostly wait (for a duration, a receiver, a trial: the 58 tests of
# 5 s or more take 620 s of wall time and 160 s of CPU), so fewer jobs left the machine idle (3 jobs on 2 CPUs:
# 335 s, 6 jobs: 218 s). The serial tests are light (20 s of CPU in 160 s): two jobs per CPU.
TEST_JOBS ?= $(shell echo $$(( $$(nproc) * 3 )))
SERIAL_JOBS ?= $(shell echo $$(( $$(nproc) * 2 )))
SERIAL_FILES = $(shell grep -rl --include='test_*.py' 'pytest.mark.serial' tests)
ALONE_FILES = $(shell grep -rl --include='test_*.py' 'pytest.mark.alone' tests)
# The real parts the tests drive (scripts/system-deps.sh: 20-25 s of downloads in a clean clone) are
# fetched while the venv installs.
test: export PYTHONDONTWRITEBYTECODE =
test:
	@scripts/system-deps.sh & deps=$$!; $(MAKE) -s --no-print-directory venv; made=$$?; wait $$deps; exit $$made
	@mkdir -p reports
	@rm -f reports/tests-*.xml
	@status=0; \
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not serial and not alone" \
		--junitxml=reports/tests-parallel.xml || status=$$?; \
	$(BIN)/python -m pytest -q -n $(SERIAL_JOBS) --dist worksteal -m serial --junitxml=reports/tests-serial.xml \
		$(SERIAL_FILES) || status=$$?; \
	$(BIN)/python -m pytest -q -m alone -p no:xdist --junitxml=reports/tests-alone.xml $(ALONE_FILES) \
		|| status=$$?; \
	$(BIN)/python -m tests.support.slowest 25 reports/tests-parallel.xml reports/tests-serial.xml \
		reports/tests-alone.xml; \
	exit $$status

# Everything but the slow, root-only and browser tests (no system packages installed), over TEST_JOBS
# processes: a few minutes on 2 CPUs.
test-fast: export PYTHONDONTWRITEBYTECODE =
test-fast: venv
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist worksteal -m "not slow and not root and not browser and not serial and not alone"
	$(BIN)/python -m pytest -q -n $(SERIAL_JOBS) -m "serial and not slow and not root and not browser" $(SERIAL_FILES)
	$(BIN)/python -m pytest -q -p no:xdist -m "alone and not slow and not root and not browser" $(ALONE_FILES)

# The property tests of everything that reads outside input, with thousands of examples each
# (make test runs a hundred); FUZZ_EXAMPLES sets how many.
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

# The manual: docs/ (nav in mkdocs.yml) built into build/site; --strict fails on a broken link or anchor and on
# a page the nav leaves out.
docs: $(VENV)/.docs
	$(BIN)/mkdocs build --strict --quiet --site-dir build/site
	@echo "manual: build/site/index.html"
$(VENV)/.docs: $(STAMP)
	$(BIN)/pip install --quiet -e '.[docs]'
	touch $@

# docs/sources/<family>.md from the code (a test holds them equal)
docs-sources: venv
	$(BIN)/python -m loggend.tools.sourcedocs docs/sources

# docs/scenarios.md from the code (a test holds it equal)
docs-scenarios: venv
	$(BIN)/python -m loggend.tools.scenarios docs/scenarios.md

# config/loggen.yaml and docs/configuration.md from the settings registry, loggend/settings.py (tests hold them equal)
reference: venv
	$(BIN)/python -m loggend.tools.reference yaml config/loggen.yaml
	$(BIN)/python -m loggend.tools.reference docs docs/configuration.md

# The man page loggend(1) and bash and zsh completion, from the registry and the commands, into build/
man: venv
	mkdir -p build
	$(BIN)/python -m loggend.tools.reference man build/loggend.1
	@echo "man -l build/loggend.1"

completion: venv
	mkdir -p build
	$(BIN)/python -m loggend.tools.reference bash build/loggend.bash
	$(BIN)/python -m loggend.tools.reference zsh build/_loggend

bench: venv
	$(BIN)/loggend bench --seconds $(BENCH_SECONDS) --repeats $(BENCH_REPEATS) --yardstick '$(YARDSTICK)'

lint: venv
	$(BIN)/ruff check loggend tests
	$(BIN)/mypy

# Installs loggend into its own venv of INSTALL_PYTHON (refused in one line when the unit's user could
# not run it), links $(PREFIX)/bin/loggend, the man page loggend(1) and bash and zsh completion (made by
# the installed loggend), the config (never over an existing one), the systemd units (loggen.service,
# and loggen@.service for one instance per /etc/loggen/NAME.yaml) and the docs, then runs the installed
# loggend as an unprivileged user. Run as root.
UNIT_PATHS = -e 's\#/usr/local/bin/loggend\#$(PREFIX)/bin/loggend\#g' -e 's\#/etc/loggen\#$(SYSCONFDIR)/loggen\#g' \
	-e 's\#/usr/local/share/doc/loggen\#$(DOCDIR)\#g'
install:
	@scripts/install-check python $(INSTALL_PYTHON)
	umask 022 && $(INSTALL_PYTHON) -m venv --clear $(LIBDIR)
	umask 022 && $(LIBDIR)/bin/pip install --quiet .
	install -d $(PREFIX)/bin $(SYSCONFDIR) $(UNITDIR) $(DOCDIR) $(MANDIR)/man1 $(BASHCOMPDIR) $(ZSHCOMPDIR)
	ln -sfn $(LIBDIR)/bin/loggend $(PREFIX)/bin/loggend
	umask 022 && $(LIBDIR)/bin/python -m loggend.tools.reference man $(MANDIR)/man1/loggend.1
	umask 022 && $(LIBDIR)/bin/python -m loggend.tools.reference bash $(BASHCOMPDIR)/loggend
	umask 022 && $(LIBDIR)/bin/python -m loggend.tools.reference zsh $(ZSHCOMPDIR)/_loggend
	@if [ -e $(SYSCONFDIR)/loggen.yaml ]; then echo "keeping the existing $(SYSCONFDIR)/loggen.yaml"; \
	else install -m 0644 config/loggen.yaml $(SYSCONFDIR)/loggen.yaml; fi
	sed $(UNIT_PATHS) systemd/loggen.service > $(UNITDIR)/loggen.service
	sed $(UNIT_PATHS) systemd/loggen@.service > $(UNITDIR)/loggen@.service
	chmod 0644 $(UNITDIR)/loggen.service $(UNITDIR)/loggen@.service
	install -m 0644 README.md config/loggen.yaml $(DOCDIR)/
	umask 022 && cp -R docs/. $(DOCDIR)/           # the manual the man page points to
	@scripts/install-check installed $(PREFIX)/bin/loggend
	@if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@echo "installed $$($(PREFIX)/bin/loggend --version) from $(INSTALL_PYTHON): edit $(SYSCONFDIR)/loggen.yaml, then: systemctl start loggen"

uninstall:
	@if [ -d /run/systemd/system ]; then systemctl disable --now loggen 2>/dev/null || true; \
	systemctl stop 'loggen@*' 2>/dev/null || true; fi
	rm -f $(PREFIX)/bin/loggend $(UNITDIR)/loggen.service $(UNITDIR)/loggen@.service
	rm -f $(MANDIR)/man1/loggend.1 $(BASHCOMPDIR)/loggend $(ZSHCOMPDIR)/_loggend
	rm -rf $(LIBDIR) $(DOCDIR)
	@if cmp -s config/loggen.yaml $(SYSCONFDIR)/loggen.yaml; then rm -f $(SYSCONFDIR)/loggen.yaml; \
	elif [ -e $(SYSCONFDIR)/loggen.yaml ]; then echo "kept $(SYSCONFDIR)/loggen.yaml (edited)"; fi
	@if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

clean:
	rm -rf $(VENV) build dist reports *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
