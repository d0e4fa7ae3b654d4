# The single interface to the project. Every target creates the virtual environments it needs from
# the pinned requirement files, so a fresh clone needs nothing installed by hand.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
PY := $(VENV)/bin/python
SAM := $(SAM_VENV)/bin/sam
# sam build (no Docker) needs the runtime's interpreter, python3.13, on PATH: pyenv's newest 3.13 (pyenv
# keeps it off PATH), else a python3.13 already on PATH (`command -v`; its real folder, through any shim).
PY313_BIN ?= $(shell d=$$(pyenv root 2>/dev/null)/versions; b=$$(ls -d $$d/3.13*/bin 2>/dev/null | sort -V | tail -1); \
	[ -n "$$b" ] || ! command -v python3.13 >/dev/null || b=$$(python3.13 -c 'import os, sys; print(os.path.dirname(sys.executable))' 2>/dev/null); \
	echo "$$b")
# $(call pip_install,<python>,<requirements>): pip's own line per package; its progress bar only on a terminal.
pip_install = p=off; [ -t 1 ] && p=on; $(1) -m pip install --disable-pip-version-check --progress-bar $$p -r $(2)
export AWS_DEFAULT_REGION ?= us-east-1
# The browser tests drive the system's Chromium through its chromedriver (Debian: chromium, chromium-driver).
export CHROMIUM ?= /usr/bin/chromium
export CHROMEDRIVER ?= /usr/bin/chromedriver
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help venv browser test test-browser test-unit test-integration soak lint fmt fmt-check type lint-template check build deploy deploy-console run screenshots bench openapi clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/dev.txt layers/core/requirements.txt
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON) (first run: about a minute)…"; $(PYTHON) -m venv $(VENV); }
	@echo "installing the pinned requirements (requirements/dev.txt) into $(VENV)…"
	@$(call pip_install,$(PY),requirements/dev.txt)
	@touch $@; echo "$(VENV) is ready."

$(SAM_VENV)/.installed: requirements/sam.txt
	@test -x $(SAM_VENV)/bin/python || { echo "creating $(SAM_VENV) for SAM CLI (first run: about a minute)…"; $(PYTHON) -m venv $(SAM_VENV); }
	@echo "installing the pinned SAM CLI (requirements/sam.txt) into $(SAM_VENV)…"
	@$(call pip_install,$(SAM_VENV)/bin/python,requirements/sam.txt)
	@touch $@; echo "$(SAM_VENV) is ready."

venv: $(VENV)/.installed ## create .venv from the pinned requirements

browser: ## headless Chromium and chromedriver for tests/browser (apt-get, only when missing)
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
	  if ! command -v apt-get >/dev/null; then \
	    echo "no apt-get here: install Chromium and chromedriver ($(CHROMIUM), $(CHROMEDRIVER)) yourself; tests/browser skip without them (CI fails)"; \
	  else \
	    echo "installing Chromium and chromedriver for the browser tests (apt-get install chromium chromium-driver)…"; \
	    log=$$(mktemp); \
	    { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; } >$$log 2>&1 \
	      || { tail -20 $$log; rm -f $$log; echo "apt-get could not install chromium chromium-driver"; exit 1; }; \
	    rm -f $$log; \
	  fi; \
	fi

test: $(VENV)/.installed browser ## the whole test suite (unit, integration, template, local runner, browser)
	$(PY) -m pytest -q

test-browser: $(VENV)/.installed browser ## the console in headless Chromium against the local runner
	$(PY) -m pytest -q tests/browser

test-unit: $(VENV)/.installed ## pure tests, sockets blocked
	$(PY) -m pytest -q tests/unit

test-integration: $(VENV)/.installed ## adapters and handlers under moto, template checks
	$(PY) -m pytest -q tests/integration tests/template

soak: $(VENV)/.installed ## longer runs: 1,000 and 5,000 webhooks through the runner, 3,000 convergence examples
	set -o pipefail; LOAD_APPOINTMENTS=200 $(PY) -m pytest -q -s tests/local/test_load.py | grep -v '^{"_aws"'
	set -o pipefail; LOAD_APPOINTMENTS=1000 LOAD_THREADS=16 $(PY) -m pytest -q -s tests/local/test_load.py | grep -v '^{"_aws"'
	set -o pipefail; LOAD_ALL_WEBHOOKS=2000 LOAD_ALL_THREADS=8 LOAD_ALL_STEP_MINUTES=60 $(PY) -m pytest -q -s tests/local/test_load_all_sources.py | grep -v '^{"_aws"'
	DESK_MACHINE_EXAMPLES=300 DESK_MACHINE_STEPS=60 $(PY) -m pytest -q -s tests/unit/test_desk_machine.py
	CONVERGENCE_EXAMPLES=3000 $(PY) -m pytest -q tests/unit/test_convergence.py
	CONVERGENCE_EXAMPLES=200 $(PY) -m pytest -q tests/integration/test_convergence.py

lint: $(VENV)/.installed ## ruff lint
	$(VENV)/bin/ruff check .

fmt: $(VENV)/.installed ## ruff format and fix imports
	$(VENV)/bin/ruff check --select I --fix .
	$(VENV)/bin/ruff format .

fmt-check: $(VENV)/.installed ## ruff format check
	$(VENV)/bin/ruff format --check .

type: $(VENV)/.installed ## mypy strict on the package, local runner, tools and tests
	$(VENV)/bin/mypy layers/core/appointments functions localdev tools tests

lint-template: $(VENV)/.installed $(SAM_VENV)/.installed ## cfn-lint, the dangling-Ref check and sam validate --lint
	$(VENV)/bin/cfn-lint template.yaml
	$(PY) -m tools.template_check template.yaml
	$(SAM) validate --lint --template-file template.yaml

check: lint fmt-check type lint-template test ## everything CI checks

build: $(SAM_VENV)/.installed ## sam build, no Docker (python3.13, arm64)
	@test -n "$(PY313_BIN)" || { \
	  echo "make build needs a python3.13 interpreter (sam build without Docker runs the runtime's own); none found."; \
	  echo "Get one, then run make build again:"; \
	  echo "  pyenv install 3.13                      (make build finds pyenv's newest 3.13)"; \
	  echo "  or your distribution's python3.13 package (apt install python3.13, brew install python@3.13)"; \
	  echo "  or point at one: make build PY313_BIN=/path/to/its/bin"; \
	  exit 1; }
	PATH="$(PY313_BIN):$$PATH" $(SAM) build
	@# Lambda's /opt and /var/task are read-only: without shipped bytecode every cold start compiles every module
	@# it imports (about 300 ms of CPU per start, docs/performance.md). unchecked-hash: a zip's mtimes never match.
	"$(PY313_BIN)/python3" -m compileall -q -j 0 --invalidation-mode unchecked-hash .aws-sam/build

deploy: build ## sam deploy --guided
	$(SAM) deploy --guided

deploy-console: $(VENV)/.installed ## upload console/ to the stack's bucket, write config.json from its outputs (STACK=, REGION=)
	$(PY) -m tools.deploy_console $(if $(STACK),--stack $(STACK)) $(if $(REGION),--region $(REGION))

run: $(VENV)/.installed ## the local runner on 127.0.0.1:3000 (embedded AWS; RUN_ARGS="--clock manual" etc.)
	$(PY) -m localdev serve $(RUN_ARGS)

openapi: $(VENV)/.installed ## regenerate docs/openapi.json from the ops API's routes and models
	$(PY) -m tools.openapi

screenshots: $(VENV)/.installed browser ## refresh docs/console-*.png from the browser tests
	CONSOLE_SCREENSHOTS=docs $(PY) -m pytest -q tests/browser/test_dispatcher_morning.py

bench: $(VENV)/.installed ## figures, not tests: cold starts, latency, AWS calls, scaling, cost → docs/performance.md
	$(PY) -m tools.bench
	$(PY) -m tools.bench_local_startup 5

clean: ## remove build output and caches (keeps the venvs)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -not -path './.venv*' -exec rm -rf {} +
