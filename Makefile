# Every target installs what it needs, and only that: `make synth` and `make test` work on a
# fresh clone. Prerequisites: Python 3.11, make, npm (any Node); Go for `make test` (actionlint)
# and `make validate` (the provider build). Everything else comes from the lock files.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Node 22 from the npm registry (package `node`), ahead of the machine's end-of-life Node 20.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
# Terraform and the cdktn CLI never call HashiCorp's checkpoint (version/alert) service.
export CHECKPOINT_DISABLE := 1
# Python caches bytecode: installs do not precompile (a fresh clone would compile 230 MB of
# provider bindings it mostly never imports), so the first import of a module compiles it once.
# With PYTHONDONTWRITEBYTECODE set, every synth would recompile what it imports (~0.6 s).
unexport PYTHONDONTWRITEBYTECODE
PY := $(CURDIR)/.venv/bin/python
# Synth runs optimized (-O): the jsii bindings then skip their Python-side argument type checks
# (typeguard and typing.get_type_hints on every call, ~0.4 s of a warm synth); the jsii kernel
# checks every argument's type again in Node and refuses a wrong one. Code on the synth path
# raises instead of asserting (tests/test_main.py checks), so -O removes no check of ours.
SYNTH := $(PY) -O main.py
PYTHON ?= python3.11
OUT := cdktf.out
# uv installs every virtual environment from the pipenv locks (exact versions and hashes);
# pipenv only resolves (`make lock`). Pinned, fetched once into .build/uv.
UV_VERSION := 0.13.9
UV := $(CURDIR)/.build/uv/bin/uv
ifdef CI
export UV_NO_PROGRESS := 1
endif
LOCK_EXPORT := python3 -m dataplatform.tools.lock_export
GO_BIN := $(CURDIR)/.build/bin
ACTIONLINT := $(GO_BIN)/actionlint
ACTIONLINT_VERSION := v1.7.12
BASE ?= origin/main
REVIEW_OUT ?= cdktf.out/review.md
ONLY ?=
DEPLOY_FLAGS ?=
ENV_FILES := $(wildcard environments/*.yaml)

.PHONY: help setup check synth test test-infra test-workloads clean docs baselines snapshot-update new-env review diff deploy preflight etl-bench fake-gcs-server ml-pipeline \
        lint lint-workflows mutation bench validate tf-provider scan workloads-setup etl-demo lock labelable-types prerequisites

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- installs

$(UV):
	@echo "setup: uv $(UV_VERSION) -> .build/uv (installs the virtual environments from the pipenv locks)"
	@command -v $(PYTHON) >/dev/null || { echo "setup: $(PYTHON) not found: install Python 3.11 (or make PYTHON=/path/to/python3.11)"; exit 2; }
	@python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target .build/uv uv==$(UV_VERSION)

# $(call uv-venv,<venv dir>,<Pipfile.lock>,<sections>,<install|sync>): create the venv if needed, then
# install exactly the locked versions (hash-checked) of those lock sections.
define uv-venv
	@echo "setup: $(1) <- $(2) [$(3)]"
	@test -x $(1)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(1)
	@$(LOCK_EXPORT) $(2) $(3) > $(1)/requirements.lock.txt
	@$(UV) pip $(4) --python $(1)/bin/python --require-hashes $(if $(filter install,$(4)),-r )$(1)/requirements.lock.txt 2>&1 | grep -v '^ [-+~] '; exit $${PIPESTATUS[0]}
endef

# Synth needs the [packages] of Pipfile.lock (cdktn, the provider bindings, pydantic, ...);
# tests, scans, validate and bench add [dev-packages].
.venv/.synced-synth: Pipfile.lock | $(UV)
	$(call uv-venv,.venv,Pipfile.lock,default,install)
	@touch $@

.venv/.synced: Pipfile.lock | $(UV)
	$(call uv-venv,.venv,Pipfile.lock,default develop,sync)
	@touch $@ .venv/.synced-synth

# Synth and tests need only Node 22 (jsii runs on it): package.json `dependencies`.
# diff/deploy add the cdktn CLI (`devDependencies`). On a fresh clone the environment files
# are checked before Node is fetched, so a bad file is reported first; a warm synth checks
# them in-process (main.py, before anything is built).
node_modules/.synced-runtime: package-lock.json | .venv/.synced-synth
	@$(PY) -m dataplatform.config_loader
	@command -v npm >/dev/null || { echo "setup: npm not found: install Node.js (any version; npm fetches Node 22)"; exit 2; }
	@echo "setup: node_modules <- package-lock.json [Node 22 only]"
	@npm ci --omit=dev --no-audit --no-fund --loglevel=error
	@node --version | grep -q '^v22\.' || { echo "expected Node 22 from node_modules/.bin, got $$(node --version)"; exit 1; }
	@touch $@

node_modules/.synced: package-lock.json
	@command -v npm >/dev/null || { echo "setup: npm not found: install Node.js (any version; npm fetches Node 22)"; exit 2; }
	@echo "setup: node_modules <- package-lock.json [Node 22 + cdktn CLI]"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@ node_modules/.synced-runtime

setup: .venv/.synced node_modules/.synced ## install everything (Python venv from Pipfile.lock, Node 22 + cdktn CLI)

$(ACTIONLINT):
	@command -v go >/dev/null || { echo "setup: go not found: make test builds actionlint with Go >= 1.24 (https://go.dev/dl/, apt-get install golang)"; exit 2; }
	@echo "setup: actionlint $(ACTIONLINT_VERSION) -> .build/bin (go install)"
	@GOBIN=$(GO_BIN) GOFLAGS=-mod=mod go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

prerequisites: ## say which prerequisites are missing (Python 3.11, npm, Go, git)
	@ok=1; for tool in $(PYTHON) npm go git; do command -v $$tool >/dev/null && echo "  ok       $$tool" || { echo "  MISSING  $$tool"; ok=0; }; done; \
	  test $$ok = 1 || { echo "see the README's Quick start"; exit 2; }

lock: ## re-resolve Pipfile.lock with pipenv after editing Pipfile (installs use uv from the lock)
	@python3 -m pipenv --version >/dev/null 2>&1 || python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore pipenv==2026.10.3
	PIPENV_IGNORE_VIRTUALENVS=1 PIPENV_VENV_IN_PROJECT=0 WORKON_HOME=$(CURDIR)/.build/pipenv python3 -m pipenv lock

# ---------------------------------------------------------------- config and synth

check: .venv/.synced-synth ## validate every environment file (no cdktn import, well under a second): one line per problem
	@$(PY) -m dataplatform.config_loader

synth: .venv/.synced-synth node_modules/.synced-runtime ## check, then synthesize every environment into cdktf.out/stacks/<stack>/cdk.tf.json
	@$(SYNTH)

# Targets that read cdktf.out (scan, validate, review) synthesize only when an input changed
# (the environments directory too: deleting a file changes it), or when the last synth covered
# only some environments (DP_ENVIRONMENTS, e.g. make diff).
SYNTH_INPUTS := main.py environments $(ENV_FILES) $(shell find dataplatform workloads/launcher workloads/dags workloads/ml/sql.py workloads/ml/compiled -type f \
                  -not -path '*/__pycache__/*' -not -path '*/.venv/*')
$(OUT)/.all-environments: $(SYNTH_INPUTS) .venv/.synced-synth node_modules/.synced-runtime
	@$(SYNTH) >/dev/null
.DELETE_ON_ERROR:

new-env: .venv/.synced-synth ## add environments/NAME.yaml as a copy of FROM (PROJECT_ID=, PROJECT_NUMBER= for its project)
	@test -n "$(NAME)" -a -n "$(FROM)" || { echo "usage: make new-env NAME=<env> FROM=<existing env> [PROJECT_ID=<id>] PROJECT_NUMBER=<number>"; exit 2; }
	@$(PY) -m dataplatform.tools.new_env "$(NAME)" --from "$(FROM)" $(if $(PROJECT_ID),--project-id "$(PROJECT_ID)") $(if $(PROJECT_NUMBER),--project-number "$(PROJECT_NUMBER)")

docs: .venv/.synced-synth ## regenerate the README's configuration reference and environments/environment.schema.json
	@$(PY) -m dataplatform.config_reference

# The GCS emulator the workload tests start (fake-gcs-server, from the Go module proxy), cached
# outside the repository like the provider build; workloads/tests/emulators/fake_gcs.py finds it there.
FAKE_GCS_VERSION := v1.56.1
GCP_DP_CACHE ?= $(HOME)/.cache/gcp-data-platform
FAKE_GCS := $(GCP_DP_CACHE)/bin/fake-gcs-server-$(FAKE_GCS_VERSION)/fake-gcs-server
$(FAKE_GCS):
	GOBIN=$(dir $@) GOMODCACHE=$(GCP_DP_CACHE)/go-mod GOCACHE=$(GCP_DP_CACHE)/go-build GOFLAGS=-mod=mod \
		go install github.com/fsouza/fake-gcs-server@$(FAKE_GCS_VERSION)

fake-gcs-server: $(FAKE_GCS) ## build the GCS emulator the workload tests use (cached outside the repo)


# ---------------------------------------------------------------- tests

test: lint test-infra test-workloads ## every test: the style gate, infrastructure (one pytest process, one synth), ETL/launcher, DAG parsing, ML

lint: .venv/.synced ## the style gate: ruff over every Python file (ruff.toml says which checks)
	$(PY) -m ruff check --quiet .

test-infra: .venv/.synced node_modules/.synced-runtime $(ACTIONLINT) ## only the infrastructure suite
	$(PY) -m pytest

test-workloads: workloads-setup $(FAKE_GCS) ## the ETL/launcher suite, the DAG parse tests and the ML tests (own venvs)
	workloads/.venv/bin/pytest workloads/tests
	workloads/airflow/.venv/bin/pytest workloads/airflow/tests
	workloads/ml/.venv/bin/pytest -c workloads/ml/pytest.ini workloads/ml/tests

# Mutation testing (not part of make test: ~40 min for ~3,100 mutants on two cores). MODULE=<path or pattern> for one
# module, SURVIVORS=1 to re-run only the last run's survivors, HAND=1 for the named hand mutants only;
# tests/mutation.toml says what guards what.
mutation: .venv/.synced node_modules/.synced-runtime workloads/.venv/.synced workloads/airflow/.venv/.synced $(FAKE_GCS) ## mutation score per module (cosmic-ray mutants, targeted tests) -> cdktf.out/mutation/mutation.json
	@$(PY) -m dataplatform.tools.mutation $(foreach m,$(MODULE),--module '$(m)') $(if $(SURVIVORS),--survivors) $(if $(HAND),--hand)

baselines: .venv/.synced node_modules/.synced-runtime ## re-record tests/inventories and tests/__snapshots__ from this synth (review the diff!)
	$(PY) -m pytest tests/test_inventory.py tests/test_snapshots.py --update-baselines

snapshot-update: baselines

# The workloads keep their own locks, apart from the infrastructure's: the ETL image's
# dependencies (workloads/Pipfile) and an Airflow used only to parse-test the DAGs.
workloads/.venv/.synced: workloads/Pipfile.lock | $(UV)
	$(call uv-venv,workloads/.venv,workloads/Pipfile.lock,default develop,sync)
	@touch $@

workloads/airflow/.venv/.synced: workloads/airflow/Pipfile.lock | $(UV)
	$(call uv-venv,workloads/airflow/.venv,workloads/airflow/Pipfile.lock,default develop,sync)
	@touch $@

workloads/ml/.venv/.synced: workloads/ml/Pipfile.lock | $(UV)
	$(call uv-venv,workloads/ml/.venv,workloads/ml/Pipfile.lock,default develop,sync)
	@touch $@

workloads-setup: workloads/.venv/.synced workloads/airflow/.venv/.synced workloads/ml/.venv/.synced

ml-pipeline: workloads/ml/.venv/.synced ## recompile the Vertex AI pipeline into workloads/ml/compiled/ (commit the result)
	@workloads/ml/.venv/bin/python -m workloads.ml.pipeline

etl-demo: workloads/.venv/.synced ## run the ETL twice on DirectRunner against local stand-ins; one JSON line per run
	@workloads/.venv/bin/python -m workloads.etl.demo

preflight: .venv/.synced-synth ## what a plan cannot check: billing, org policies, secret values, GitHub App, GPU quota (exit 3 offline)
	@test -n "$(ENV)" || { echo "usage: make preflight ENV=<env>"; exit 2; }
	@$(PY) -m dataplatform.tools.preflight $(ENV) $(if $(OFFLINE),--offline)

etl-bench: workloads/.venv/.synced $(FAKE_GCS) ## workload figures: launches per burst, runs to drain, load jobs per run, rows/s, 100k-file history, memory -> cdktf.out/etl-bench/etl-bench.json
	@workloads/.venv/bin/python -m workloads.bench

lint-workflows: $(ACTIONLINT) ## actionlint the GitHub workflows
	$(ACTIONLINT) -no-color

# ---------------------------------------------------------------- reports and real Terraform

clean: ## remove synth output
	rm -rf $(OUT)

# make exits 2 whenever a step fails; the review tool's own code (1: could not review,
# 3: data would be destroyed) shows in make's "Error N" line.
review: $(OUT)/.all-environments .venv/.synced ## Markdown diff of every environment against BASE (default origin/main); FAIL_ON_DATA_DESTRUCTION=1 to gate
	@$(PY) -m dataplatform.tools.review --base "$(BASE)" --output "$(REVIEW_OUT)" --scan $(if $(FAIL_ON_DATA_DESTRUCTION),--fail-on-data-destruction)

scan: $(OUT)/.all-environments .venv/.synced ## checkov over every synthesized stack (custom policies in policies/, reasoned skips in .checkov.yaml); reports in cdktf.out/scan
	@$(PY) -m dataplatform.tools.checkov_scan --stacks $(OUT)/stacks --out $(OUT)/scan

tf-provider: .venv/.synced ## build the real google provider into the local Terraform mirror (cached outside the repo; needs Go)
	@$(PY) -m dataplatform.tools.terraform.build_provider

validate: $(OUT)/.all-environments tf-provider ## real Terraform: init from the local mirror, validate, offline plan of every stack (ENV= to restrict)
	@$(PY) -m dataplatform.tools.terraform.offline_plan $(ENV)

labelable-types: .venv/.synced ## regenerate policies/dp_labelable_types.py from the label Aspect's table
	@$(PY) -m dataplatform.tools.gen_labelable_types

# diff/deploy synthesize only ENV (DP_ENVIRONMENTS) and keep cdktn's own output in cdktf.out/<command>-<env>.log.
diff: .venv/.synced-synth node_modules/.synced ## cdktn diff of ENV's stacks (needs credentials for ENV's project and terraform)
	@test -n "$(ENV)" || { echo "usage: make diff ENV=<env>"; exit 2; }
	@DP_ENVIRONMENTS=$(ENV) $(PY) -m dataplatform.tools.cdktn_run diff $(ENV) $(if $(ONLY),--only $(ONLY))

deploy: .venv/.synced-synth node_modules/.synced ## bootstrap (first time: local state, then moved into its bucket), then platform; re-runnable (ONLY=platform in CI)
	@test -n "$(ENV)" || { echo "usage: make deploy ENV=<env>"; exit 2; }
	@DP_ENVIRONMENTS=$(ENV) $(PY) -m dataplatform.tools.cdktn_run deploy $(ENV) $(if $(ONLY),--only $(ONLY)) $(DEPLOY_FLAGS)

bench: .venv/.synced node_modules/.synced-runtime ## synth/test timings vs the provider-import floor, cold-start figures: table, cdktf.out/bench/bench.json + growth.png
	@$(PY) -m dataplatform.tools.bench --runs $(or $(BENCH_RUNS),3) $(BENCH_FLAGS)
