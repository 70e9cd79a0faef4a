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
PYTEST_ARGS ?=

.PHONY: help venv demo-venv pebble test test-unit lint demo sandbox bench bench-acme bench-coldstart bench-tokenserver bench-image bench-fleet check-terraform lock clean

help:
	@echo "make test        set up (venv, Pebble), lint, and run the whole test suite"
	@echo "make demo        issue a certificate end to end in the local sandbox"
	@echo "make sandbox     the sandbox running, with the exports that point the CLI at it"
	@echo "make bench       run every benchmark (bench-acme: ours vs certbot vs lego on Pebble;"
	@echo "                 bench-coldstart: a fresh fdk process until its first answer;"
	@echo "                 bench-tokenserver: token server req/s, p99, p99 during a flood;"
	@echo "                 bench-fleet: 200 certificates on 20 load balancers at OCI's timings)"
	@echo "make lint        ruff + mypy --strict on renewer/, tokenserver/ and build/"
	@echo "make check-terraform  the offline checks of terraform/ (part of make test)"
	@echo "make bench-image the function's site-packages as the image builds it: size, cold start, RSS"
	@echo "make lock        regenerate every hash-checked lock from its .txt (UPGRADE=1: newest versions)"

# The venv installs exactly requirements-dev.lock: every distribution pinned and hash-checked, none
# resolved afresh, so an upstream release changes nothing until `make lock` and a commit say so.
venv: $(STAMP)
$(STAMP): requirements-dev.lock
	$(PYTHON) -m venv --clear $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r requirements-dev.lock
	$(PY) -m pip check
	touch $@

# Locks: each *.lock is generated from the *.txt beside it, for Python 3.11 on every platform, with
# the sha256 of every file the index has for each pinned version: requirements (the function
# image), requirements-dev (make venv), tokenserver/ (its image), build/lock-tool (uv itself),
# tests/terraform/checkov (make check-terraform), bench/certbot (make bench-acme); and npm's
# package-lock.json (sha512 integrity) for the HCL tools. The dev and token-server locks are
# constrained by requirements.lock, so the tests run the exact versions the function image ships.
# `make lock` keeps the pins a lock already has where its .txt allows; UPGRADE=1 takes the newest.
LOCK_TOOL := .cache/lock-tool
UV := $(LOCK_TOOL)/bin/uv
UV_COMPILE = $(UV) pip compile --quiet --generate-hashes --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

$(UV): build/lock-tool.lock
	$(PYTHON) -m venv --clear $(LOCK_TOOL)
	$(LOCK_TOOL)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r build/lock-tool.lock
	touch $@

lock: $(UV)
	$(UV_COMPILE) requirements.txt -o requirements.lock
	$(UV_COMPILE) requirements-dev.txt -c requirements.lock -o requirements-dev.lock
	$(UV_COMPILE) $(DEMO_NO_EMIT) requirements-demo.txt -c requirements.lock \
		-o requirements-demo.lock
	$(UV_COMPILE) tokenserver/requirements.txt -c requirements.lock -o tokenserver/requirements.lock
	$(UV_COMPILE) build/lock-tool.txt -o build/lock-tool.lock
	$(UV_COMPILE) tests/terraform/checkov.txt -o tests/terraform/checkov.lock
	$(UV_COMPILE) bench/certbot.txt -o bench/certbot.lock
	cd tests/terraform/hcl-tools && npm $(if $(UPGRADE),update,install) --package-lock-only \
		--no-audit --no-fund --silent

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
	$(VENV)/bin/ruff check renewer tokenserver sandbox bench build tests func.py
	$(VENV)/bin/ruff format --check renewer tokenserver sandbox bench build tests func.py
	$(VENV)/bin/mypy --strict renewer tokenserver
	MYPYPATH=build $(VENV)/bin/mypy --strict build/prune_site.py build/image_site.py

# `make demo` and `make sandbox` install only what they run: requirements-demo.lock (the
# function's runtime without the distributions fdk and oci declare but never import, which the
# image prunes too: DEMO_NO_EMIT), hash-checked, without compiling oci's 40,000 modules up front
# (Python compiles the few hundred the demo imports on first use). A venv that `make venv`
# already filled has all of it, and is used as it is. Progress is shown step by step.
DEMO_STAMP := $(VENV)/.demo-installed
DEMO_NO_EMIT := $(foreach p,pytest pytest-asyncio iniconfig pluggy cython wheel pygments aiohttp \
	aiohappyeyeballs aiosignal frozenlist multidict yarl propcache python-pkcs11,--no-emit-package $(p))

demo-venv: $(DEMO_STAMP)
$(DEMO_STAMP): requirements-demo.lock
	@set -o pipefail; \
	if [ -f $(STAMP) ]; then \
		echo "== using $(VENV): make venv installed the development lock, a superset"; \
		$(MAKE) --no-print-directory venv; \
	else \
		echo "== [1/2] creating the virtualenv $(VENV)"; \
		$(PYTHON) -m venv --clear $(VENV) && \
		echo "== [2/2] installing the $$(grep -c '^[a-z0-9]' requirements-demo.lock) hash-checked" \
			"distributions of requirements-demo.lock (oci is most of it)" && \
		$(PY) -m pip install --disable-pip-version-check --no-compile --progress-bar on \
			--require-hashes --no-deps -r requirements-demo.lock | grep -v '^  Using cached'; \
	fi
	@touch $@

demo: demo-venv pebble
	$(PY) -m sandbox.demo

# The sandbox of `make demo`, left running: prints the exports and commands that drive the
# operator CLI (python -m renewer) against it; Ctrl-C stops it.
sandbox: demo-venv pebble
	$(PY) -m sandbox.cli_sandbox

$(LEGO):
	sandbox/fetch_deb.sh lego .cache/lego

$(CERTBOT_VENV)/bin/certbot: bench/certbot.lock
	$(PYTHON) -m venv --clear $(CERTBOT_VENV)
	$(CERTBOT_VENV)/bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
		-r bench/certbot.lock
	touch $@

bench: bench-acme bench-coldstart bench-tokenserver bench-image bench-fleet

bench-acme: venv pebble $(LEGO) $(CERTBOT_VENV)/bin/certbot
	$(PY) bench/acme_bench.py --certbot $(CERTBOT_VENV)/bin/certbot --lego .cache/lego/usr/bin/lego

bench-coldstart: venv pebble
	$(PY) bench/coldstart_bench.py

bench-tokenserver: venv
	$(PY) bench/tokenserver_bench.py

# The function image's site-packages built as its Dockerfile builds it (no Docker needed), its
# size, and the cold start of a not-due run from it.
bench-image: venv pebble
	$(PY) bench/image_bench.py

# 200 certificates over 20 load balancers (one holds 40), all due at once, with the emulator's
# realistic timing profile at scale 0.2 (about 20 minutes here); one JSON line per target kind in
# unscaled OCI seconds (bench/fleet_bench.py). FLEET_ARGS=... passes options, e.g. --targets service.
FLEET_ARGS ?=
bench-fleet: venv pebble
	$(PY) bench/fleet_bench.py $(FLEET_ARGS)

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache
