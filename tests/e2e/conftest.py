"""The ``world`` fixture: a :class:`sandbox.world.SandboxWorld` per test (real Pebble, real
emulator, the sandbox token backend), with knobs via ``@pytest.mark.world(...)``.

The root conftest attaches the world's Pebble log to the report of a failing test. Measurements
recorded with the ``measurements`` fixture are printed in the terminal summary, with or
without ``-s``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.fn_server import FnServer
from sandbox.pebble import PebbleBinaries, PebbleOptions
from sandbox.world import SandboxWorld

_MEASUREMENTS = pytest.StashKey[list[tuple[str, str]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "world(**options): SandboxWorld keywords for this test's world"
    )
    config.stash[_MEASUREMENTS] = []


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    measured = config.stash.get(_MEASUREMENTS, [])
    if measured:
        terminalreporter.section("e2e measurements")
        for title, text in measured:
            terminalreporter.write_line(f"{title}:")
            terminalreporter.write_line(text)


@pytest.fixture
def measurements(request: pytest.FixtureRequest):
    """``measure(title, text)``: shown in the terminal summary and as a test property."""

    def measure(title: str, text: str) -> None:
        request.config.stash[_MEASUREMENTS].append((title, text))
        request.node.user_properties.append((title, text))

    return measure


@pytest.fixture
def world(
    request: pytest.FixtureRequest, tmp_path: Path, pebble_binaries: PebbleBinaries
) -> Iterator[SandboxWorld]:
    """A started world; Pebble sends no Retry-After, LB work requests take 0.05 s."""
    marker = request.node.get_closest_marker("world")
    options = {
        "pebble_options": PebbleOptions(retry_after_authz=0, retry_after_order=0),
        "work_request_seconds": 0.05,
        **(marker.kwargs if marker else {}),
    }
    with SandboxWorld(tmp_path / "world", **options) as started:
        request.node._pebbles = [*getattr(request.node, "_pebbles", []), started.pebble]
        yield started


@pytest.fixture
def fn(world: SandboxWorld, tmp_path: Path) -> Iterator[FnServer]:
    """The real fdk server running func.py in ``world``'s function environment (stopped after)."""
    server = FnServer(tmp_path / "fn", world.function_environment())
    server.workdir.mkdir(exist_ok=True)
    with server:
        yield server
