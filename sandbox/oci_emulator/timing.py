"""How long OCI takes: the emulator's timing profile, in OCI seconds, with a time scale.

Real OCI answers a mutation before its work is done: a load balancer work request runs for tens
of seconds, a Certificates-service certificate stays ``UPDATING`` for seconds after
UpdateCertificate, a Vault secret passes through ``UPDATING``, and a listener that references a
certificate OCID serves a new CURRENT version only after a delay. A profile names each of those
durations in *OCI seconds* (what a tenancy would take) and a ``scale`` that turns them into the
emulator's wall-clock seconds, so a test or benchmark runs the realistic profile in seconds:
``scale=0.01`` runs a 30 s work request in 0.3 s.

The profile is part of a fixture (top-level key ``"timing"``) and is stored in the emulator's
state, so it survives a restart::

    "timing": {
        "scale": 0.01,                           # wall seconds per OCI second (default 1)
        "lbWorkRequestSeconds": [20, 60],        # a number, or [min, max]
        "certificateUpdateSeconds": 5,           # Certificates: CREATING/UPDATING/deletion
        "vaultUpdateSeconds": 3,                 # Vault secrets: CREATING/UPDATING
        "listenerFollowSeconds": 30              # a listener serving a new CURRENT version
    }

A duration given as ``[min, max]`` is drawn per operation, deterministically from the
operation's key (a work request id, a resource OCID), so a run is reproducible. A load balancer's
own ``workRequestSeconds`` in the fixture (already scaled wall seconds) overrides the profile for
that load balancer. Sources for the realistic numbers are in ``docs/oci-emulator.md``
("Timing"); they are observations and Oracle's own waits, not documented guarantees.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sandbox.oci_emulator.core import StateStore

Duration = tuple[float, float]  # (min, max) OCI seconds; min == max for a fixed duration

SECTION = "timing"
KINDS = (
    "lbWorkRequestSeconds",
    "certificateUpdateSeconds",
    "vaultUpdateSeconds",
    "listenerFollowSeconds",
)


@dataclass(frozen=True, slots=True)
class TimingProfile:
    """Durations in OCI seconds and the scale that maps them to wall seconds.

    ``instant()`` (the default of every fixture without ``"timing"``) keeps today's fast sandbox:
    work requests take the load balancer's ``workRequestSeconds`` (0.2 s when it names none) and
    lifecycles settle at once. ``realistic(scale)`` is OCI's.
    """

    scale: float = 1.0
    durations: dict[str, Duration] = field(default_factory=dict)

    @classmethod
    def instant(cls) -> TimingProfile:
        """The fast sandbox: no durations named, lifecycles settle at once."""
        return cls(scale=1.0, durations={})

    @classmethod
    def realistic(cls, scale: float = 1.0) -> TimingProfile:
        """OCI's observed times (docs/oci-emulator.md, "Timing"), run ``scale`` times as fast."""
        return cls(
            scale=scale,
            durations={
                "lbWorkRequestSeconds": (20.0, 60.0),
                "certificateUpdateSeconds": (5.0, 5.0),
                "vaultUpdateSeconds": (3.0, 3.0),
                "listenerFollowSeconds": (30.0, 30.0),
            },
        )

    def to_fixture(self) -> dict[str, Any]:
        """The fixture's ``"timing"`` value for this profile."""
        out: dict[str, Any] = {"scale": self.scale}
        for kind, (low, high) in self.durations.items():
            out[kind] = low if low == high else [low, high]
        return out

    @classmethod
    def from_fixture(cls, raw: object) -> TimingProfile:
        """Parse a fixture's ``"timing"`` (None: :meth:`instant`); ValueError names the field."""
        if raw is None:
            return cls.instant()
        if not isinstance(raw, dict):
            msg = "timing: must be an object"
            raise ValueError(msg)  # noqa: TRY004 - a fixture error, whatever its kind
        unknown = sorted(set(raw) - {"scale", *KINDS})
        if unknown:
            msg = f"timing: unknown key(s) {', '.join(unknown)}; known: scale, {', '.join(KINDS)}"
            raise ValueError(msg)
        scale = raw.get("scale", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, int | float) or scale <= 0:
            msg = "timing.scale: must be a number > 0"
            raise ValueError(msg)
        durations: dict[str, Duration] = {}
        for kind in KINDS:
            if kind in raw:
                durations[kind] = _duration(raw[kind], f"timing.{kind}")
        return cls(scale=float(scale), durations=durations)

    def oci_seconds(self, kind: str, key: str = "") -> float:
        """The duration of one operation in OCI seconds (0 when the profile does not name it)."""
        low, high = self.durations.get(kind, (0.0, 0.0))
        if low == high:
            return low
        # Deterministic per operation: the same work request always takes the same time.
        fraction = int.from_bytes(hashlib.sha256(f"{kind}:{key}".encode()).digest()[:8]) / 2**64
        return low + (high - low) * fraction

    def wall_seconds(self, kind: str, key: str = "") -> float:
        """The duration of one operation in the emulator's wall-clock seconds."""
        return self.oci_seconds(kind, key) * self.scale


def _duration(raw: object, where: str) -> Duration:
    if isinstance(raw, bool):
        raise ValueError(f"{where}: must be a number >= 0 or [min, max]")  # noqa: TRY004
    if isinstance(raw, int | float):
        if raw < 0:
            raise ValueError(f"{where}: must be >= 0")
        return (float(raw), float(raw))
    if (
        isinstance(raw, list)
        and len(raw) == 2  # [min, max]
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
        and 0 <= raw[0] <= raw[1]
    ):
        return (float(raw[0]), float(raw[1]))
    raise ValueError(f"{where}: must be a number >= 0 or [min, max] with 0 <= min <= max")


def seed(store: StateStore, fixture: dict[str, Any]) -> None:
    """Store the fixture's profile in the emulator's state; ValueError names a bad field."""
    profile = TimingProfile.from_fixture(fixture.get(SECTION))
    with store.lock:
        store.data[SECTION] = profile.to_fixture()


def profile(store: StateStore) -> TimingProfile:
    """The emulator's current profile (``instant()`` when none was seeded)."""
    with store.lock:
        raw = store.data.get(SECTION)
    return TimingProfile.from_fixture(raw)
