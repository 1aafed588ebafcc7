# loggen: `make run` shows the whole loop on loopback; `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_PORT ?= 55514
DEMO_RATE ?= 200k
DEMO_DURATION ?= 5s
BENCH_SECONDS ?= 2
BENCH_REPEATS ?= 3
YARDSTICK ?= $(wildcard ../shared/yardstick)

.PHONY: install run test bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,lint]'
	touch $(STAMP)

# Until the supervisor's local sink exists: a receiver on loopback, a few seconds of sending, both reports.
run: install
	@$(BIN)/loggend sink --listen 127.0.0.1:$(DEMO_PORT) --idle-exit 1s --duration 60s & sink=$$!; \
	sleep 0.5; \
	$(BIN)/loggend run --target 127.0.0.1:$(DEMO_PORT) --rate $(DEMO_RATE) --duration $(DEMO_DURATION); rc=$$?; \
	wait $$sink; exit $$rc

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/loggend bench --seconds $(BENCH_SECONDS) --repeats $(BENCH_REPEATS) --yardstick '$(YARDSTICK)'

lint: install
	$(BIN)/ruff check loggend tests
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
