"""The function image holds exactly what the handler needs (``.dockerignore`` at the root).

``fn build`` sends the project directory as the Docker build context and the Fn Python
Dockerfile copies all of it, so ``.dockerignore`` decides what ships. These tests apply it (its
allow-list form: ``**`` then ``!`` exceptions) to the files git tracks, copy what remains to a
temporary directory, and import the handler's whole import closure from there: a module that
the function needs but the image leaves out fails here, not in the tenancy.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = {"fdk", "oci", "acme", "josepy", "cryptography"}


def shipped() -> list[str]:
    """Files git tracks that the image keeps, by .dockerignore's rules (last match wins)."""
    rules = []
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    tracked = subprocess.run(
        ["git", "ls-files"],  # noqa: S607 - git from PATH, as every developer runs it
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kept = []
    for path in tracked:
        keep = True
        for negated, pattern in rules:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(
                path, pattern.replace("/**", "/*")
            ):
                keep = negated
        if keep:
            kept.append(path)
    return kept


def test_only_the_handler_and_its_package_ship():
    files = shipped()
    tops = {path.split("/", 1)[0] for path in files}
    assert tops == {"func.py", "func.yaml", "requirements.txt", "renewer"}, sorted(tops)
    assert "renewer/runner.py" in files
    assert not [f for f in files if f.startswith(("tests/", "sandbox/", "terraform/", "bench/"))]


def test_the_shipped_files_import_the_whole_handler(tmp_path: Path):
    for path in shipped():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, target)
    # Everything func.py imports, at once or on the first call (wiring, operations, the CLI).
    code = (
        "import func, renewer.wiring, renewer.operations_wiring, renewer.cli, renewer.runner;"
        "import importlib.util as u;"
        "assert u.find_spec('sandbox') is None and u.find_spec('tests') is None"
    )
    result = subprocess.run(  # noqa: S603 - our interpreter, our code
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(tmp_path)!r}); {code}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_runtime_pins_are_the_fixed_five():
    pins = {}
    for raw in (ROOT / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[name.lower()] = version
    assert set(pins) == RUNTIME
    assert all(pins.values()), pins  # every one pinned exactly
