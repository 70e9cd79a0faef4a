"""The function runs from its pruned tree: nothing it can import is missing, every path works.

The tree is built as the image builds it (``build/image_site.py``: the hash-checked lock, the
shared pruning, bytecode). Code runs from it with ``python -S`` and only the tree on the path:
the development venv cannot fill a gap. Two checks, so that a new import can never ship a
broken image:

* statically, every module the pruning analysis says the code can reach — every adapter, both
  target kinds, operations sinks, the CLI, the entry point — imports from the tree whenever it
  imports in the full development venv;
* dynamically, the real fdk server runs the handler from the tree through every action (renew
  to a listener and a Certificates-service certificate, plan, status, forced renewal,
  rollback) with metrics, notifications and the journal on, against the sandbox.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandbox.fn_server import FnResponse, FnServer
from sandbox.pebble import PebbleOptions
from sandbox.world import METRICS_NAMESPACE, TOPIC_ID, SandboxWorld
from tests.image.conftest import image_site

ROOT = Path(__file__).resolve().parents[2]

# Run in a child interpreter: import each name read from stdin, print {name: error} as JSON.
_IMPORT_ALL = """
import importlib, json, sys
failed = {}
for name in sys.stdin.read().split():
    try:
        importlib.import_module(name)
    except BaseException as exc:  # SystemExit too: a module that exits on import is a failure
        failed[name] = f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(failed))
"""


def import_failures(names: list[str], path: list[Path] | None) -> dict[str, str]:
    """{module: error} importing ``names`` with only ``path`` (None: the development venv)."""
    if path is None:
        command = [sys.executable, "-c", _IMPORT_ALL]
        env = {"PYTHONPATH": str(ROOT)}
    else:
        command = [sys.executable, "-S", "-c", _IMPORT_ALL]
        env = {"PYTHONPATH": ":".join(map(str, path))}
    result = subprocess.run(  # noqa: S603 - our interpreter, our module names
        command,
        input="\n".join(names),
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin", "OCI_PYTHON_SDK_LAZY_IMPORTS_DISABLED": "False"},
        cwd="/",
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.integration
def test_every_module_the_function_can_reach_imports_from_the_pruned_tree(
    function_tree: image_site.Built,
):
    app_modules = [
        name
        for name, _path, _package in image_site.prune_site._app_modules(function_tree.app)
        if name != "renewer.__main__"  # runs the CLI
    ]
    reached = sorted(
        name for name in function_tree.pruned.reached if not name.endswith(".__main__")
    )
    names = app_modules + reached

    pruned = import_failures(names, [function_tree.site, function_tree.app])
    # What fails in the full venv too is not the pruning's doing (optional extras, other
    # platforms, modules that need a package nobody declares).
    full = import_failures(sorted(pruned), None) if pruned else {}
    # A dropped optional distribution (python-pkcs11) is missing on purpose: only the modules
    # that import it may fail, and only for that reason; their importers catch it (below).
    dropped = {"ModuleNotFoundError: No module named 'pkcs11'"}

    assert {
        name: error for name, error in pruned.items() if name not in full and error not in dropped
    } == {}
    assert {name for name, error in pruned.items() if error in dropped} <= {
        "oci.auth.signers.pkcs11_signer"
    }
    assert "oci.auth.signers" in function_tree.pruned.reached
    assert "oci.auth.signers" not in pruned  # imports without the HSM signer
    assert len(reached) > 500  # the analysis did follow the SDK, not only the app
    for service in ("load_balancer", "certificates_management", "certificates", "vault"):
        assert f"oci.{service}" in function_tree.pruned.reached
    for service in ("secrets", "key_management", "monitoring", "ons", "object_storage"):
        assert f"oci.{service}" in function_tree.pruned.reached


@pytest.mark.integration
def test_the_pruned_tree_leaves_out_what_the_function_never_imports(
    function_tree: image_site.Built,
):
    site = function_tree.site
    removed = set(function_tree.pruned.distributions)

    # fdk's declared test and build dependencies, and the services the code does not use.
    assert {"pytest", "cython", "setuptools", "pygments", "aiohttp"} <= removed
    assert {"python_pkcs11", "asn1crypto"} <= removed  # --drop, and what only it imported
    assert not (site / "oci" / "identity").exists()
    assert not (site / "oci" / "core").exists()
    assert not (site / "fdk" / "tests").exists()
    assert (site / "_cffi_backend.cpython-311-x86_64-linux-gnu.so").exists() or any(
        site.glob("_cffi_backend*")
    )  # imported from C by cryptography's Rust core
    size, _files = image_site.tree_size(site)
    assert size < 100e6  # the whole SDK is ~500 MB; make bench-image prints the real figure


def _renewal_info_requests(world: SandboxWorld) -> int:
    """How many renewalInfo requests Pebble has logged so far."""
    return sum("/renewalinfo/" in line.lower() for line in world.pebble_log().splitlines())


def _imported(log: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in log.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


def _report(response: FnResponse) -> dict[str, Any]:
    assert response.status == 200, response.text
    return json.loads(response.body)  # type: ignore[no-any-return]


@pytest.mark.e2e
def test_the_handler_runs_every_action_from_the_pruned_tree(
    function_tree: image_site.Built, tmp_path: Path
):
    options = PebbleOptions(retry_after_authz=0, retry_after_order=0)
    with SandboxWorld(
        tmp_path / "world", service_certificate=True, pebble_options=options
    ) as world:
        document = world.config_document()
        document["operations"] = {
            "metrics": {"namespace": METRICS_NAMESPACE},
            "notifications": {"topicId": TOPIC_ID, "onSuccess": True},
            "journal": {"maxRecords": 10},
        }
        environment = world.function_environment(document)
        tree = {
            "function": function_tree.app / "func.py",
            "python_path": [function_tree.site, function_tree.app],
        }
        (tmp_path / "fn").mkdir()
        with FnServer(tmp_path / "fn", environment, **tree) as server:
            issued = _report(server.invoke(b""))
        # A cold start's not-due run, which asks the CA for renewal information (none is
        # recorded after an issuance): no ACME stack is imported for it.
        asked_before = _renewal_info_requests(world)
        (tmp_path / "cold").mkdir()
        profiled = {**environment, "PYTHONPROFILEIMPORTTIME": "1"}
        with FnServer(tmp_path / "cold", profiled, **tree) as cold:
            not_due = _report(cold.invoke(b""))
            imported = _imported(cold.log())
        asked = _renewal_info_requests(world) - asked_before
        (tmp_path / "warm").mkdir()
        with FnServer(tmp_path / "warm", environment, **tree) as server:
            plan = _report(server.invoke(b'{"action": "plan"}'))
            status = _report(server.invoke(b'{"action": "status"}'))
            forced = _report(server.invoke(b'{"force": true}'))
            first = issued["certificates"][0]
            body = {"action": "rollback", "certificates": ["shop"], "version": first["version"]}
            rolled = _report(server.invoke(json.dumps(body)))
            log = server.log()

        emulator = world.emulator.services
        posted = emulator["monitoring"].posted(name="days_to_expiry")  # type: ignore[attr-defined]
        published = emulator["notifications"].published(topicId=TOPIC_ID)  # type: ignore[attr-defined]

    assert first["outcome"] == "renewed", first
    assert not_due["certificates"][0]["reason"] == "NotDue", not_due
    assert asked >= 1, "the not-due run did not ask for renewal information"
    assert "renewer.adapters.acme_renewal_info" in imported
    assert not {"acme", "josepy", "requests", "renewer.adapters.acme_issuer"} & imported
    # Both target kinds: the listener and the Certificates-service certificate.
    assert "switched 2 of 2 target(s)" in first["message"], first
    assert plan["action"] == "plan"
    assert status["action"] == "status"
    assert forced["certificates"][0]["outcome"] == "renewed", forced
    assert forced["certificates"][0]["serial"] != first["serial"]
    assert (rolled["action"], rolled["certificates"][0]["reason"]) == ("rollback", "Rollback")
    assert rolled["certificates"][0]["serial"] == first["serial"]
    assert posted, "no datapoint reached Monitoring"
    assert published, "no message reached the topic"
    assert "ModuleNotFoundError" not in log
    assert "ImportError" not in log
