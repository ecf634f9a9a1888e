# `make run` serves the API with the demo cluster; `make test` runs the whole suite.
# Both build .venv from nothing on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test lint format fuzz bench clients clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# With the clients the README's examples use (boto3, the AWS CLI).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[clients]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

run: $(VENV)/.installed
	@echo "in another shell, from $(CURDIR): . $(VENV)/bin/activate (hyperpod-local, aws, boto3)"
	$(BIN)/hyperpod-local serve --demo

# The console's tests drive Debian's chromium, and the process provider's confine lifecycle
# scripts with bubblewrap when it is there; installed as a user's machine would get them.
CHROMIUM = /usr/bin/chromium
BWRAP = /usr/bin/bwrap

$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq chromium

$(BWRAP):
	apt-get update -qq && apt-get install -y -qq bubblewrap

# The integration tests that exercise the store run a second time with every server and mock
# on PostgreSQL (tests/postgresql.py: 127.0.0.1:5432, trust auth, database `test`, a database
# of its own per server, dropped afterwards); tests/test_replicas.py and the PostgreSQL
# migrations run in the first pass. Without a PostgreSQL these are skipped with a message;
# HYPERPOD_REQUIRE_POSTGRESQL=1 (.ci/run) turns the skip into a failure.
# (Events out on PostgreSQL are tests/test_replicas.py's. For the suite's time, the property
# tests, scaling, faults, the unhappy paths, MoveClusterNodes, extensions and task governance
# run on SQLite only: each passed on PostgreSQL when last run whole.)
POSTGRESQL_TESTS = $(addprefix tests/test_,$(addsuffix .py,clusters nodes node_ops \
	software_update engine restart concurrency awscli interactions node_attachments \
	health_checks metrics))

test: $(VENV)/.installed-dev lint | $(CHROMIUM) $(BWRAP)
	$(BIN)/python -m pytest -n 2 --dist loadfile
	HYPERPOD_TEST_STORE=postgresql $(BIN)/python -m pytest -n 2 --dist loadfile $(POSTGRESQL_TESTS)

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(VENV)/.installed $(VENV)/.installed-dev $@

# Side by side with moto; writes bench/RESULTS.md. Not part of `make test`. BENCH_ARGS picks
# another part: --fleet (with --million, a 1,000,000-node settle too), or --replicas (needs
# the PostgreSQL of the tests), and --quick.
bench: $(VENV)/.installed-bench
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# The official HyperPod CLI (PyPI's sagemaker-hyperpod, `hyp`) in a venv of its own, run
# against a server: list-cluster, describe cluster, update cluster --node-recovery. Not part
# of `make test`: the CLI takes minutes to install.
CLIENTS_VENV ?= .venv-clients

$(CLIENTS_VENV)/.installed:
	$(PYTHON) -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/python -m pip install --quiet 'sagemaker-hyperpod>=3.12'
	touch $@

clients: $(VENV)/.installed $(CLIENTS_VENV)/.installed
	$(BIN)/python clients/check_hyperpod_cli.py --hyp $(CLIENTS_VENV)/bin/hyp

# A longer, randomized fuzzing run of the server than the one `make test` includes.
fuzz: $(VENV)/.installed-dev
	HYPERPOD_FUZZ=long $(BIN)/python -m pytest tests/test_fuzz.py -p no:randomly

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests examples bench clients
	$(BIN)/ruff format --check src tests examples bench clients

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests examples bench clients
	$(BIN)/ruff check --fix src tests examples bench clients

clean:
	rm -rf $(VENV) $(CLIENTS_VENV) .pytest_cache .ruff_cache .hyperpod-local
