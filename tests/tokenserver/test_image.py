"""The token server's image, checked by reading (there is no docker here) and by running.

* The Dockerfile's invariants: pinned slim Python 3.11 bases, a builder stage and a final stage
  that gets only the built venv and the package, no build tools installed in the final stage, a
  non-root user, EXPOSE 8080, a HEALTHCHECK; the build context (the repository root filtered by
  tokenserver/Dockerfile.dockerignore) holds the package, its lock and the shared pruning script.
* tokenserver/requirements.lock is exactly the oci SDK's dependency closure, hash-checked, at
  the versions of the function's lock.
* The package imports only the standard library and oci (the image holds nothing else), and its
  token rules agree with the renewer's, which writes the objects.
* The image's pruning (build/prune_site.py, shared with the function) leaves an SDK the server
  runs on: the tree built as the image builds it serves a token from the emulator.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from renewer import naming
from tests.image import dockerfile
from tests.image.conftest import image_site, tokenserver_tree  # noqa: F401 - a fixture
from tests.image.test_function_image import lock_entries, lock_pins
from tests.tokenserver.conftest import (
    BUCKET,
    CHALLENGE,
    KEY_AUTHORIZATION,
    TOKEN,
    World,
    get,
    read_line,
)
from tokenserver import server, store

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tokenserver"
DOCKERFILE = PACKAGE / "Dockerfile"
LOCK = PACKAGE / "requirements.lock"


def test_the_dockerfile_builds_in_two_stages_from_a_pinned_slim_python_3_11():
    assert dockerfile.two_stage_problems(DOCKERFILE.read_text()) == []


def test_the_final_stage_runs_as_non_root_without_build_tools():
    final = dockerfile.stages(DOCKERFILE.read_text())[-1]

    assert dockerfile.final_stage_problems(DOCKERFILE.read_text()) == []
    assert ("EXPOSE", "8080") in final
    assert any(i == "HEALTHCHECK" and "tokenserver.healthcheck" in a for i, a in final)
    assert ("ENTRYPOINT", '["python", "-m", "tokenserver"]') in final
    assert "OCI_PYTHON_SDK_LAZY_IMPORTS_DISABLED=False" in " ".join(
        a for i, a in final if i == "ENV"
    )


def test_the_build_context_is_the_package_its_lock_and_the_pruning_script():
    context = image_site.context_files(PACKAGE / "Dockerfile.dockerignore")

    assert "build/prune_site.py" in context
    assert "tokenserver/requirements.lock" in context
    assert "tokenserver/server.py" in context
    outside = [f for f in context if not f.startswith("tokenserver/")]
    assert outside == ["build/prune_site.py"]
    # No tests, sandbox, terraform or renewer code; only Python files and the lock.
    assert all(f.endswith((".py", ".lock")) for f in context)
    for stage in dockerfile.stages(DOCKERFILE.read_text()):
        for instruction, args in stage:
            assert instruction != "ADD", "ADD can fetch URLs and unpack archives: use COPY"
            if instruction != "COPY" or args.startswith("--from="):
                continue
            *sources, _ = args.split()
            for source in sources:
                matched = [f for f in context if Path(f).match(source) or f == source]
                assert matched, f"COPY {source} matches nothing in the build context"


def test_the_builder_installs_the_lock_hash_checked_and_prunes_as_the_recipe():
    text = DOCKERFILE.read_text()
    builder = dockerfile.stages(text)[0]
    installs = [args for i, args in builder if i == "RUN" and "pip install" in args]
    options = dockerfile.prune_arguments(text)

    assert len(installs) == 1
    assert "--require-hashes" in installs[0]
    assert "--no-deps" in installs[0]
    assert options["app"] == ["/app"]
    assert tuple(options["lazy"]) == image_site.recipe("tokenserver").lazy
    assert tuple(options["drop"]) == image_site.recipe("tokenserver").drop
    assert "module" not in options  # python -m tokenserver: the app is the entry point


def test_the_lock_is_the_oci_closure_hash_checked_at_the_function_lock_versions():
    pins = lock_pins(LOCK)
    runtime = lock_pins(ROOT / "requirements.lock")
    closure: set[str] = set()

    def walk(name: str) -> None:
        dist = importlib.metadata.distribution(name)
        normal = dist.metadata["Name"].lower().replace("_", "-")
        if normal in closure:
            return
        closure.add(normal)
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                walk(requirement.name)

    walk("oci")
    assert set(pins) == closure
    assert pins == {name: runtime[name] for name in pins}
    assert (PACKAGE / "requirements.txt").read_text().count("==") == 1  # only oci, as ../
    assert all("--hash=sha256:" in entry for entry in lock_entries(LOCK))


def test_the_package_imports_only_the_standard_library_and_oci():
    allowed = set(sys.stdlib_module_names) | {"__future__", "oci", "tokenserver"}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


@pytest.mark.parametrize(
    "token",
    [
        TOKEN,
        "a",
        "A" * 256,
        "abc-_XYZ019",
        "abc.def",
        "abc/def",
        "abc%2F",
        "abc\n",
        "",
        "tok en",
        "é",
        "..",
    ],
)
def test_tokens_accepted_are_exactly_those_the_renewer_publishes(token: str):
    renewer_accepts = bool(naming.TOKEN_RE.fullmatch(token))
    server_accepts = bool(server.TOKEN_RE.fullmatch(token.encode()))

    assert server_accepts == renewer_accepts


def test_the_paths_agree_with_the_renewer():
    assert server.CHALLENGE_PATH.decode() == "/" + naming.CHALLENGE_PREFIX
    assert store.CHALLENGE_PREFIX == naming.CHALLENGE_PREFIX


@pytest.mark.integration
def test_the_server_runs_on_the_pruned_tree(
    world: World,
    tmp_path: Path,
    tokenserver_tree: image_site.Built,  # noqa: F811 - the fixture imported above
):
    site = tokenserver_tree.site
    assert "object_storage" in {p.name for p in (site / "oci").iterdir()}
    assert not (site / "oci" / "load_balancer").exists()  # it did prune
    assert not (site / "oci" / "identity").exists()
    world.put(TOKEN, KEY_AUTHORIZATION)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **world.rp_env,
        # Only the tree and the package (python -S: no site-packages), as in the image.
        "PYTHONPATH": f"{site}:{tokenserver_tree.app}",
        "OCI_PYTHON_SDK_LAZY_IMPORTS_DISABLED": "False",
        "TOKEN_SERVER_BUCKET": BUCKET,
        "TOKEN_SERVER_PORT": "0",
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": world.endpoint,
    }
    probe = subprocess.run(  # noqa: S603 - our own arguments
        [
            sys.executable,
            "-S",
            "-c",
            "import oci, tokenserver.store as s; print(oci.__file__);"
            " oci.auth.signers.InstancePrincipalsSecurityTokenSigner;"
            " oci.auth.signers.get_resource_principals_signer; oci.config.from_file",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert probe.stdout.startswith(str(site))

    proc = subprocess.Popen(  # noqa: S603 - our own arguments
        [sys.executable, "-S", "-m", "tokenserver"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = json.loads(read_line(proc.stdout, 60) or "{}")["port"]
        answer = get(port, CHALLENGE + TOKEN)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)

    assert (answer.status, answer.body) == (200, KEY_AUTHORIZATION.encode())
    assert proc.returncode == 0
