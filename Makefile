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

.PHONY: help setup synth test clean docs snapshot-update review diff deploy lint-workflows bench validate tf-provider scan test-infra workloads-setup etl-demo ml-pipeline
GO_BIN := $(CURDIR)/.build/bin
ACTIONLINT := $(GO_BIN)/actionlint
ACTIONLINT_VERSION := v1.7.12
BASE ?= origin/main
REVIEW_OUT ?= cdktf.out/review.md
ONLY ?=
DEPLOY_FLAGS ?=

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# One recipe for every pipenv environment: the Pipfile beside its lock, the venv beside both.
define sync-venv
	@python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check pipenv==2026.10.3
	PIPENV_PIPFILE=$(<:.lock=) PIPENV_IGNORE_VIRTUALENVS=1 $(PIPENV) sync --dev
	@touch $@
endef

.venv/.synced: Pipfile.lock
	$(sync-venv)

node_modules/.synced: package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v22\.' || { echo "expected Node 22 from node_modules/.bin, got $$(node --version)"; exit 1; }
	@touch $@

setup: .venv/.synced node_modules/.synced ## install Python (pipenv) and Node 22 + cdktn-cli from the lock files

synth: setup ## synthesize every environment into cdktf.out/stacks/<stack>/cdk.tf.json
	@$(PY) main.py

# Targets that read cdktf.out (scan, validate, review) synthesize only when an input changed.
SYNTH_INPUTS := main.py $(shell find dataplatform environments workloads/launcher workloads/dags workloads/ml/sql.py workloads/ml/compiled -type f \
                  -not -path '*/__pycache__/*' -not -path '*/.venv/*')
$(OUT)/manifest.json: $(SYNTH_INPUTS) .venv/.synced node_modules/.synced
	@$(PY) main.py >/dev/null
.DELETE_ON_ERROR:

$(ACTIONLINT):
	GOBIN=$(GO_BIN) GOFLAGS=-mod=mod go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

test: setup $(ACTIONLINT) workloads-setup ## run every test: infrastructure (one pytest process, one synth), ETL/launcher, DAG parsing, ML
	$(PY) -m pytest
	$(WORKLOADS_PIPENV) run pytest workloads/tests
	$(AIRFLOW_PIPENV) run pytest workloads/airflow/tests
	$(ML_PIPENV) run pytest -c workloads/ml/pytest.ini workloads/ml/tests

test-infra: setup $(ACTIONLINT) ## only the infrastructure suite (no workload venvs)
	$(PY) -m pytest

# The workloads keep their own locks, apart from the infrastructure's: the ETL image's
# dependencies (workloads/Pipfile) and an Airflow used only to parse-test the DAGs.
WORKLOADS_PIPENV := PIPENV_PIPFILE=workloads/Pipfile PIPENV_IGNORE_VIRTUALENVS=1 $(PIPENV)
AIRFLOW_PIPENV := PIPENV_PIPFILE=workloads/airflow/Pipfile PIPENV_IGNORE_VIRTUALENVS=1 $(PIPENV)
# The ML workload (kfp + sqlglot): compiles the Vertex AI pipeline and parse-tests the SQL; synth never needs it.
ML_PIPENV := PIPENV_PIPFILE=workloads/ml/Pipfile PIPENV_IGNORE_VIRTUALENVS=1 $(PIPENV)

workloads/.venv/.synced: workloads/Pipfile.lock
	$(sync-venv)

workloads/airflow/.venv/.synced: workloads/airflow/Pipfile.lock
	$(sync-venv)

workloads/ml/.venv/.synced: workloads/ml/Pipfile.lock
	$(sync-venv)

workloads-setup: workloads/.venv/.synced workloads/airflow/.venv/.synced workloads/ml/.venv/.synced

ml-pipeline: workloads/ml/.venv/.synced ## recompile the Vertex AI pipeline into workloads/ml/compiled/ (commit the result)
	@$(ML_PIPENV) run python -m workloads.ml.pipeline

etl-demo: workloads/.venv/.synced ## run the ETL twice on DirectRunner against local stand-ins; one JSON line per run
	@$(WORKLOADS_PIPENV) run python -m workloads.etl.demo

clean: ## remove synth output
	rm -rf $(OUT)

docs: .venv/.synced ## regenerate the README's configuration reference from the models
	@$(PY) -m dataplatform.config_reference

snapshot-update: setup ## accept the current synth as the new snapshots (review the diff!)
	$(PY) -m pytest tests/test_snapshots.py --snapshot-update

review: $(OUT)/manifest.json ## Markdown diff of every environment against BASE (default origin/main); FAIL_ON_DATA_DESTRUCTION=1 to gate
	@$(PY) -m dataplatform.tools.review --base "$(BASE)" --output "$(REVIEW_OUT)" --scan $(if $(FAIL_ON_DATA_DESTRUCTION),--fail-on-data-destruction)

diff: setup ## cdktn diff of ENV's stacks (needs credentials for ENV's project and terraform)
	@test -n "$(ENV)" || { echo "usage: make diff ENV=<env>"; exit 2; }
	@$(PY) -m dataplatform.tools.cdktn_run diff $(ENV) $(if $(ONLY),--only $(ONLY))

deploy: setup ## cdktn deploy of ENV's stacks, bootstrap then platform (ONLY=platform in CI)
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<env>"; exit 2; }
	@$(PY) -m dataplatform.tools.cdktn_run deploy $(ENV) $(if $(ONLY),--only $(ONLY)) $(DEPLOY_FLAGS)

lint-workflows: $(ACTIONLINT) ## actionlint the GitHub workflows
	$(ACTIONLINT) -no-color

bench: setup ## synth/test timings vs the provider-import floor: table, cdktf.out/bench/bench.json + growth.png
	@$(PY) -m dataplatform.tools.bench --runs $(or $(BENCH_RUNS),3)

tf-provider: .venv/.synced ## build the real google provider into the local Terraform mirror (cached outside the repo)
	@$(PY) tools/terraform/build_provider.py

validate: $(OUT)/manifest.json tf-provider ## real Terraform: init from the local mirror, validate, offline plan of every stack (ENV= to restrict)
	@$(PY) tools/terraform/offline_plan.py $(ENV)

scan: $(OUT)/manifest.json ## checkov over every synthesized stack (custom policies in policies/, reasoned skips in .checkov.yaml); reports in cdktf.out/scan
	@$(PY) -m dataplatform.tools.checkov_scan --stacks $(OUT)/stacks --out $(OUT)/scan
