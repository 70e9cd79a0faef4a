"""Session fixtures: each image's Python tree, built as its Dockerfile builds it.

``build/image_site.py`` installs the image's hash-checked lock (cached by the lock's digest in
``.cache/image-site``: the first build of a checkout takes about a minute, later ones seconds),
copies the application in, prunes and precompiles. Tests that use these trees run code from
them with ``python -S`` and nothing else on the path, as the image would.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "build"))

import image_site  # noqa: E402 - build/ is not a package


@pytest.fixture(scope="session")
def function_tree(tmp_path_factory: pytest.TempPathFactory) -> image_site.Built:
    """The function image's /python site-packages and /function, pruned and compiled."""
    return image_site.build(image_site.recipe("function"), tmp_path_factory.mktemp("fn") / "t")


@pytest.fixture(scope="session")
def tokenserver_tree(tmp_path_factory: pytest.TempPathFactory) -> image_site.Built:
    """The token server image's venv site-packages and /app, pruned and compiled."""
    return image_site.build(image_site.recipe("tokenserver"), tmp_path_factory.mktemp("ts") / "t")
