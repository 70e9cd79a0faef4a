"""The token server's image, checked by reading (there is no docker here) and by running.

* The Dockerfile's invariants: pinned slim Python 3.11 bases, a builder stage and a final stage
  that gets only the built venv and the package, no build tools installed in the final stage, a
  non-root user, EXPOSE 8080, a HEALTHCHECK, nothing from outside tokenserver/ copied.
* tokenserver/requirements.txt is exactly the oci SDK's dependency closure at the versions the
  tests run with, and pins oci as ../requirements.txt does.
* The package imports only the standard library and oci (the image holds nothing else), and its
  token rules agree with the renewer's, which writes the objects.
* The image's SDK pruning (slim_oci.py) leaves an SDK the server runs on: a pruned copy serves a
  token from the emulator through ``python -m tokenserver``.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from renewer import naming
from tests.tokenserver.conftest import (
    BUCKET,
    CHALLENGE,
    KEY_AUTHORIZATION,
    TOKEN,
    World,
    get,
    read_line,
)
from tokenserver import server, slim_oci, store

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tokenserver"
DOCKERFILE = PACKAGE / "Dockerfile"
PINNED_PYTHON = re.compile(r"python:3\.11\.[0-9]+-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?")
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cc ")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    assert not pending, "a continuation line runs off the end of the Dockerfile"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def stages(text: str) -> list[list[tuple[str, str]]]:
    found: list[list[tuple[str, str]]] = []
    for instruction, args in instructions(text):
        if instruction == "FROM":
            found.append([])
        assert found, f"{instruction} before the first FROM"
        found[-1].append((instruction, args))
    return found


def test_the_dockerfile_builds_in_two_stages_from_a_pinned_slim_python_3_11():
    all_stages = stages(DOCKERFILE.read_text())

    assert len(all_stages) == 2
    for stage in all_stages:
        image = stage[0][1].split()[0]
        assert PINNED_PYTHON.fullmatch(image), f"{image} is not a pinned python:3.11.x-slim tag"
    assert all_stages[0][0][1].split()[-1] == "builder"


def test_the_final_stage_runs_as_non_root_without_build_tools():
    final = stages(DOCKERFILE.read_text())[-1]
    names = [instruction for instruction, _ in final]

    users = [args for instruction, args in final if instruction == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert names.index("USER") < names.index("ENTRYPOINT")
    for instruction, args in final:
        if instruction == "RUN":
            assert "apt-get install" not in args, args
            assert "pip install" not in args, args
            assert not any(tool in args for tool in BUILD_TOOLS), args
        if instruction == "COPY":
            assert args.startswith("--from=builder "), (
                f"final stage copies from the context: {args}"
            )
    assert ("EXPOSE", "8080") in final
    assert any(i == "HEALTHCHECK" and "tokenserver.healthcheck" in a for i, a in final)
    assert ("ENTRYPOINT", '["python", "-m", "tokenserver"]') in final


def test_only_files_of_the_package_are_copied_into_the_image():
    for stage in stages(DOCKERFILE.read_text()):
        for instruction, args in stage:
            assert instruction != "ADD", "ADD can fetch URLs and unpack archives: use COPY"
            if instruction != "COPY" or args.startswith("--from="):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert ".." not in source, source
                assert not source.startswith("/"), source
                matched = list(PACKAGE.glob(source))
                assert matched, f"COPY {source} matches nothing in tokenserver/"
                for path in matched:
                    # The context is tokenserver/: no tests, sandbox, terraform or renewer code.
                    assert path.resolve().is_relative_to(PACKAGE)
                    assert path.suffix in (".py", ".txt"), path


def test_the_image_requirements_are_the_oci_closure_at_the_tested_versions():
    pins = dict(
        line.split("==")
        for line in (PACKAGE / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    )
    root_pins = dict(
        line.split("==")
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )

    closure: dict[str, str] = {}

    def walk(name: str) -> None:
        dist = importlib.metadata.distribution(name)
        if dist.metadata["Name"] in closure:
            return
        closure[dist.metadata["Name"]] = dist.version
        for requirement in map(Requirement, dist.requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                walk(requirement.name)

    walk("oci")
    assert pins["oci"] == root_pins["oci"]
    assert pins == closure


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
def test_the_server_runs_on_the_pruned_sdk(world: World, tmp_path: Path):
    installed = Path(importlib.metadata.distribution("oci").locate_file("oci"))
    pruned = tmp_path / "site" / "oci"
    removed = {p.name for p in slim_oci.removable(installed)}
    shutil.copytree(
        installed, pruned, ignore=lambda d, _names: removed if Path(d) == installed else ()
    )
    assert {"identity", "load_balancer"} <= removed  # it did prune
    assert slim_oci.size(pruned) < slim_oci.size(installed) / 5
    world.put(TOKEN, KEY_AUTHORIZATION)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TOKEN_SERVER_")},
        **world.rp_env,
        "PYTHONPATH": f"{tmp_path / 'site'}:{ROOT}",
        "TOKEN_SERVER_BUCKET": BUCKET,
        "TOKEN_SERVER_PORT": "0",
        "TOKEN_SERVER_HOST": "127.0.0.1",
        "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT": world.endpoint,
    }
    probe = subprocess.run(  # noqa: S603 - our own arguments
        [
            sys.executable,
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
    assert probe.stdout.startswith(str(pruned))

    proc = subprocess.Popen(  # noqa: S603 - our own arguments
        [sys.executable, "-m", "tokenserver"],
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
