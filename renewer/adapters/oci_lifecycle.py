"""Waiting out OCI's asynchronous lifecycles: transitional states and the 409s they cause.

Real OCI answers a change before it is done. A Certificates-service certificate is ``UPDATING``
after UpdateCertificate and ScheduleCertificateVersionDeletion, a Vault secret ``CREATING`` or
``UPDATING`` after its changes; a further change meanwhile is answered ``409 IncorrectState``
(OCI's API errors table: "The requested state for the resource conflicts with its current
state", retry "yes, with backoff"). Oracle's oci-native-ingress-controller polls GetCertificate
every 3 s, for at most 2 minutes, until the certificate is ``ACTIVE`` after each change
(``pkg/certificate/certificate.go``, ``waitForActiveCertificate``); the SDK's composite
operations (``update_certificate_and_wait_for_state``, ``update_secret_and_wait_for_state``)
do the same with ``oci.wait_until``.

:func:`wait_until_settled` polls a read until the resource leaves its transitional state, and
:class:`Backoff` spaces retries; both are bounded by a ``time.monotonic()`` deadline (the step's
or the run's) and say so with a :class:`TransientError` when it passes — never a ConfigError:
the resource is busy, nothing is wrong with the configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from renewer.clock import Clock
from renewer.errors import RenewerError, TransientError

T = TypeVar("T")

BUSY_STATES = frozenset({"CREATING", "UPDATING", "SCHEDULING_DELETION", "CANCELLING_DELETION"})
FIRST_POLL_SECONDS = 0.25  # a change in the fast sandbox settles at once
MAX_POLL_SECONDS = 3.0  # Oracle's ingress controller polls every 3 s
UNBOUNDED_WAIT_SECONDS = 120.0  # without a deadline: the ingress controller's 2 minutes
_CONFLICT = 409
# 409 codes that mean "busy, try again": IncorrectState (a transitional state) and
# LockConflict (what the SDK's default retry strategy also retries).
TRANSIENT_CONFLICTS = frozenset({"IncorrectState", "LockConflict"})


def is_busy_conflict(error: RenewerError) -> bool:
    """Whether ``error`` (from ``translate``) is a 409 that waiting can cure."""
    return error.oci_status == _CONFLICT and error.oci_code in TRANSIENT_CONFLICTS


class Backoff:
    """Growing pauses (0.25 s doubling to 3 s) that never sleep past ``deadline``.

    ``deadline`` is a ``clock.monotonic()`` instant; None bounds the whole wait by
    :data:`UNBOUNDED_WAIT_SECONDS` from the first pause.
    """

    def __init__(self, clock: Clock, deadline: float | None, what: str) -> None:
        self._clock = clock
        self._deadline = (
            clock.monotonic() + UNBOUNDED_WAIT_SECONDS if deadline is None else deadline
        )
        self._what = what
        self._delay = FIRST_POLL_SECONDS

    def pause(self, reason: str) -> None:
        """Sleep the next delay; TransientError when it would end after the deadline."""
        left = self._deadline - self._clock.monotonic()
        if left <= 0:
            msg = f"{self._what}: {reason}, and the deadline passed while waiting"
            raise TransientError(msg)
        self._clock.sleep(min(self._delay, left))
        self._delay = min(self._delay * 2, MAX_POLL_SECONDS)


def wait_until_settled(
    read: Callable[[], T],
    state_of: Callable[[T], str | None],
    *,
    clock: Clock,
    deadline: float | None,
    what: str,
) -> T:
    """``read()`` again until ``state_of`` its answer is no longer a transitional state.

    Returns the first answer in a settled state (ACTIVE, or any state that is not in
    :data:`BUSY_STATES`: the caller judges it). One read when the resource is settled already.

    Raises:
        TransientError: still transitional at ``deadline``; or what ``read`` raises.

    """
    backoff = Backoff(clock, deadline, what)
    while True:
        answer = read()
        state = state_of(answer)
        if state not in BUSY_STATES:
            return answer
        backoff.pause(f"still {state}")
