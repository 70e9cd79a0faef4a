"""A Certificates-service target under OCI's realistic timing (issue 11 §3): one invocation.

The world runs :meth:`TimingProfile.realistic` at a small scale: the certificate stays
``UPDATING`` after each change and answers 409 meanwhile, the Vault secret passes through
``CREATING``/``UPDATING``, and the listener that references the certificate's OCID serves the
new version only ``listenerFollowSeconds`` after it became CURRENT. The renewal must converge in
one invocation with no false failure, and a second (forced) one right after it too, although
it starts while the certificate and the secret may still be busy.
"""

from __future__ import annotations

import time

import oci
import pytest

from renewer import pki
from renewer.report import Outcome
from sandbox.oci_emulator.timing import TimingProfile
from sandbox.world import SERVICE_CERTIFICATE_ID, SandboxWorld
from tests.e2e.test_pipeline import BUDGET, operator_client, served_serial, single

pytestmark = pytest.mark.e2e

SCALE = 0.01  # LB work requests 0.2-0.6 s, certificate updates 0.05 s, the listener 0.3 s behind
FOLLOW_WAIT_BOUND = 30.0  # wall seconds: a bound for the poll below, not a timing assertion


def _eventually_served(world: SandboxWorld, serial: str) -> str:
    """What :8443 serves once it has followed ``serial`` (or the bound passed)."""
    bound = time.monotonic() + FOLLOW_WAIT_BOUND
    served = served_serial(world, port=8443)
    while served != serial and time.monotonic() < bound:
        time.sleep(0.05)
        served = served_serial(world, port=8443)
    return served


@pytest.mark.world(service_certificate=True, timing=TimingProfile.realistic(scale=SCALE))
def test_a_certificates_service_target_converges_in_one_invocation(world: SandboxWorld):
    certificates = operator_client(world, oci.certificates_management.CertificatesManagementClient)

    def current_serial() -> str:
        current = certificates.get_certificate(SERVICE_CERTIFICATE_ID).data.current_version
        return pki.normalize_serial(current.serial_number)

    seed = current_serial()
    first = single(world.service().run(budget_s=BUDGET))  # single(): no FAILED outcome

    assert first.outcome is Outcome.RENEWED
    serial = pki.normalize_serial(first.serial or "")
    assert current_serial() == serial != seed
    assert {t.kind: t.changed for t in first.targets} == {"listener": True, "certificate": True}
    assert _eventually_served(world, serial) == serial

    # At once again: the certificate, the secret and the listener may all still be settling.
    second = single(world.service().run(budget_s=BUDGET, force=True))

    assert second.outcome is Outcome.RENEWED
    assert current_serial() == pki.normalize_serial(second.serial or "")
    assert _eventually_served(world, current_serial()) == current_serial()
