#!/usr/bin/env bash
# The offline checks of terraform/ (issue 6), as `make check-terraform` runs them. Installs
# what it needs into the project, idempotently (pinned versions; a stamp file per tool):
#   .venv            python-hcl2 (requirements-dev.txt)
#   .cache/hcl-tools @cdktf/hcl2json + @cdktf/hcl-tools (HashiCorp's HCL parser and hclwrite.Format)
#   .cache/checkov-venv  checkov, in its own venv (it pins many packages of its own)
# Then: HCL parse (Go hcl/v2 and python-hcl2) + canonical formatting, the provider-schema
# check (../shared/tools/check_tf.py), checkov, and the tests in tests/terraform.
set -euo pipefail
cd "$(dirname "$0")/../.."

PY=.venv/bin/python
HCL2_VERSION=8.1.4
CDKTF_VERSION=0.21.0
CHECKOV_VERSION=3.3.30
HCL_TOOLS=.cache/hcl-tools
CHECKOV_VENV=.cache/checkov-venv
CHECK_TF=${CHECK_TF:-../shared/tools/check_tf.py}
PIP=(--quiet --disable-pip-version-check)

step() { printf '\n== %s\n' "$*"; }

if ! "$PY" -c "import hcl2, sys; sys.exit(hcl2.version.version != '$HCL2_VERSION')" 2>/dev/null; then
    step "installing python-hcl2==$HCL2_VERSION into .venv"
    "$PY" -m pip install "${PIP[@]}" "python-hcl2==$HCL2_VERSION"
fi
if [[ "$(cat "$HCL_TOOLS/VERSION" 2>/dev/null)" != "$CDKTF_VERSION" ]]; then
    step "installing @cdktf/hcl2json and @cdktf/hcl-tools $CDKTF_VERSION into $HCL_TOOLS"
    npm install --prefix "$HCL_TOOLS" --no-audit --no-fund --silent \
        "@cdktf/hcl2json@$CDKTF_VERSION" "@cdktf/hcl-tools@$CDKTF_VERSION"
    echo "$CDKTF_VERSION" > "$HCL_TOOLS/VERSION"
fi
if [[ "$(cat "$CHECKOV_VENV/VERSION" 2>/dev/null)" != "$CHECKOV_VERSION" ]]; then
    step "installing checkov==$CHECKOV_VERSION into $CHECKOV_VENV"
    python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install "${PIP[@]}" "checkov==$CHECKOV_VERSION"
    echo "$CHECKOV_VERSION" > "$CHECKOV_VENV/VERSION"
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
