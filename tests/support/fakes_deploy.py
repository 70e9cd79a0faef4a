"""An in-memory ``Deployer`` that records every call, for tests of the renewal orchestrator.

It follows the port's contract the way the OCI deployers do (``tests/contract/test_deployers.py``
runs one scenario against both): one bundle per issued certificate, named with
``naming.bundle_name``; ``deploy`` of the certificate a target already serves changes nothing;
``retire`` removes the bundles of ``name`` a target no longer serves, beyond the
``keep_previous`` newest by the certificate's notBefore. Failures are queued per method with
:meth:`RecordingDeployer.fail_next`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from renewer import naming
from renewer.errors import RenewerError
from renewer.model import CertificateServiceTarget, DeployedTarget, StoredCertificate, Target
from renewer.ports import StoredLeaves


@dataclass(frozen=True, slots=True)
class DeployCall:
    """One ``deploy`` call (the certificate by serial and store version, never its key)."""

    name: str
    serial_hex: str
    version: int
    target: Target
    deadline: float


@dataclass(frozen=True, slots=True)
class RetireCall:
    """One ``retire`` call."""

    name: str
    target: Target
    keep_previous: int
    deadline: float


@dataclass(slots=True)
class _TargetState:
    bundles: dict[str, datetime] = field(default_factory=dict)  # bundle -> its notBefore
    serving: str | None = None


class RecordingDeployer:
    """``Deployer`` in memory; ``calls`` lists every call in order (thread-safe).

    A :class:`~renewer.model.CertificateServiceTarget` answers ``bundle_name=None``, as the real
    deployer does; internally it is tracked like a load balancer's bundles.
    """

    def __init__(self, *, prefix: str = naming.DEFAULT_PREFIX) -> None:
        self.calls: list[DeployCall | RetireCall] = []
        self.attempts: list[str | None] = []  # the attempt of each deploy call, in order
        self._prefix = prefix
        self._targets: dict[Target, _TargetState] = {}
        self._failures: dict[str, list[RenewerError]] = {"deploy": [], "retire": [], "check": []}
        self._lock = threading.Lock()
        self._work_requests = 0
        self.reads = 0  # is_serving() and check() calls
        self.checked: list[Target] = []

    def fail_next(self, method: str, error: RenewerError) -> None:
        """Make the next call of ``method`` (``deploy``, ``retire`` or ``check``) raise it."""
        with self._lock:
            self._failures[method].append(error)

    def serving(self, target: Target) -> str | None:
        """The bundle ``target`` serves now (None before any deploy)."""
        with self._lock:
            return self._state(target).serving

    def bundles(self, target: Target) -> list[str]:
        """Every bundle still on ``target``, oldest first."""
        with self._lock:
            state = self._state(target)
            return sorted(state.bundles, key=state.bundles.__getitem__)

    def check(self, target: Target) -> None:
        """See :class:`renewer.ports.Deployer`; ``fail_next("check", ...)`` makes it refuse."""
        with self._lock:
            self.reads += 1
            self.checked.append(target)
            self._raise_queued("check")

    def is_serving(self, name: str, certificate: StoredCertificate, target: Target) -> bool:
        """See :class:`renewer.ports.Deployer`; recorded as a read."""
        with self._lock:
            self.reads += 1
            bundle = naming.bundle_name(name, certificate.serial_hex, prefix=self._prefix)
            return self._state(target).serving == bundle

    def deploy(
        self,
        name: str,
        certificate: StoredCertificate,
        target: Target,
        *,
        deadline: float,
        attempt: str | None = None,
    ) -> DeployedTarget:
        """See :class:`renewer.ports.Deployer`; ``attempt`` is recorded in ``attempts``."""
        with self._lock:
            self.attempts.append(attempt)
            self.calls.append(
                DeployCall(name, certificate.serial_hex, certificate.version, target, deadline)
            )
            self._raise_queued("deploy")
            bundle = naming.bundle_name(name, certificate.serial_hex, prefix=self._prefix)
            reported = None if isinstance(target, CertificateServiceTarget) else bundle
            state = self._state(target)
            if state.serving == bundle:
                return DeployedTarget(target, reported, changed=False)
            state.bundles[bundle] = certificate.not_before
            state.serving = bundle
            self._work_requests += 1
            work_requests = () if reported is None else (f"fake-wr-{self._work_requests}",)
            return DeployedTarget(target, reported, changed=True, work_requests=work_requests)

    def retire(
        self,
        name: str,
        target: Target,
        *,
        keep_previous: int,
        deadline: float,
        stored: StoredLeaves | None = None,  # noqa: ARG002 - bundles here are all ours
    ) -> list[str]:
        """See :class:`renewer.ports.Deployer`; returns the removed bundles, newest first."""
        with self._lock:
            self.calls.append(RetireCall(name, target, keep_previous, deadline))
            self._raise_queued("retire")
            state = self._state(target)
            unused = sorted(
                (
                    b
                    for b in state.bundles
                    if b != state.serving and naming.owns_bundle(b, name, prefix=self._prefix)
                ),
                key=state.bundles.__getitem__,
                reverse=True,
            )
            removed = unused[keep_previous:]
            for bundle in removed:
                del state.bundles[bundle]
            return removed

    def _state(self, target: Target) -> _TargetState:
        return self._targets.setdefault(target, _TargetState())

    def _raise_queued(self, method: str) -> None:
        if self._failures[method]:
            raise self._failures[method].pop(0)
