"""Fan-out: a scheduled run too short for its fleet hands it to detached invocations per lane.

A synchronous invocation lasts at most 300 s; a load balancer runs its work requests one at a
time, 20-60 s each, two per certificate. A scheduled run whose busiest load balancer has more
due certificates than fit its budget (:data:`SECONDS_PER_CERTIFICATE` each) would finish a
handful and defer the rest to the next schedule. Instead it **splits the due certificates by
lane** (:func:`renewer.fleet.lane_of`: per load balancer; Certificates-service certificates,
which need no load-balancer work request, together in one part) and **invokes the function in
detached mode** once per part (up to ``detachedModeTimeoutInSeconds``, 3,600 s at most), with
the body ``{"action": "renew", "certificates": [...]}`` — a named renewal, which never fans out
again. The scheduled run itself only plans (read-only) and dispatches.

Why per lane and not one detached run of everything (measured in ``make bench-fleet``, see
docs/fleet.md): a lane is the unit that serializes (one load balancer), so parts never wait for
each other, each part is its own container (memory, CPU and ACME connections of its own), and a
part that fails or dies costs only its own load balancer's certificates.

Parts never overlap: each takes a **lane lease** (``leases/lane-<hash>.json``, the certificates'
lease mechanism) for the detached timeout before it is invoked; a lane whose lease is live is
skipped (its part is still running). The lease is not released by the part: it expires, so a
part that dies is picked up by the first schedule after its timeout — the certificates it did
not finish are still due, and their own leases (shorter) have expired by then. Inside a part
the per-certificate leases keep it off any certificate another run holds.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from renewer import fleet
from renewer.errors import RenewerError
from renewer.ports import Lease
from renewer.settings import Config

logger = logging.getLogger(__name__)

# One due certificate on one load balancer: a bundle create and a listener update at the
# realistic 40 s mean (docs/oci-emulator.md, "Timing"), plus the order and VERIFY.
SECONDS_PER_CERTIFICATE = 100.0
SERVICE_LANE = "certificates-service"
DEFAULT_DETACHED_TIMEOUT_S = 3600.0
LEASE_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class Part:
    """One detached invocation's work: the due certificates of one lane."""

    lane: str
    names: tuple[str, ...]

    @property
    def lease_name(self) -> str:
        """The lane lease's name (a certificate-name-shaped hash of the lane)."""
        return "lane-" + hashlib.sha256(self.lane.encode()).hexdigest()[:16]

    def body(self) -> dict[str, object]:
        """The detached invocation's payload."""
        return {"action": "renew", "certificates": list(self.names)}


@dataclass(frozen=True, slots=True)
class Dispatched:
    """What became of one part: invoked (``request_id``), or why not (``skipped``)."""

    part: Part
    request_id: str | None = None
    skipped: str | None = None

    def to_document(self) -> dict[str, object]:
        """The part as the run's report shows it."""
        document: dict[str, object] = {
            "lane": self.part.lane,
            "certificates": list(self.part.names),
        }
        if self.request_id is not None:
            document["invoked"] = self.request_id or True
        if self.skipped is not None:
            document["skipped"] = self.skipped
        return document


def _lane(config: Config, name: str) -> str:
    lane = fleet.lane_of(config.certificate(name))
    return SERVICE_LANE if lane.startswith("certificate:") else lane


def might_fan_out(
    config: Config, *, budget_s: float, per_certificate_s: float = SECONDS_PER_CERTIFICATE
) -> bool:
    """Whether the busiest lane, were all of it due, would not fit ``budget_s`` (no I/O)."""
    sizes: dict[str, int] = {}
    for managed in config.certificates:
        lane = _lane(config, managed.spec.name)
        sizes[lane] = sizes.get(lane, 0) + 1
    return bool(sizes) and max(sizes.values()) * per_certificate_s > budget_s


def split(
    config: Config,
    due: Iterable[str],
    *,
    budget_s: float,
    per_certificate_s: float = SECONDS_PER_CERTIFICATE,
) -> list[Part]:
    """The parts to fan out, busiest lane first; [] when the busiest lane fits ``budget_s``.

    Certificates-service certificates form one part (no load-balancer work request: they are
    quick), and are counted as a lane of that size.
    """
    lanes: dict[str, list[str]] = {}
    for name in due:
        lanes.setdefault(_lane(config, name), []).append(name)
    if not lanes or max(len(n) for n in lanes.values()) * per_certificate_s <= budget_s:
        return []
    ordered = sorted(lanes.items(), key=lambda item: -len(item[1]))
    return [Part(lane, tuple(names)) for lane, names in ordered]


def dispatch(
    parts: Sequence[Part],
    *,
    invoke: Callable[[Mapping[str, object]], str],
    leases: Lease,
    holder: str,
    ttl: timedelta,
) -> list[Dispatched]:
    """Take each part's lane lease and invoke it detached; a live lease skips the part.

    A failed invocation releases its lease (the next schedule tries again) and is reported in
    its part; the other parts go on.
    """
    results = []
    for part in parts:
        handle = leases.acquire(part.lease_name, holder=holder, ttl=ttl)
        if handle is None:
            held = leases.current(part.lease_name)
            until = f" until {held.expires_at.isoformat()}" if held is not None else ""
            results.append(Dispatched(part, skipped=f"a part is still running{until}"))
            continue
        try:
            request_id = invoke(part.body())
        except RenewerError as exc:
            leases.release(handle)
            logger.warning(
                "fan_out_failed lane=%s error_type=%s error=%s", part.lane, type(exc).__name__, exc
            )
            results.append(Dispatched(part, skipped=f"not invoked: {type(exc).__name__}: {exc}"))
            continue
        logger.info(
            "fan_out lane=%s certificates=%d request_id=%s", part.lane, len(part.names), request_id
        )
        results.append(Dispatched(part, request_id=request_id))
    return results


def lease_ttl(detached_timeout_s: float | None) -> timedelta:
    """A lane lease outlives its part: the detached timeout plus a margin."""
    return timedelta(seconds=detached_timeout_s or DEFAULT_DETACHED_TIMEOUT_S) + LEASE_MARGIN
