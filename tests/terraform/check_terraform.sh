#!/usr/bin/env bash
# The offline checks of terraform/ (issue 6), as `make check-terraform` runs them. Installs
# what it needs into the project, idempotently, each from a hash-checked lock (a stamp file per
# tool holds the lock's sha256, so a new lock reinstalls):
#   .venv            python-hcl2 (requirements-dev.lock, installed by make venv)
#   .cache/hcl-tools @cdktf/hcl2json + @cdktf/hcl-tools (HashiCorp's HCL parser and hclwrite.Format),
#                    `npm ci` of tests/terraform/hcl-tools/package-lock.json (sha512 integrity)
#   .cache/checkov-venv  checkov, in its own venv (it pins many packages of its own), from
#                    tests/terraform/checkov.lock with --require-hashes
# Then: HCL parse (Go hcl/v2 and python-hcl2) + canonical formatting, the provider-schema
# check (../shared/tools/check_tf.py), checkov, and the tests in tests/terraform.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=.venv/bin/python
HCL_LOCK=tests/terraform/hcl-tools/package-lock.json
CHECKOV_LOCK=tests/terraform/checkov.lock
HCL_TOOLS=.cache/hcl-tools
CHECKOV_VENV=.cache/checkov-venv
CHECK_TF=${CHECK_TF:-../shared/tools/check_tf.py}
PIP=(--quiet --disable-pip-version-check)

step() { printf '\n== %s\n' "$*"; }
digest() { sha256sum "$1" | cut -d' ' -f1; }

if [[ "$(cat "$HCL_TOOLS/LOCK" 2>/dev/null)" != "$(digest "$HCL_LOCK")" ]]; then
    step "installing @cdktf/hcl2json and @cdktf/hcl-tools into $HCL_TOOLS (npm ci of $HCL_LOCK)"
    rm -rf "$HCL_TOOLS"
    mkdir -p "$HCL_TOOLS"
    cp tests/terraform/hcl-tools/package.json "$HCL_LOCK" "$HCL_TOOLS/"
    npm ci --prefix "$HCL_TOOLS" --no-audit --no-fund --silent
    digest "$HCL_LOCK" > "$HCL_TOOLS/LOCK"
fi
if [[ "$(cat "$CHECKOV_VENV/LOCK" 2>/dev/null)" != "$(digest "$CHECKOV_LOCK")" ]]; then
    step "installing checkov into $CHECKOV_VENV ($CHECKOV_LOCK, hash-checked)"
    python3 -m venv --clear "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install "${PIP[@]}" --require-hashes --no-deps -r "$CHECKOV_LOCK"
    digest "$CHECKOV_LOCK" > "$CHECKOV_VENV/LOCK"
fi

step "HCL: parse (hashicorp/hcl via @cdktf/hcl2json) and canonical formatting (hclwrite.Format)"
node tests/terraform/hcl_check.mjs "$HCL_TOOLS/node_modules" terraform
if command -v terraform >/dev/null; then
    step "terraform fmt -check (a terraform binary is on PATH)"
    TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -diff -recursive terraform
fi

step "provider schema: check_tf.py terraform -r (python-hcl2 parse + oracle/oci v8.28.0 arguments)"
if [[ -f "$CHECK_TF" ]]; then
    "$PY" "$CHECK_TF" terraform -r
else
    # The team's checker and schema live beside the project (../shared), not in it. A checkout
    # without them cannot run this step: say so loudly rather than pretend it passed.
    echo "WARNING: SKIPPED the provider-schema check: $CHECK_TF not found (set CHECK_TF=/path/to/check_tf.py)" >&2
fi

step "checkov -d terraform"
"$CHECKOV_VENV/bin/checkov" -d terraform --quiet --compact --skip-download

step "tests/terraform (generated configuration, validations, policies proven in the emulator)"
"$PY" -m pytest -q -p no:cacheprovider tests/terraform
