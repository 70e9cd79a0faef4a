"""build/prune_site.py on small site-packages trees made here: what is kept, what goes, safety.

The real trees (the function's and the token server's) are exercised in
test_pruned_function.py and tests/tokenserver/test_image.py; these tests pin each rule down.
"""

from __future__ import annotations

import ast
import os
import shutil
from pathlib import Path

import pytest

from tests.image.conftest import image_site

prune_site = image_site.prune_site
pytestmark = pytest.mark.unit


def install(site: Path, name: str, files: dict[str, str | bytes], *, requires: str = "") -> None:
    """A distribution as pip leaves it: its files, METADATA and a RECORD listing them."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\n{requires}\n")
    record = [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    for relative, content in files.items():
        path = site / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        record.append(f"{relative},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    site, app = tmp_path / "site", tmp_path / "app"
    site.mkdir()
    (app / "myapp").mkdir(parents=True)
    (app / "myapp" / "__init__.py").write_text("")
    return site, app


def prune(tree: tuple[Path, Path], code: str, **options: object) -> prune_site.Pruned:
    site, app = tree
    (app / "myapp" / "main.py").write_text(code)
    return prune_site.prune(site, [app], **options)  # type: ignore[arg-type]


def test_a_distribution_nothing_imports_goes_with_its_files_and_metadata(tree):
    site, _ = tree
    install(site, "used", {"used/__init__.py": ""})
    install(site, "unused", {"unused/__init__.py": "", "unused/deep/mod.py": ""})

    result = prune(tree, "import used\n")

    assert result.distributions == ["unused"]
    assert not (site / "unused").exists()
    assert not list(site.glob("unused-*.dist-info"))
    assert (site / "used" / "__init__.py").is_file()


@pytest.mark.parametrize(
    "code",
    [
        "import lib.sub\n",
        "from lib import sub\n",
        "from lib.sub import thing\n",
        "import lib\nx = lib.sub.Thing\n",
        "import lib as l\ndef f():\n    return l.sub.Thing\n",
        "import lib\nNAME = 'lib.sub.Thing'\n",
        "import importlib\nimportlib.import_module('lib.sub')\n",
        "def lazy():\n    import lib.sub\n",
        "try:\n    import lib.sub\nexcept ImportError:\n    pass\n",
    ],
)
def test_every_way_code_names_a_subpackage_keeps_it(tree, code: str):
    site, _ = tree
    install(
        site, "lib", {"lib/__init__.py": "", "lib/sub/__init__.py": "", "lib/other/__init__.py": ""}
    )

    result = prune(tree, code)

    assert (site / "lib" / "sub" / "__init__.py").is_file()
    assert result.packages == ["lib.other"]  # the unnamed sibling goes
    assert not (site / "lib" / "other").exists()


def test_imports_are_followed_through_the_library_relative_ones_too(tree):
    site, _ = tree
    install(
        site,
        "lib",
        {
            "lib/__init__.py": "from . import core\n",
            "lib/core.py": "from .helpers import x\nfrom ..dep import y\n",
            "lib/helpers/__init__.py": "import dep.inner\n",
        },
    )
    install(
        site,
        "dep",
        {"dep/__init__.py": "", "dep/inner/__init__.py": "", "dep/unused/__init__.py": ""},
    )

    result = prune(tree, "import lib\n")

    assert (site / "lib" / "helpers" / "__init__.py").is_file()
    assert (site / "dep" / "inner" / "__init__.py").is_file()
    assert result.packages == ["dep.unused"]


def test_a_lazy_package_keeps_only_the_subpackages_named_by_attribute(tree):
    site, _ = tree
    init = (
        "import os\n"
        "from . import base\n"
        "if os.getenv('EAGER'):\n"
        "    from . import alpha, beta\n"
        "def __getattr__(name):\n"
        "    import importlib\n"
        "    return importlib.import_module(__name__ + '.' + name)\n"
    )
    files = {"sdk/__init__.py": init, "sdk/base.py": ""}
    files |= {f"sdk/{s}/__init__.py": "" for s in ("alpha", "beta", "gamma")}
    install(site, "sdk", files)

    (tree[1] / "myapp" / "main.py").write_text("import sdk\nclient = sdk.beta.Client\n")
    eager = prune_site.reached_modules(site, [tree[1]])
    result = prune(tree, "import sdk\nclient = sdk.beta.Client\n", lazy=["sdk"])

    assert {"sdk.alpha", "sdk.beta"} <= eager  # without --lazy the fallback branch counts
    assert "sdk.gamma" not in eager
    assert sorted(result.packages) == ["sdk.alpha", "sdk.gamma"]
    assert (site / "sdk" / "beta" / "__init__.py").is_file()


def test_an_extension_keeps_the_dependency_module_its_binary_names(tree):
    site, _ = tree
    binary = b"\x7fELF...\x00_helper_backend\x00PyInit_core\x00helperish\x00"
    install(
        site,
        "native",
        {"native/__init__.py": "from . import core\n", "native/core.abi3.so": binary},
        requires="Requires-Dist: helper\nRequires-Dist: testing ; extra == 'test'",
    )
    install(
        site, "helper", {"_helper_backend.abi3.so": b"\x00", "helper/__init__.py": "import big\n"}
    )
    install(site, "big", {"big/__init__.py": ""})
    install(site, "testing", {"testing/__init__.py": ""})

    result = prune(tree, "import native\n")

    assert (site / "_helper_backend.abi3.so").is_file()
    # Only the module named in the binary: helper's Python package imports `big`, never run.
    assert sorted(result.distributions) == ["big", "testing"]


def test_a_dropped_optional_distribution_goes_with_what_only_it_imports(tree):
    site, _ = tree
    guarded = "try:\n    from . import hsm\nexcept ImportError:\n    hsm = None\n"
    install(site, "sdk", {"sdk/__init__.py": guarded, "sdk/hsm.py": "import vendorhsm\n"})
    install(site, "vendorhsm", {"vendorhsm/__init__.py": "import asn\n"})
    install(site, "asn", {"asn/__init__.py": ""})
    install(site, "shared", {"shared/__init__.py": ""})
    (site / "sdk" / "__init__.py").write_text(guarded + "import shared\n")

    result = prune(tree, "import sdk\n", drop=["vendorhsm"])

    assert sorted(result.distributions) == ["asn", "vendorhsm"]
    assert (site / "shared" / "__init__.py").is_file()
    assert (site / "sdk" / "hsm.py").is_file()  # kept: its importer handles the ImportError


def test_dropping_a_distribution_that_is_not_installed_is_refused(tree):
    with pytest.raises(ValueError, match="not installed"):
        prune(tree, "x = 1\n", drop=["nothere"])


def test_nothing_outside_the_site_is_deleted_and_scripts_only_in_the_scripts_directory(tmp_path):
    site, app = tmp_path / "deep" / "site", tmp_path / "app"
    site.mkdir(parents=True)
    (app / "myapp").mkdir(parents=True)
    (app / "myapp" / "__init__.py").write_text("")
    outside = tmp_path / "bin" / "tool"  # what ../../bin/tool resolves to from the site
    outside.parent.mkdir()
    outside.write_text("the machine's own tool")
    scripts = site / "bin"
    install(site, "unused", {"unused/__init__.py": "", "bin/tool": "#!python"})
    record = next(site.glob("unused-*.dist-info")) / "RECORD"
    record.write_text(record.read_text().replace("bin/tool", "../../bin/tool"))

    prune_site.prune(site, [app], scripts=scripts)

    assert outside.read_text() == "the machine's own tool"
    assert not (scripts / "tool").exists()


def test_pruning_is_idempotent_and_rewrites_record_to_what_is_left(tree):
    site, _ = tree
    install(
        site, "lib", {"lib/__init__.py": "", "lib/sub/__init__.py": "", "lib/big/__init__.py": ""}
    )

    first = prune(tree, "import lib.sub\n")
    second = prune(tree, "import lib.sub\n")

    assert first.packages == ["lib.big"]
    assert (second.distributions, second.packages) == ([], [])
    record = (next(site.glob("lib-*.dist-info")) / "RECORD").read_text()
    assert "lib/big" not in record
    assert "lib/sub/__init__.py" in record


def test_a_hard_linked_copy_is_pruned_without_touching_the_original(tree, tmp_path):
    site, app = tree
    install(site, "lib", {"lib/__init__.py": "", "lib/big/__init__.py": ""})
    install(site, "unused", {"unused/__init__.py": ""})
    copy = tmp_path / "copy"
    shutil.copytree(site, copy, copy_function=os.link)
    (app / "myapp" / "main.py").write_text("import lib\n")

    prune_site.prune(copy, [app])

    assert (site / "lib" / "big" / "__init__.py").is_file()
    assert (site / "unused" / "__init__.py").is_file()
    assert "lib/big" in (next(site.glob("lib-*.dist-info")) / "RECORD").read_text()


def test_a_dry_run_deletes_nothing(tree):
    site, _ = tree
    install(site, "unused", {"unused/__init__.py": ""})

    result = prune(tree, "x = 1\n", dry_run=True)

    assert result.distributions == ["unused"]
    assert (site / "unused" / "__init__.py").is_file()


def test_the_command_line_refuses_a_directory_that_is_not_site_packages(tmp_path, capsys):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "a.py").write_text("")

    with pytest.raises(SystemExit) as exit_info:
        prune_site.main([str(tmp_path), "--app", str(tmp_path / "app")])

    assert exit_info.value.code == 2
    assert "holds no installed distribution" in capsys.readouterr().err


def test_imports_of_resolves_relative_imports_against_the_package():
    tree = ast.parse("from . import a\nfrom .. import b\nfrom ..c import d\n")

    found = prune_site.imports_of(tree, "pkg.sub.mod", package=False)

    assert {"pkg.sub.a", "pkg.b", "pkg.c", "pkg.c.d"} <= found
