"""The dependency rule, enforced: pure core <- ports <- adapters; SDKs only in their adapter.

Each module of ``renewer`` is parsed with ``ast`` (nothing is imported) and its imports are
checked against the architecture brief.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "renewer"
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

# Third-party families and the adapter-module prefix allowed to import each.
SDK_OWNERS = {
    "acme": "acme_",
    "josepy": "acme_",
    "requests": "acme_",
    "oci": "oci_",
    "OpenSSL": "oci_",  # pyOpenSSL (installed with oci): VERIFY reads the served chain with it
    "fdk": None,  # only func.py, outside the package
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py"))


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package_parts = path.relative_to(ROOT).with_suffix("").parts[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package_parts[: len(package_parts) - node.level + 1])
                found.add(f"{base}.{node.module}" if node.module else base)
            elif node.module:
                found.add(node.module)
    return found


def top(name: str) -> str:
    return name.split(".", 1)[0]


def test_the_package_has_modules_to_check():
    names = {p.stem for p in modules()}
    assert {"model", "policy", "pki", "errors", "ports", "acme_issuer"} <= names


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_dependency_rule(path: Path):
    is_adapter = "adapters" in path.parts
    # The composition roots (renewal; operations sinks) and the entry layer that reads the
    # environment and runs an invocation -> everything in renewer.
    is_composition_root = path in {
        PACKAGE / name
        for name in (
            "wiring.py",
            "operations_wiring.py",
            "revocation_wiring.py",
            "runner.py",
            "environment.py",
        )
    }
    for name in imports_of(path):
        root = top(name)
        if root in STDLIB:
            continue
        assert root not in {"sandbox", "tests", "func", "bench"}, f"{path.name} imports {name}"
        if root == "renewer":
            if is_composition_root:
                continue
            if not is_adapter:
                assert not name.startswith("renewer.adapters"), (
                    f"core module {path.name} imports adapter {name}"
                )
            elif name.startswith("renewer.adapters."):
                # An adapter may use its own family's helpers (acme_issuer -> acme_transport).
                other = name.rsplit(".", 1)[-1]
                assert other.split("_", 1)[0] == path.stem.split("_", 1)[0], (
                    f"adapter {path.name} imports another adapter family: {name}"
                )
            continue
        if root == "cryptography":
            # Only pki (keys, CSRs, parsing) and the adapters touch cryptography directly.
            assert is_adapter or path.stem == "pki", f"{path.name} imports {name}"
            continue
        owner = SDK_OWNERS.get(root)
        assert owner is not None, f"{path.name} imports {name}, which no module may import"
        assert is_adapter, f"core module {path.name} imports SDK {name}"
        assert path.stem.startswith(owner), f"{path.name} imports {name}; only {owner}* may"


def test_only_func_py_imports_fdk():
    offenders = [
        p
        for p in [*ROOT.glob("*.py"), *modules(), *(ROOT / "sandbox").rglob("*.py")]
        if p.name != "func.py" and "fdk" in {top(n) for n in imports_of(p)}
    ]
    assert offenders == []
