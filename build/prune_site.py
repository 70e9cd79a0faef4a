"""Delete from a site-packages tree everything an application's code can never import.

One mechanism for both images (the function's and the token server's), run in their builder
stages after the hash-checked install, and by ``make bench-image`` and the tests on a
``pip install --target`` tree. Stdlib only: it runs before anything else is installed.

What is kept is *derived from the code*, not listed by hand: starting from every ``*.py`` under
the ``--app`` directories, it follows, transitively through site-packages,

* ``import a.b`` and ``from a.b import c`` (absolute and relative; ``c`` counts when it is a
  module), the parent packages every import executes, imports inside functions, ``try`` blocks
  and ``if TYPE_CHECKING`` alike (keeping more is safe, keeping less is not);
* ``importlib.import_module("a.b")`` and ``__import__("a.b")`` with a constant name;
* attribute chains on an imported module (``oci.load_balancer.LoadBalancerClient`` reaches
  ``oci.load_balancer``): the ``oci`` SDK imports its ~175 service packages lazily, by
  attribute, so this is how the code says which services it uses;
* a string constant that is a whole dotted name under an imported module
  (``"oci.secrets.SecretsClient"``, resolved later by name).

Then it deletes, in place:

1. every *distribution* none of whose top-level modules is reached (its files as its ``RECORD``
   lists them, console scripts included, and its ``.dist-info``): ``fdk`` declares pytest,
   Cython, setuptools and more that the function never imports;
2. every *package* (a directory with ``__init__.py``) inside a reached distribution of which no
   module is reached, while its parent package is: the ``oci`` services the code does not use,
   the libraries' own test suites.

Two arguments say what the code cannot: ``--lazy oci`` leaves out the imports under a top-level
``if`` in that package's ``__init__`` (its eager fallback, taken only when
``OCI_PYTHON_SDK_LAZY_IMPORTS_DISABLED=true``, which both images pin off), and ``--drop DIST``
deletes an optional dependency that code imports inside ``try``/``except ImportError``
(``python-pkcs11``, for the SDK's HSM signer), with what only it imports.

Single modules of a reached package and data directories (no ``__init__.py``) are kept: they
are small, and data is read by path, which no import shows. The imports of a C extension cannot
be read, so the binaries of a reached distribution are searched for the module names of the
distributions it declares as dependencies (``cryptography``'s Rust core imports ``cffi``'s
``_cffi_backend``, and nothing else of ``cffi``). Both images' tests import
and run the application from the pruned tree (tests/image/), so what this misses fails there.

Usage::

    python prune_site.py SITE_PACKAGES --app DIR [--app DIR ...] [--lazy oci]
                         [--module fdk.scripts.fdk] [--drop python-pkcs11]
                         [--scripts VENV/bin] [--dry-run] [--json]

Idempotent: a second run on a pruned tree finds nothing to delete. Exit 2 on a bad argument.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

_EXTENSION_SUFFIXES = (".so", ".pyd")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


@dataclass(frozen=True)
class _Source:
    """Where a module lives: its file (``None`` for a namespace package), and if a package."""

    path: Path | None
    package: bool


@dataclass
class Pruned:
    """What :func:`prune` removed (or would remove, on a dry run)."""

    distributions: list[str] = field(default_factory=list)
    packages: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    reached: set[str] = field(default_factory=set)


class _SiteIndex:
    """Resolves a dotted module name to its file under one site-packages directory."""

    def __init__(self, site: Path, absent: frozenset[str] = frozenset()) -> None:
        self.site = site
        self._absent = absent  # top-level names to treat as not installed (--drop)
        self._cache: dict[str, _Source | None] = {}

    def find(self, name: str) -> _Source | None:
        """The module's source in the site, or ``None`` (stdlib, absent, or not a module)."""
        if name.split(".")[0] in self._absent:
            return None
        if name not in self._cache:
            self._cache[name] = self._find(name)
        return self._cache[name]

    def _find(self, name: str) -> _Source | None:
        base = self.site.joinpath(*name.split("."))
        if base.is_dir():
            init = base / "__init__.py"
            if init.is_file():
                return _Source(init, package=True)
            # A namespace package only where a parent is one too or at the top level.
            return _Source(None, package=True) if "." not in name else None
        module = base.with_name(base.name + ".py")
        if module.is_file():
            return _Source(module, package=False)
        if base.parent.is_dir():
            for candidate in base.parent.glob(base.name + ".*"):
                if candidate.suffix in _EXTENSION_SUFFIXES:
                    return _Source(candidate, package=False)
        return None


def _constant_import(node: ast.Call) -> str | None:
    """``importlib.import_module("x")`` / ``import_module("x")`` / ``__import__("x")``."""
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if called not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _attribute_chain(node: ast.Attribute) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]`` when the chain starts at a plain name."""
    parts: list[str] = []
    current: ast.expr = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        return None
    parts.append(current.id)
    return parts[::-1]


class _Imports:
    """The import statements of one module: names imported, and local names bound to modules."""

    def __init__(self, module: str, *, package: bool) -> None:
        self.own_package = module if package else module.rpartition(".")[0]
        self.found: set[str] = set()
        self.aliases: dict[str, str] = {}  # a local name bound to a module -> that module

    def absolute(self, level: int, name: str | None) -> str:
        """The absolute name of ``from <level dots><name> import``."""
        if level == 0:
            return name or ""
        base = self.own_package.split(".")
        base = base[: len(base) - (level - 1)] if level > 1 else base
        return ".".join([*base, name] if name else base)

    def add_import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.add(alias.name)
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.aliases[top] = top

    def add_import_from(self, node: ast.ImportFrom) -> None:
        source = self.absolute(node.level, node.module)
        if not source:
            return
        self.found.add(source)
        for alias in node.names:
            if alias.name != "*":
                self.found.add(f"{source}.{alias.name}")
                self.aliases[alias.asname or alias.name] = f"{source}.{alias.name}"

    def add_chain(self, chain: list[str]) -> None:
        """``a.b.c`` used in the code, where ``a`` is bound to a module: ``a.b``, ``a.b.c``."""
        if chain[0] not in self.aliases:
            return
        dotted = self.aliases[chain[0]]
        for part in chain[1:]:
            dotted = f"{dotted}.{part}"
            self.found.add(dotted)


def imports_of(
    tree: ast.Module, module: str, *, package: bool, unconditional: bool = False
) -> set[str]:
    """Every module name ``tree`` (the code of ``module``) may import, with their parents.

    Names that are attributes rather than modules are included too; the caller keeps only
    those that resolve to a file. ``unconditional`` leaves out the statements under a top-level
    ``if`` (for a lazy package's ``__init__``, see ``--lazy``).
    """
    statements = [s for s in tree.body if not (unconditional and isinstance(s, ast.If))]
    nodes = [node for statement in statements for node in ast.walk(statement)]
    imports = _Imports(module, package=package)
    for node in nodes:
        if isinstance(node, ast.Import):
            imports.add_import(node)
        elif isinstance(node, ast.ImportFrom):
            imports.add_import_from(node)
        elif isinstance(node, ast.Call) and (constant := _constant_import(node)):
            imports.found.add(constant)
    imported_tops = {name.split(".")[0] for name in imports.found}
    for node in nodes:
        if isinstance(node, ast.Attribute) and (chain := _attribute_chain(node)):
            imports.add_chain(chain)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _DOTTED.fullmatch(node.value)
            and node.value.split(".")[0] in imported_tops
        ):
            top = node.value.split(".")[0]
            imports.aliases.setdefault(top, top)
            imports.add_chain(node.value.split("."))
    with_parents: set[str] = set()
    for name in imports.found:
        parts = name.split(".")
        with_parents.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return with_parents


def _app_modules(app: Path) -> Iterator[tuple[str, Path, bool]]:
    """(module name, file, is package) of every ``*.py`` under ``app`` (names relative to it)."""
    for path in sorted(app.rglob("*.py")):
        relative = path.relative_to(app).with_suffix("")
        parts = list(relative.parts)
        package = parts[-1] == "__init__"
        if package:
            parts = parts[:-1]
        if parts and all(part.isidentifier() for part in parts):
            yield ".".join(parts), path, package


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        # A file this Python cannot parse cannot be imported by it either.
        return None


def reached_modules(
    site: Path,
    apps: Iterable[Path],
    lazy: frozenset[str] = frozenset(),
    modules: Iterable[str] = (),
    absent: frozenset[str] = frozenset(),
) -> set[str]:
    """The modules of ``site`` that the code under ``apps`` can import, transitively.

    For a package named in ``lazy``, the imports of its ``__init__`` under a top-level ``if``
    are not followed: such a package imports its subpackages on first attribute access (PEP 562
    ``__getattr__``), and its eager fallback branch is never taken in the image. ``modules``
    are roots besides the code: what runs it (``fdk.scripts.fdk``, the image's entry point).
    Top-level modules in ``absent`` are treated as not installed (see ``--drop``).
    """
    index = _SiteIndex(site, absent)
    pending: list[str] = list(modules)
    for app in apps:
        for name, path, package in _app_modules(app):
            tree = _parse(path)
            if tree is not None:
                pending.extend(imports_of(tree, name, package=package))
    reached: set[str] = set()
    while pending:
        name = pending.pop()
        if name in reached:
            continue
        source = index.find(name)
        if source is None:
            continue
        reached.add(name)
        if source.path is None or source.path.suffix != ".py":
            continue  # a namespace package or a C extension: nothing to read
        tree = _parse(source.path)
        if tree is not None:
            unconditional = source.package and name in lazy
            pending.extend(
                imports_of(tree, name, package=source.package, unconditional=unconditional)
            )
    return reached


def _distributions(site: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """(name, .dist-info directory, RECORD paths as written) of each distribution in ``site``."""
    for info in sorted(site.glob("*.dist-info")):
        record = info / "RECORD"
        entries: list[str] = []
        if record.is_file():
            for line in record.read_text(encoding="utf-8").splitlines():
                relative = line.split(",", 1)[0]
                if relative:
                    entries.append(relative)
        yield info.name.split("-", 1)[0], info, entries


def _installed_file(site: Path, entry: str, scripts: Path | None) -> Path | None:
    """The file a RECORD entry names, only inside ``site`` or ``scripts``; ``None`` otherwise.

    RECORD paths of console scripts climb out of site-packages (``../../../bin/pytest`` in a
    venv, ``../../bin/pytest`` after ``pip install --target``): resolved naively, the second
    lands in the machine's own ``/bin``. So a path outside ``site`` is never deleted; one in a
    ``bin`` directory is looked up by name in ``scripts`` when that is given.
    """
    path = (site / entry).resolve()
    if path.is_relative_to(site):
        return path
    if scripts is not None and path.parent.name == "bin":
        return scripts / path.name
    return None


def _top_level(site: Path, path: Path) -> str | None:
    """The top-level module name an installed file belongs to (``None`` outside ``site``)."""
    try:
        relative = path.relative_to(site.resolve())
    except ValueError:
        return None
    first = relative.parts[0]
    if first.endswith((".dist-info", ".pth")) or first == "__pycache__":
        return None
    if len(relative.parts) == 1:
        return first.split(".", 1)[0]  # a single-file module or an extension
    return first


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def _unreached_packages(site: Path, top: str, reached: set[str]) -> Iterator[Path]:
    """Package directories under ``top`` with no reached module whose parent is reached."""
    root = site / top
    if not (root / "__init__.py").is_file():
        return
    stack = [root]
    while stack:
        directory = stack.pop()
        for child in sorted(directory.iterdir()):
            if not child.is_dir() or not (child / "__init__.py").is_file():
                continue
            dotted = ".".join(child.relative_to(site).parts)
            if dotted in reached:
                stack.append(child)
            elif not any(name.startswith(dotted + ".") for name in reached):
                yield child


def _remove_empty_directories(root: Path) -> None:
    """Delete, bottom-up, the directories under ``root`` (and it) left with nothing to import.

    That is empty directories, and ``__pycache__`` directories beside no ``.py`` file any more
    (bytecode an installer wrote but did not record).
    """
    if not root.is_dir():
        return
    for directory in sorted((p for p in root.rglob("*") if p.is_dir()), reverse=True):
        if directory.name == "__pycache__" and not any(directory.parent.glob("*.py")):
            shutil.rmtree(directory)
        elif not any(directory.iterdir()):
            directory.rmdir()
    if not any(root.iterdir()):
        root.rmdir()


def _rewrite_record(info: Path, site: Path, entries: list[str]) -> None:
    """Keep in RECORD only the lines of files that are still installed.

    Installers read RECORD to uninstall; ``importlib.metadata`` reads it for ``files()``. A
    RECORD that lists deleted files would lie to both (and is megabytes for ``oci``).
    """
    record = info / "RECORD"
    kept = [
        line
        for line in record.read_text(encoding="utf-8").splitlines()
        if line and (site / line.split(",", 1)[0]).exists()
    ]
    if len(kept) != len(entries):
        # A new file replaces the old one: the tree may be a hard-linked copy of a cached install.
        replacement = record.with_name("RECORD.pruned")
        replacement.write_text("\n".join(kept) + "\n", encoding="utf-8")
        replacement.replace(record)


@dataclass(frozen=True)
class _Distribution:
    name: str
    info: Path
    entries: list[str]
    files: list[Path]
    tops: set[str]
    compiled: bool  # ships a C extension
    requires: set[str]  # normalised names of its non-extra Requires-Dist


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _requires(info: Path) -> set[str]:
    """Names of the distributions ``info``'s METADATA requires outside any extra.

    Markers other than ``extra`` are not evaluated: keeping a dependency for another platform
    costs a little space, dropping one that is needed breaks the image.
    """
    metadata = info / "METADATA"
    if not metadata.is_file():
        return set()
    names = set()
    for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line:
            break  # the headers end at the first empty line
        if line.startswith("Requires-Dist:"):
            requirement, _, marker = line.partition(":")[2].partition(";")
            if "extra" not in marker:
                names.add(_normalise(re.split(r"[\s\[(<>=!~]", requirement.strip())[0]))
    return names


def _load_distributions(site: Path, scripts: Path | None) -> list[_Distribution]:
    found = []
    for name, info, entries in _distributions(site):
        files = [f for f in (_installed_file(site, e, scripts) for e in entries) if f]
        found.append(
            _Distribution(
                name=_normalise(name),
                info=info,
                entries=entries,
                files=files,
                tops={top for top in (_top_level(site, f) for f in files) if top},
                compiled=any(f.suffix in _EXTENSION_SUFFIXES for f in files),
                requires=_requires(info),
            )
        )
    return found


def _named_in_binary(names: Iterable[str], binaries: Iterable[Path]) -> set[str]:
    """The module ``names`` that occur as whole identifiers in the compiled ``binaries``.

    A C extension imports a module by name (``PyImport_ImportModule("_cffi_backend")``), so
    the name is in its read-only data; bounded by non-identifier bytes so that ``cffi`` is not
    found inside ``_cffi_backend``.
    """
    wanted = sorted(set(names))
    if not wanted:
        return set()
    pattern = re.compile(
        rb"(?<![A-Za-z0-9_.])(" + b"|".join(re.escape(n.encode()) for n in wanted) + rb")(?![\w])"
    )
    found: set[str] = set()
    for binary in binaries:
        found.update(m.group(1).decode() for m in pattern.finditer(binary.read_bytes()))
    return found


def _reach(
    site: Path,
    apps: list[Path],
    lazy: frozenset[str],
    modules: list[str],
    distributions: list[_Distribution],
    absent: frozenset[str] = frozenset(),
) -> set[str]:
    """:func:`reached_modules`, plus the modules compiled extensions import from C.

    A C extension's imports cannot be parsed (``cryptography``'s Rust core imports ``cffi``'s
    ``_cffi_backend``), so for each reached distribution that ships one, the top-level modules
    of the distributions it declares as dependencies are searched for by name in its binaries,
    and those found are followed like imports.
    """
    by_name = {d.name: d for d in distributions}
    roots = list(modules)
    while True:
        reached = reached_modules(site, apps, lazy, roots, absent)
        tops = {name.split(".")[0] for name in reached}
        needed: set[str] = set()
        for dist in distributions:
            if not (dist.compiled and dist.tops & tops):
                continue
            candidates = {
                top for name in dist.requires if name in by_name for top in by_name[name].tops
            }
            binaries = [f for f in dist.files if f.suffix in _EXTENSION_SUFFIXES and f.is_file()]
            needed |= _named_in_binary(candidates - tops, binaries)
        if not needed - set(roots):
            return reached
        roots.extend(sorted(needed - set(roots)))


def _remove_distribution(site: Path, dist: _Distribution, kept_tops: set[str]) -> None:
    """Delete ``dist``'s installed files, its ``.dist-info`` and the directories it leaves."""
    for path in dist.files:
        if path.is_file() or path.is_symlink():
            path.unlink()
    shutil.rmtree(dist.info, ignore_errors=True)
    for top in dist.tops - kept_tops:
        _remove_empty_directories(site / top)


def _dropped_modules(
    site: Path, distributions: list[_Distribution], drop: Iterable[str]
) -> frozenset[str]:
    """The top-level modules of the distributions in ``drop``; ValueError for one not here."""
    dropped = {_normalise(name) for name in drop}
    unknown = dropped - {d.name for d in distributions}
    if unknown:
        msg = f"--drop {', '.join(sorted(unknown))}: not installed in {site}"
        raise ValueError(msg)
    return frozenset(top for d in distributions if d.name in dropped for top in d.tops)


def prune(
    site: Path,
    apps: Iterable[Path],
    *,
    lazy: Iterable[str] = (),
    modules: Iterable[str] = (),
    drop: Iterable[str] = (),
    scripts: Path | None = None,
    dry_run: bool = False,
) -> Pruned:
    """Delete what the code under ``apps`` never imports from ``site``; see the module doc.

    ``drop`` names distributions to delete although code imports them: optional dependencies
    whose importers catch their absence (``oci`` imports ``python-pkcs11`` for its PKCS#11
    signer inside ``try``/``except ImportError``). What only they import goes too.
    Nothing outside ``site`` is touched except console scripts of removed distributions in
    ``scripts`` (the venv's ``bin``).

    Raises:
        ValueError: a distribution in ``drop`` is not installed in ``site``.

    """
    site = site.resolve()
    result = Pruned(bytes_before=_size(site))
    distributions = _load_distributions(site, scripts)
    absent = _dropped_modules(site, distributions, drop)
    result.reached = _reach(site, list(apps), frozenset(lazy), list(modules), distributions, absent)
    reached_tops = {name.split(".")[0] for name in result.reached}
    kept: list[_Distribution] = []
    kept_tops: set[str] = set()
    for dist in distributions:
        if dist.tops & reached_tops or not dist.entries:
            kept_tops |= dist.tops
            kept.append(dist)
            continue
        result.distributions.append(dist.name)
        if not dry_run:
            _remove_distribution(site, dist, kept_tops)
    for top in sorted(kept_tops & reached_tops):
        for package in list(_unreached_packages(site, top, result.reached)):
            result.packages.append(".".join(package.relative_to(site).parts))
            if not dry_run:
                shutil.rmtree(package)
    if not dry_run:
        for dist in kept:
            if (dist.info / "RECORD").is_file():
                _rewrite_record(dist.info, site, dist.entries)
    result.bytes_after = result.bytes_before if dry_run else _size(site)
    return result


def main(argv: list[str]) -> int:
    """Command line: prune SITE_PACKAGES for the code under each ``--app`` directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("site", type=Path, help="the site-packages (or --target) directory")
    parser.add_argument("--app", type=Path, action="append", required=True, metavar="DIR")
    parser.add_argument(
        "--lazy",
        action="append",
        default=[],
        metavar="PACKAGE",
        help="a package that imports its subpackages lazily (oci): see reached_modules",
    )
    parser.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="NAME",
        help="a module to keep besides the code's imports: the entry point (fdk.scripts.fdk)",
    )
    parser.add_argument(
        "--drop",
        action="append",
        default=[],
        metavar="DIST",
        help="an optional dependency to delete although imported (its importers catch ImportError)",
    )
    parser.add_argument(
        "--scripts",
        type=Path,
        metavar="DIR",
        help="where console scripts are installed (a venv's bin); others are never touched",
    )
    parser.add_argument("--dry-run", action="store_true", help="report, delete nothing")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if not args.site.is_dir() or not any(args.site.glob("*.dist-info")):
        parser.error(f"{args.site} holds no installed distribution: is it site-packages?")
    for app in args.app:
        if not app.is_dir() or not any(app.rglob("*.py")):
            parser.error(f"--app {app} holds no Python file")
    try:
        result = prune(
            args.site,
            args.app,
            lazy=args.lazy,
            modules=args.module,
            drop=args.drop,
            scripts=args.scripts,
            dry_run=args.dry_run,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if args.json:
        document = {
            "distributions": result.distributions,
            "packages": result.packages,
            "bytes_before": result.bytes_before,
            "bytes_after": result.bytes_after,
        }
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        verb = "would remove" if args.dry_run else "removed"
        sys.stdout.write(f"{verb} {len(result.distributions)} distributions: ")
        sys.stdout.write(", ".join(result.distributions) + "\n")
        sys.stdout.write(f"{verb} {len(result.packages)} unreached packages\n")
        before, after = result.bytes_before / 1e6, result.bytes_after / 1e6
        sys.stdout.write(f"site-packages: {before:.0f} MB -> {after:.0f} MB\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
