# Entry points: `make test` (set-up + the whole suite), `make demo`, `make bench` (all benchmarks).
# Everything is installed into the project: .venv/ (Python), .cache/ (Pebble, lego, certbot venv).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PEBBLE := .cache/pebble/VERSION
LEGO := .cache/lego/VERSION
CERTBOT_VENV := .cache/certbot-venv
CERTBOT_VERSION := 5.8.0
PYTEST_ARGS ?=

.PHONY: help venv pebble test test-unit lint demo bench bench-acme bench-coldstart bench-tokenserver check-terraform clean

help:
	@echo "make test        set up (venv, Pebble), lint, and run the whole test suite"
	@echo "make demo        issue a certificate end to end in the local sandbox"
	@echo "make bench       run every benchmark (bench-acme: ours vs certbot vs lego on Pebble;"
	@echo "                 bench-coldstart: a fresh fdk process until its first answer;"
	@echo "                 bench-tokenserver: token server req/s, p99, p99 during a flood)"
	@echo "make lint        ruff + mypy --strict on renewer/ and tokenserver/"
	@echo "make check-terraform  the offline checks of terraform/ (part of make test)"

venv: $(STAMP)
$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

pebble: $(PEBBLE)
$(PEBBLE):
	sandbox/fetch_deb.sh pebble .cache/pebble

test: venv pebble lint check-terraform
	$(PY) -m pytest --ignore=tests/terraform $(PYTEST_ARGS)

# Offline checks of terraform/: HCL parse + canonical format, provider schema, checkov, the
# generated configuration and the policy statements proven in the sandbox (tests/terraform).
check-terraform: venv pebble
	bash tests/terraform/check_terraform.sh

test-unit: venv
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check renewer tokenserver sandbox bench tests func.py
	$(VENV)/bin/ruff format --check renewer tokenserver sandbox bench tests func.py
	$(VENV)/bin/mypy --strict renewer tokenserver

demo: venv pebble
	$(PY) -m sandbox.demo

$(LEGO):
	sandbox/fetch_deb.sh lego .cache/lego

$(CERTBOT_VENV)/bin/certbot:
	$(PYTHON) -m venv $(CERTBOT_VENV)
	$(CERTBOT_VENV)/bin/pip install --quiet --disable-pip-version-check certbot==$(CERTBOT_VERSION)

bench: bench-acme bench-coldstart bench-tokenserver

bench-acme: venv pebble $(LEGO) $(CERTBOT_VENV)/bin/certbot
	$(PY) bench/acme_bench.py --certbot $(CERTBOT_VENV)/bin/certbot --lego .cache/lego/usr/bin/lego

bench-coldstart: venv pebble
	$(PY) bench/coldstart_bench.py

bench-tokenserver: venv
	$(PY) bench/tokenserver_bench.py

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
