"""Delete the OCI SDK's service packages the token server never imports (image build step).

The ``oci`` wheel carries every OCI service (~500 MB installed); the token server uses Object
Storage, the signers of ``oci.auth``, and the two services ``import oci`` itself loads
(``oci.pagination`` imports ``dns`` and ``object_storage``, ``oci.waiter`` imports
``work_requests``). Service packages are the directories holding ``*_client.py``; everything
else (``_vendor``, ``retry``, ``circuit_breaker``, ...) is kept. ``oci`` imports services
lazily, so a removed one would only fail if imported — tests/tokenserver/test_image.py runs the
server on a pruned copy to prove it is not.

Usage: ``python slim_oci.py <site-packages>/oci`` (in place; prints what it freed).
Stdlib only: it runs in the image's builder stage.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

KEEP = frozenset({"auth", "object_storage", "dns", "work_requests"})


def removable(oci_dir: Path) -> Iterator[Path]:
    """The service packages under ``oci_dir`` that the token server does not need."""
    for child in sorted(oci_dir.iterdir()):
        if child.is_dir() and child.name not in KEEP and any(child.glob("*_client.py")):
            yield child


def size(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main(argv: list[str]) -> int:
    """Prune the ``oci`` package directory given as the only argument."""
    if len(argv) != 1 or not (Path(argv[0]) / "__init__.py").is_file():
        sys.stderr.write("usage: slim_oci.py <path of the installed oci package>\n")
        return 2
    oci_dir = Path(argv[0])
    for name in KEEP:
        if not (oci_dir / name).is_dir():
            sys.stderr.write(f"oci has no {name!r} package: is this the oci SDK?\n")
            return 2
    before = size(oci_dir)
    for package in removable(oci_dir):
        shutil.rmtree(package)
    after = size(oci_dir)
    sys.stdout.write(f"oci: {before / 1e6:.0f} MB -> {after / 1e6:.0f} MB\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
