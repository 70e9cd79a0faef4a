"""Benchmark: the function image's Python tree — its size, and the cold start run from it.

Usage (``make bench-image``)::

    .venv/bin/python bench/image_bench.py [--runs 7]

Method
------
1. Build the function's site-packages exactly as its Dockerfile does, without Docker
   (``build/image_site.py``): ``pip install --require-hashes --no-deps --target`` of
   ``requirements.lock``, the shared pruning (``build/prune_site.py``), bytecode. For
   comparison, the same lock installed unpruned (what ``pip install -r requirements.txt``
   gave before the lock: 592 MB).
2. ``site_packages_mb``: bytes of every file in the pruned tree, bytecode included, / 1e6;
   ``files``: their number.
3. The cold start from that tree, alternating run by run with the same code on the unpruned
   install of the lock (side by side, so the machine's speed of the moment cancels out):
   one sandbox (Pebble, the OCI emulator, the token backend);
   the certificate is issued once beforehand, then each measured run starts a **new** fdk
   process with ``python -S`` and only the pruned tree and the application on the path (the
   development venv cannot be reached), and invokes the scheduled run that finds nothing due —
   the commonest invocation by far. ``coldstart_s`` is spawn → end of the first response
   (median of ``--runs``), ``peak_rss_mb`` the process's ``VmHWM``.
4. Where a Docker engine answers, the real image is built and its size reported; where none
   does (this project's machines), that is said.

Targets (issue 14): site-packages ≤ 60 MB, cold start ≤ 0.30 s, peak RSS ≤ 64 MB. The last line
is one JSON object:
``{"bench":"image","site_packages_mb":…,"files":…,"coldstart_s":…,"peak_rss_mb":…}``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "build"))

import image_site  # noqa: E402 - after the path set-up

from bench.coldstart_bench import one_cold_start  # noqa: E402
from sandbox.fn_server import FnServer  # noqa: E402
from sandbox.world import SandboxWorld  # noqa: E402

TARGET_MB = 60.0
TARGET_COLDSTART_S = 0.30
TARGET_RSS_MB = 64.0


def docker_image_size() -> str:
    """The real image's size when a Docker engine answers, else why it was not built."""
    docker = shutil.which("docker")
    if docker is None:
        return "docker: not installed; the real image was not built"
    info = subprocess.run(
        [docker, "info", "--format", "{{.ServerVersion}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if info.returncode != 0:
        return "docker: the client is here but no engine answers; the real image was not built"
    tag = "acme-renewer:bench-image"
    build = subprocess.run(
        [docker, "build", "-q", "-t", tag, str(ROOT)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if build.returncode != 0:
        return f"docker build failed: {build.stderr.strip()[-500:]}"
    size = subprocess.run(
        [docker, "image", "inspect", tag, "--format", "{{.Size}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"docker image {tag}: {int(size) / 1e6:.0f} MB (base image included)"


def main() -> int:
    """Run the benchmark; prints a table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    recipe = image_site.recipe("function")
    with tempfile.TemporaryDirectory(prefix="bench-image-") as tmp:
        workdir = Path(tmp)
        unpruned_bytes, unpruned_files = image_site.tree_size(image_site.installed(recipe.lock))
        built = image_site.build(recipe, workdir / "tree")
        size, files = image_site.tree_size(built.site)
        kept = sorted(
            p.name for p in (built.site / "oci").iterdir() if (p / "__init__.py").is_file()
        )
        path = [built.site, built.app]
        function = built.app / "func.py"
        with SandboxWorld(workdir / "world") as world:
            (workdir / "issue").mkdir()
            with FnServer(
                workdir / "issue",
                world.function_environment(),
                function=function,
                python_path=path,
            ) as first:
                issued = first.invoke(b"")
            if issued.status != 200:
                sys.stderr.write(f"set-up issuance failed: {issued.text}\n")
                return 1
            # Side by side, alternating: the same code on the whole lock, unpruned (what the image
            # held before the pruning: every oci service, fdk's test tools, python-pkcs11).
            unpruned_path = [image_site.installed(recipe.lock), built.app]
            runs, unpruned_runs = [], []
            for i in range(args.runs):
                runs.append(
                    one_cold_start(world, workdir / f"run-{i}", function=function, python_path=path)
                )
                unpruned_runs.append(
                    one_cold_start(
                        world, workdir / f"full-{i}", function=function, python_path=unpruned_path
                    )
                )
    wall = statistics.median(r["wall_s"] for r in runs)
    rss = statistics.median(r["peak_rss_mb"] for r in runs)
    unpruned_wall = statistics.median(r["wall_s"] for r in unpruned_runs)
    unpruned_rss = statistics.median(r["peak_rss_mb"] for r in unpruned_runs)
    print("the function image's Python tree (build/image_site.py, as the Dockerfile builds it)")
    print(f"  lock installed, unpruned  {unpruned_bytes / 1e6:8.1f} MB  {unpruned_files:6} files")
    print(f"  pruned + bytecode         {size / 1e6:8.1f} MB  {files:6} files")
    print(f"  removed distributions: {', '.join(built.pruned.distributions)}")
    print(f"  removed packages: {len(built.pruned.packages)} (oci services, test suites)")
    print(f"  oci packages kept: {', '.join(kept)}")
    print(f"cold start from the pruned tree, {args.runs} fresh fdk processes (median, min-max)")
    for key, unit in (("wall_s", "s"), ("listen_s", "s"), ("call_s", "s"), ("peak_rss_mb", "MB")):
        values = [run[key] for run in runs]
        print(
            f"  {key:12} {statistics.median(values):8.3f} {unit}"
            f"  ({min(values):.3f}-{max(values):.3f})"
        )
    print(
        f"  the same code on the unpruned lock: wall {unpruned_wall:.3f} s,"
        f" peak RSS {unpruned_rss:.1f} MB (pruned: {wall / unpruned_wall:.2f}x the wall time)"
    )
    verdicts = (
        ("site-packages", size / 1e6, TARGET_MB),
        ("cold start", wall, TARGET_COLDSTART_S),
        ("peak RSS", rss, TARGET_RSS_MB),
    )
    for name, value, target in verdicts:
        print(f"  target {name} <= {target}: {'meets' if value <= target else 'MISSES'}")
    print(docker_image_size())
    result = {
        "bench": "image",
        "site_packages_mb": round(size / 1e6, 1),
        "files": files,
        "coldstart_s": round(wall, 3),
        "peak_rss_mb": round(rss, 1),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
