# driftloop — the two commands a newcomer needs: `make demo` and `make test`.
# Every target installs what it needs, idempotently: the venv (re-synced when pyproject.toml or the lock changes)
# and the Debian packages (apt-get when running as root; a clear message otherwise).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.driftloop-installed
LOCK := requirements.lock
APT_PACKAGES := prometheus prometheus-alertmanager git cowsay chromium chromium-driver
APT_BINARIES := prometheus prometheus-alertmanager promtool amtool git cowsay chromium chromedriver
export PYTHONUNBUFFERED := 1

.PHONY: help venv lock system demo test test-fast compile check submit lint bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The venv holds exactly the locked set (requirements.lock: every package pinned with its sha256), installed by uv
# (itself locked) with --no-deps, so nothing is resolved; the machine's pip configuration (index, find-links,
# constraints) is translated for uv, and pip installs the lock instead when uv cannot be had.
$(STAMP): pyproject.toml $(LOCK)
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11+ or run make PYTHON=python3"; exit 2; }
	@$(PYTHON) scripts/lock.py --check >/dev/null
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing the locked dependencies into $(VENV) (log: $(VENV)/pip.log)…"
	@$(PYTHON) scripts/lock.py --install $(PY) >$(VENV)/pip.log 2>&1 \
	  || { grep -v '^WARNING: Location' $(VENV)/pip.log | tail -40; echo "error: install failed; full log in $(VENV)/pip.log"; exit 1; }
	@touch $(STAMP)

venv: $(STAMP) ## create/update .venv from requirements.lock (idempotent; ~0 s when nothing changed)

lock: ## regenerate requirements.lock after changing pyproject.toml or lock-policy.txt (commit it)
	$(PYTHON) scripts/lock.py

system: ## install the Debian packages driftloop runs (prometheus, alertmanager, git, cowsay; chromium for the console tests)
	@bash scripts/ensure-system-packages.sh $(APT_PACKAGES) -- $(APT_BINARIES)

compile: venv ## compile the Hera pipelines into manifests/workflows/ (validated)
	$(VENV)/bin/driftloop compile

check: venv ## fail when the committed manifests or the dependency lock are stale, or a secret is in the repository
	$(VENV)/bin/driftloop compile --check
	$(PYTHON) scripts/lock.py --check
	$(VENV)/bin/driftloop alerting --check
	$(PY) scripts/secrets_check.py

lint: venv ## ruff (check + format) and mypy on package code
	$(VENV)/bin/ruff check driftloop workflows monitors features tests bench
	$(VENV)/bin/ruff format --check driftloop workflows monitors features
	$(VENV)/bin/mypy

test: venv system lint check ## the full suite (what CI runs)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadscope --no-loadscope-reorder --durations=30 tests

test-fast: venv ## unit tests only (skips tests marked slow)
	$(VENV)/bin/python -m pytest -q -m "not slow" tests

demo: venv system ## run the most complete loop that exists so far
	$(VENV)/bin/python -m driftloop.demo

submit: venv compile ## compile, start MLflow + the engine if needed, submit the training pipeline and wait
	$(VENV)/bin/driftloop stack up mlflow engine
	$(VENV)/bin/driftloop submit training --wait $(if $(DATASET),-p dataset=$(DATASET))

bench: venv ## run every benchmark in bench/ and print its table
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script; done

clean: ## remove local state, caches and the venv
	rm -rf $(VENV) .driftloop .pytest_cache .mypy_cache .ruff_cache *.egg-info
