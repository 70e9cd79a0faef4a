"""``make demo`` installs only what the demo runs (issue 13 §7): requirements-demo.lock.

The lock is the function's runtime lock without the distributions nothing imports (the image
prunes them too), at exactly the runtime lock's versions and hashes, with no test or lint tool;
``make lock`` regenerates it and ``make demo``/``make sandbox`` install it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.image.test_function_image import lock_entries, lock_pins

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "requirements-demo.lock"
TOOLS = {"pytest", "pytest-asyncio", "ruff", "mypy", "hypothesis", "python-hcl2", "cython"}


def test_the_demo_lock_is_the_runtime_lock_without_tools_or_unimported_distributions():
    demo, runtime = lock_pins(DEMO), lock_pins(ROOT / "requirements.lock")

    assert set(demo) < set(runtime)
    assert {name: runtime[name] for name in demo} == demo
    assert not TOOLS & set(demo)
    for pin in ("fdk", "oci", "acme", "josepy", "cryptography"):
        assert pin in demo
    runtime_entries = {e.split(" ", 1)[0]: e for e in lock_entries(ROOT / "requirements.lock")}
    for entry in lock_entries(DEMO):  # the same files are trusted: the same hashes
        name = entry.split(" ", 1)[0]
        hashes = set(re.findall(r"sha256:[0-9a-f]{64}", entry))
        assert hashes == set(re.findall(r"sha256:[0-9a-f]{64}", runtime_entries[name]))


def test_make_lock_generates_it_and_make_demo_installs_it():
    makefile = (ROOT / "Makefile").read_text()

    assert "requirements-demo.txt -c requirements.lock" in makefile
    assert "-o requirements-demo.lock" in makefile
    assert "--require-hashes --no-deps -r requirements-demo.lock" in makefile
    assert re.search(r"^demo: demo-venv pebble$", makefile, re.MULTILINE)
    assert re.search(r"^sandbox: demo-venv pebble$", makefile, re.MULTILINE)
    no_emit = re.search(r"DEMO_NO_EMIT := \$\(foreach p,(.*?),--no", makefile, re.DOTALL)
    assert no_emit is not None
    excluded = set(no_emit.group(1).replace("\\\n", " ").split())
    assert not excluded & set(lock_pins(DEMO))
