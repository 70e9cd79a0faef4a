"""One GetLoadBalancer per load balancer serves PLAN and the read-only check (issue 11 follow-up).

Through the real SDK: the TLS-settings read (PLAN) keeps its answer, the deployer's read-only
``is_serving`` takes it instead of reading again — once — and a mutation of ours forgets it, so
``is_serving`` never judges an answer older than our own change.
"""

from __future__ import annotations

from collections.abc import Callable

from renewer.adapters.oci_clients import OciClients
from renewer.adapters.oci_lb_snapshots import LoadBalancerSnapshots
from renewer.adapters.oci_listener_tls import ListenerTlsReader
from renewer.adapters.oci_load_balancer import LoadBalancerDeployer
from renewer.clock import SystemClock
from tests.contract.conftest import RunningEmulator
from tests.contract.test_deployers import (  # noqa: F401 - fixtures this module reuses
    TARGET,
    deadline,
    fixture_data,
    issue,
    make_clients,
)


def _reads(emulator: RunningEmulator) -> int:
    return emulator.emulator.operations_called().count("GetLoadBalancer")


def _pair(make: Callable[[], OciClients]) -> tuple[ListenerTlsReader, LoadBalancerDeployer]:
    clients, snapshots = make(), LoadBalancerSnapshots()
    reader = ListenerTlsReader(clients, snapshots=snapshots)
    deployer = LoadBalancerDeployer(
        clients, clock=SystemClock(), poll_interval=0.01, snapshots=snapshots
    )
    return reader, deployer


def test_the_read_only_check_takes_plans_answer_once(
    emulator: RunningEmulator,
    make_clients: Callable[[], OciClients],  # noqa: F811 - the imported fixture
) -> None:
    reader, deployer = _pair(make_clients)
    certificate = issue("shop.example.com")
    before = _reads(emulator)

    assert reader.settings(TARGET)
    assert not deployer.is_serving("shop", certificate, TARGET)
    assert _reads(emulator) == before + 1  # one read served both

    assert not deployer.is_serving("shop", certificate, TARGET)
    assert _reads(emulator) == before + 2  # taken once: a second check reads afresh


def test_a_mutation_of_ours_forgets_the_kept_answer(
    emulator: RunningEmulator,
    make_clients: Callable[[], OciClients],  # noqa: F811 - the imported fixture
) -> None:
    reader, deployer = _pair(make_clients)
    certificate = issue("shop.example.com")
    reader.settings(TARGET)  # kept: the listeners on the bundle before the switch

    deployer.deploy("shop", certificate, TARGET, deadline=deadline())
    before = _reads(emulator)

    assert deployer.is_serving("shop", certificate, TARGET)  # judged on a fresh read
    assert _reads(emulator) == before + 1
