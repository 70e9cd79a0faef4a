"""The images' site-packages built without Docker, exactly as their Dockerfiles build them.

Used by ``make bench-image`` and by the tests that import and run the code from the pruned
tree (no Docker engine runs on the development machines or in CI). Each image is a
:class:`Recipe`: its hash-checked lock, the files the Dockerfile copies in as the application,
and the arguments it gives ``prune_site.py``; a test checks each Dockerfile's prune step against
its recipe, so the two cannot drift.

:func:`build` installs the lock with ``pip install --require-hashes --no-deps --target`` (cached
under ``.cache/image-site/<sha256 of the lock>``: the install is the slow part and depends on
the lock alone), then takes a hard-linked copy of it, copies the application beside it, prunes
and precompiles — what the builder stage does.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import prune_site

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "image-site"


@dataclass(frozen=True)
class Recipe:
    """How one image's Python tree is made (see the module doc)."""

    name: str
    lock: Path
    app_files: tuple[str, ...]  # paths relative to ROOT, as the image lays them out
    modules: tuple[str, ...]
    lazy: tuple[str, ...] = ("oci",)
    # oci imports python-pkcs11 for its PKCS#11 signer inside try/except ImportError; neither
    # image signs with an HSM (resource principals, API keys), and the import costs ~50 ms.
    drop: tuple[str, ...] = ("python-pkcs11",)


def function_files() -> tuple[str, ...]:
    """The application files of the function image (``func.py`` and ``renewer/``).

    What ``.dockerignore`` lets through, less the build inputs (Dockerfile, func.yaml, the lock
    and the pruning script).
    """
    build_inputs = {"Dockerfile", "func.yaml", "requirements.lock", "build/prune_site.py"}
    return tuple(f for f in context_files(ROOT / ".dockerignore") if f not in build_inputs)


def context_files(ignore_file: Path) -> list[str]:
    """Files git tracks that a Docker build context filtered by ``ignore_file`` keeps.

    The allow-list form only (``**`` then ``!`` exceptions; the last match wins), which is
    what both images use.
    """
    rules = []
    for raw in ignore_file.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],  # noqa: S607
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
        if keep and (ROOT / path).is_file():
            kept.append(path)
    return sorted(kept)


FUNCTION = Recipe(
    name="function",
    lock=ROOT / "requirements.lock",
    app_files=(),  # filled by recipe(): it reads git and .dockerignore
    modules=("fdk.scripts.fdk",),
)
TOKEN_SERVER = Recipe(
    name="tokenserver",
    lock=ROOT / "tokenserver" / "requirements.lock",
    app_files=(),
    modules=(),
)


def recipe(name: str) -> Recipe:
    """The recipe of ``function`` or ``tokenserver``, with its application files listed."""
    if name == "function":
        return replace(FUNCTION, app_files=function_files())
    if name == "tokenserver":
        files = tuple(
            f
            for f in context_files(ROOT / "tokenserver" / "Dockerfile.dockerignore")
            if f.endswith(".py") and f.startswith("tokenserver/")
        )
        return replace(TOKEN_SERVER, app_files=files)
    msg = f"no image named {name!r}: function or tokenserver"
    raise ValueError(msg)


def installed(lock: Path) -> Path:
    """The lock installed into a ``--target`` tree, from the cache when it is there."""
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    target = CACHE / f"{lock.parent.name}-{digest}"
    if (target / ".complete").is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=CACHE))
    try:
        pip = subprocess.run(  # noqa: S603 - our interpreter's pip, our lock
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--require-hashes",
                "--no-deps",
                "--target",
                str(staging),
                "-r",
                str(lock),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if pip.returncode != 0:
            msg = f"pip could not install {lock}:\n{pip.stderr[-4000:]}"
            raise RuntimeError(msg)
        (staging / ".complete").write_text(digest)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


@dataclass(frozen=True)
class Built:
    """A built tree: ``site`` (the pruned site-packages) and ``app`` (the application)."""

    site: Path
    app: Path
    pruned: prune_site.Pruned


def build(recipe_: Recipe, dest: Path, *, compile_bytecode: bool = True) -> Built:
    """Build ``recipe_``'s tree under ``dest`` (which must not exist yet); see the module doc."""
    source = installed(recipe_.lock)
    site, app = dest / "site-packages", dest / "app"
    dest.mkdir(parents=True)
    # Hard links: the copy costs no space and no time; prune_site replaces, never rewrites.
    shutil.copytree(source, site, copy_function=os.link, ignore=shutil.ignore_patterns(".complete"))
    for relative in recipe_.app_files:
        target = app / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    pruned = prune_site.prune(
        site,
        [app],
        lazy=recipe_.lazy,
        modules=recipe_.modules,
        drop=recipe_.drop,
        scripts=site / "bin",
    )
    if compile_bytecode:
        subprocess.run(  # noqa: S603 - our interpreter's compileall
            [
                sys.executable,
                "-m",
                "compileall",
                "-q",
                "-j",
                "0",
                "--invalidation-mode",
                "unchecked-hash",
                str(site),
                str(app),
            ],
            check=True,
        )
    return Built(site=site, app=app, pruned=pruned)


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``path``."""
    total = count = 0
    for file in path.rglob("*"):
        if file.is_file() and not file.is_symlink():
            total += file.stat().st_size
            count += 1
    return total, count
