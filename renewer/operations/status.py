"""What ``status`` and ``history`` show: what each target serves next to what Vault holds. Pure.

The adapters observe (``renewer.adapters.oci_served_probe`` dials each listener, the Vault
store lists the certificate's versions); this module only compares and shapes the answer:

* :func:`status_view`: per certificate, ``held`` (the CURRENT Vault version: version, serial,
  notAfter, days left, key type, issuer) and per target what it serves now, with ``drift`` set
  where the two differ — a listener still on the self-signed certificate it was created with, a
  listener someone pointed at another bundle, a Certificates-service certificate updated by hand.
  A target that could not be observed says why (``error``) and counts as drift: status must not
  claim agreement it did not see.
* :func:`history_view`: each stored certificate version, newest first, with where it is
  deployed now and whether ``rollback`` accepts it. The version numbers are Vault's secret
  version numbers: exactly what ``rollback --version`` takes (pending-order records, which hold
  no certificate, are not listed; versions pending deletion are listed and refused).

Everything here is names, serials, dates and OCIDs: no key, no PEM.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

_DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class ServedCertificate:
    """The leaf a target presents (or the Certificates service reports as current)."""

    serial: str
    issuer: str | None
    subject: str | None
    not_after: datetime | None
    key_type: str | None


@dataclass(frozen=True, slots=True)
class Observation:
    """One listener (or Certificates-service certificate) as observed now.

    ``bundle`` / ``certificate_ids``: what the listener references in its SSL configuration;
    ``version``: the Certificates-service version number. ``error``: why nothing was observed.
    """

    kind: str  # "listener" or "certificate"
    id: str
    listener: str | None = None
    port: int | None = None
    bundle: str | None = None
    certificate_ids: tuple[str, ...] = ()
    version: int | None = None
    served: ServedCertificate | None = None
    error: str | None = None

    def failed(self, error: str) -> Observation:
        """The same observation, with why it could not be made."""
        return dataclasses.replace(self, error=error)

    def with_served(self, served: ServedCertificate, *, version: int | None = None) -> Observation:
        """The same observation, with what is served."""
        return dataclasses.replace(self, served=served, version=version)

    @property
    def where(self) -> str:
        """``<lb ocid>/<listener>`` or the certificate's OCID: how views name the target."""
        return self.id if self.listener is None else f"{self.id}/{self.listener}"


@dataclass(frozen=True, slots=True)
class VersionEntry:
    """One Vault version of a certificate: facts only (``serial`` None: unreadable or deleted)."""

    version: int
    stages: tuple[str, ...] = ()
    serial: str | None = None
    not_after: datetime | None = None
    dns_names: tuple[str, ...] = ()
    key_type: str | None = None
    issuer: str | None = None
    ca: str | None = None  # the issuing CA's directory host (issue 17); None: not recorded
    pending_deletion: bool = False
    unreadable: bool = False
    # When (and why) the revoke action revoked this version: rollback refuses it.
    revoked: str | None = None

    @property
    def current(self) -> bool:
        """Whether this is the CURRENT version (what the renewer deploys)."""
        return "CURRENT" in self.stages


def status_view(
    versions: Sequence[VersionEntry], observations: Sequence[Observation], *, now: datetime
) -> dict[str, object]:
    """``held``, ``targets`` (each with ``drift``) and ``drift`` for one certificate."""
    held = next((v for v in versions if v.current and v.serial), None)
    targets = [_target(o, held, now) for o in observations]
    return {
        "held": None if held is None else _held(held, now),
        "targets": targets,
        "drift": any(t["drift"] for t in targets),
    }


def history_view(
    versions: Sequence[VersionEntry], observations: Sequence[Observation], *, now: datetime
) -> list[dict[str, object]]:
    """Each certificate version, newest first, with where it is served and if rollback takes it."""
    rows = []
    for entry in sorted(versions, key=lambda v: v.version, reverse=True):
        deployed = [
            o.where
            for o in observations
            if o.served and entry.serial and o.served.serial == entry.serial
        ]
        refusal = rollback_refusal(entry, now=now)
        rows.append(
            {
                "version": entry.version,
                "stages": list(entry.stages),
                "serial": entry.serial,
                "not_after": _iso(entry.not_after),
                "days_left": _days(entry.not_after, now),
                "dns_names": list(entry.dns_names),
                "key_type": entry.key_type,
                "issuer": entry.issuer,
                "ca": entry.ca,
                "deployed_at": deployed,
                "rollback": refusal is None,
                "note": refusal,
            }
        )
    return rows


def rollback_refusal(entry: VersionEntry, *, now: datetime) -> str | None:
    """Why ``rollback`` would refuse this version (None: it accepts it)."""
    if entry.pending_deletion:
        return "pending deletion in Vault"
    if entry.unreadable or entry.serial is None:
        return "cannot be read"
    if entry.revoked is not None:
        return f"revoked at the CA ({entry.revoked}): a listener must never serve it"
    if entry.not_after is not None and now >= entry.not_after:
        return "expired"
    return None


def unknown_version_message(name: str, version: int, versions: Sequence[VersionEntry]) -> str:
    """The usage error for a rollback to a version that is not a stored certificate version."""
    known = ", ".join(str(v.version) for v in sorted(versions, key=lambda v: v.version)) or "none"
    return (
        f"version {version} is not a stored certificate version of {name!r} (stored: {known});"
        f" list them with `python -m renewer history {name}` or the function's"
        f' {{"action": "history"}}'
    )


def _held(entry: VersionEntry, now: datetime) -> dict[str, object]:
    return {
        "version": entry.version,
        "serial": entry.serial,
        "not_after": _iso(entry.not_after),
        "days_left": _days(entry.not_after, now),
        "key_type": entry.key_type,
        "issuer": entry.issuer,
        "ca": entry.ca,
    }


def _target(
    observation: Observation, held: VersionEntry | None, now: datetime
) -> dict[str, object]:
    served = observation.served
    if observation.error is not None or served is None:
        drift, note = True, f"not observed: {observation.error or 'nothing served'}"
    elif held is None:
        drift, note = True, "serves a certificate the renewer has not stored (none held yet)"
    elif served.serial != held.serial:
        drift = True
        note = f"serves serial {served.serial}, not the held version {held.version} ({held.serial})"
    else:
        drift, note = False, f"serves the held version {held.version}"
    return {
        "kind": observation.kind,
        "id": observation.id,
        "listener": observation.listener,
        "port": observation.port,
        "bundle": observation.bundle,
        "certificate_ids": list(observation.certificate_ids),
        "served": None
        if served is None
        else {
            "serial": served.serial,
            "issuer": served.issuer,
            "subject": served.subject,
            "not_after": _iso(served.not_after),
            "days_left": _days(served.not_after, now),
            "key_type": served.key_type,
            "version": observation.version,
        },
        "drift": drift,
        "note": note,
        "error": observation.error,
    }


def _days(value: datetime | None, now: datetime) -> float | None:
    if value is None:
        return None
    return round((value - now).total_seconds() / _DAY_S, 1)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
