# Every target installs what it needs: `make synth` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_NOSPIN := 1
export PIPENV_YES := 1
export PIPENV_VERBOSITY := -1
# Node 22 from the npm registry (package `node`), ahead of the machine's end-of-life Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
PY := $(CURDIR)/.venv/bin/python
PIPENV := python3 -m pipenv
OUT := cdktf.out

.PHONY: help setup synth test clean docs snapshot-update

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.venv/.synced: Pipfile.lock
	@python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check pipenv==2026.10.3
	$(PIPENV) sync --dev
	@touch $@

node_modules/.synced: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v22\.' || { echo "expected Node 22 from node_modules/.bin, got $$(node --version)"; exit 1; }
	@touch $@

setup: .venv/.synced node_modules/.synced ## install Python (pipenv) and Node 22 + cdktn-cli from the lock files

synth: setup ## synthesize every environment into cdktf.out/stacks/<stack>/cdk.tf.json
	@$(PY) main.py

test: setup ## run the whole test suite (one pytest process, one synth)
	$(PY) -m pytest

clean: ## remove synth output
	rm -rf $(OUT)

docs: .venv/.synced ## regenerate the README's configuration reference from the models
	@$(PY) -m dataplatform.config_reference

snapshot-update: setup ## accept the current synth as the new snapshots (review the diff!)
	$(PY) -m pytest tests/test_snapshots.py --snapshot-update
