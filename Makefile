# The two commands a newcomer needs (as root on Debian): `make demo` and `make test`.
# Each sets up what it needs and is safe to run again.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STACK := $(PYTHON) tools/stack.py

.PHONY: demo test unit integration stack-up stack-down stack-status run deps venv bench bench-acd clean

demo: stack-up ## the stack, the engine on examples/callcenter.yaml, a few real calls, the result
	$(BIN)/python tools/demo.py

test: stack-up ## unit tests, then integration tests against the real stack
	$(BIN)/pytest

unit: venv ## pure tests only (no stack needed)
	$(BIN)/pytest tests/unit

integration: stack-up
	$(BIN)/pytest tests/integration

stack-up: deps venv ## PostgreSQL + Asterisk 22 on loopback; writes .run/stack.env
	$(STACK) up

stack-down:
	$(STACK) down

stack-status:
	$(STACK) status

run: stack-up ## the engine in the foreground on the example config (Ctrl-C stops it)
	set -a && . .run/stack.env && set +a && CALLCENTER_STATE_DIR=$(CURDIR)/.run/engine \
	CALLCENTER_HTTP_PORT=$${CALLCENTER_HTTP_PORT:-28480} $(BIN)/callcenter run --config examples/callcenter.yaml

# Debian packages: Python's venv module, PostgreSQL, sipp, baresip, mmdebstrap (only what is missing).
deps: .run/python-ok
	$(STACK) deps

.run/python-ok:
	@command -v $(PYTHON) >/dev/null && $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	  echo "installing python3 and python3-venv"; apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv; }
	@mkdir -p .run && touch $@

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml .run/python-ok
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

clean: stack-down
	rm -rf $(VENV) .run .pytest_cache

bench: stack-up ## inbound throughput through the real stack (prints a table; --json for JSON)
	$(BIN)/python tools/bench_inbound.py $(BENCH_ARGS)

bench-acd: stack-up ## the engine's ACD against app_queue on the same box (BENCH_ARGS="--agents 20 --rate 10 --json")
	$(BIN)/python tools/bench_acd.py $(BENCH_ARGS)
