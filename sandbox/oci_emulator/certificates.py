"""OCI Certificates service, imported certificates only: management and bundle retrieval.

Two SDK clients share the base path ``/20210224`` and this module serves both:

* ``CertificatesManagementClient`` (``/certificates…``): CreateCertificate, GetCertificate,
  ListCertificates, UpdateCertificate, ScheduleCertificateDeletion, CancelCertificateDeletion,
  ListCertificateVersions, GetCertificateVersion, ScheduleCertificateVersionDeletion,
  CancelCertificateVersionDeletion;
* ``CertificatesClient`` (``/certificateBundles…``): GetCertificateBundle,
  ListCertificateBundleVersions.

Documented behaviour this module follows (SDK docstrings and OCI docs):

* ``certificateConfig`` is polymorphic on ``configType``; an ``IMPORTED`` config carries
  ``certificatePem``, ``certChainPem``, ``privateKeyPem`` (all required) and an optional
  ``privateKeyPemPassphrase`` and ``versionName``. Names are unique within a compartment and use
  letters, digits, ``-``, ``_`` and ``.``; version names are unique within a certificate.
* Version rotation states: the newest version is ``LATEST``; the version in use is ``CURRENT``
  (the first version is ``CURRENT`` and ``LATEST``); ``PENDING`` is staged but not in use;
  ``PREVIOUS`` was ``CURRENT`` before the last rotation; ``DEPRECATED`` is everything else.
  ``UpdateCertificate`` imports a new version at ``stage`` ``CURRENT`` (the default) or
  ``PENDING``; ``currentVersionNumber`` makes an existing version current, cannot be combined
  with any other property, and cannot target a ``DEPRECATED`` version.
* Only ``DEPRECATED`` versions can be scheduled for deletion. Deletion (of a version or of the
  certificate) happens 30 days later by default and at least one day later. A certificate
  pending deletion still holds its name.
* ``GetCertificateBundle`` picks the version by ``versionNumber`` (0 = ignored),
  ``certificateVersionName`` or ``stage``, else the ``CURRENT`` one; the private key (and its
  passphrase) is returned only for ``certificateBundleType=CERTIFICATE_CONTENT_WITH_PRIVATE_KEY``.
* Enum spellings (key and signature algorithms, stages, lifecycle states, bundle types) are the
  SDK's; anything else would parse as ``UNKNOWN_ENUM_VALUE``.
* Authorization: once the target's compartment is known (the body's ``compartmentId`` on
  create, the query's on list, the certificate's otherwise) every handler calls
  ``Emulator.authorize`` with ``certificate_service="certificates"`` (which tells these
  CreateCertificate/ListCertificates from the Load Balancer's), ``certificate_name`` and
  ``certificate_id`` (``target.leaf-certificate.name``/``.id``) when there is a certificate,
  and ``certificate_bundle_type`` on GetCertificateBundle. A missing certificate and a denied
  request both answer 404 NotAuthorizedOrNotFound.

Assumptions (behaviour OCI does not document; chosen to be predictable and strict):

1. Only ``IMPORTED`` is emulated: other ``configType`` values answer 400 InvalidParameter naming
   the type. ``certificateRules`` (renewal rules, meaningful only for CA-issued certificates)
   are refused with 400 on imported certificates.
2. Validation answers 400 InvalidParameter (400 MissingParameter for an absent required field):
   a PEM that does not parse; ``certificatePem`` holding more than one certificate; a private key
   that does not match the certificate's public key, is encrypted without a passphrase, or is
   given a passphrase it does not need or that is wrong; a leaf not directly issued (name and
   signature) by the first certificate of ``certChainPem``; a key other than RSA 2048/4096 or
   ECDSA P-256/P-384; a signature other than SHA-256/384/512 with RSA (PKCS#1 v1.5) or ECDSA.
   Expired or not-yet-valid certificates are accepted.
3. Lifecycle (the timing profile's ``certificateUpdateSeconds``, :mod:`.timing`): with the
   default ``instant`` profile every change is applied at once and the certificate stays
   ``ACTIVE``. With a duration, CreateCertificate answers ``CREATING``; UpdateCertificate,
   ScheduleCertificateVersionDeletion and CancelCertificateVersionDeletion put the certificate
   in ``UPDATING``; ScheduleCertificateDeletion in ``SCHEDULING_DELETION`` (then
   ``PENDING_DELETION``) and CancelCertificateDeletion in ``CANCELLING_DELETION`` (then
   ``ACTIVE``), each for that long (Oracle's oci-native-ingress-controller,
   ``pkg/certificate/certificate.go``, polls GetCertificate until ``ACTIVE`` after
   CreateCertificate, UpdateCertificate and ScheduleCertificateVersionDeletion; the SDK has
   ``update_certificate_and_wait_for_state``). Assumed, the stricter reading: the change becomes
   visible (versions, stages, bundles) only when the certificate is ``ACTIVE`` again, so a read
   during ``UPDATING`` shows the state before it; its etag is the new one at once. Any change
   while the certificate is in one of those transitional states is 409 ``IncorrectState`` (OCI's
   API errors table: "The requested state for the resource conflicts with its current state.
   Retry: yes, with backoff"; the SDK's default retry strategy retries 409 IncorrectState).
   Scheduled deletions take effect lazily, on the first request (or
   :meth:`Certificates.current_material` call) after the deletion time, by removing the version
   or the certificate (404 afterwards; no ``DELETED`` tombstone). The emulator clock is
   :func:`sandbox.oci_emulator.core.now`.
4. Status codes: a duplicate certificate or version name is 409 ``Conflict``; an ``if-match``
   that differs from the certificate's etag is 409 ``Conflict`` (Oracle's own
   oci-native-ingress-controller treats a stale etag on UpdateCertificate as a 409; OCI's generic
   convention would be 412 NoEtagMatch); refusals because of a rotation or lifecycle state
   (scheduling deletion of a non-``DEPRECATED`` version, promoting a ``DEPRECATED`` one,
   updating a certificate pending deletion, cancelling a deletion that is not scheduled) are
   409 ``IncorrectState``; a ``currentVersionNumber`` naming no version is 400.
5. A new ``PENDING`` version deprecates an older ``PENDING`` one (one pending version at a
   time); a new ``CURRENT`` version leaves an existing ``PENDING`` one pending. A new version may
   change subject, SANs and key algorithm; certificate-level ``subject``, ``keyAlgorithm`` and
   ``signatureAlgorithm`` follow the ``CURRENT`` version.
6. ``timeOfDeletion`` earlier than one day from now (with five minutes of slack for the caller's
   clock and transit) is 400; no maximum is enforced. Scheduling an already scheduled version is
   409 IncorrectState.
7. ``serialNumber`` is the serial's minimal unsigned big-endian bytes as space-separated
   upper-case hex octets, as in the SDK's example (``03 AC FC …``).
8. ``subject`` takes the first value of each attribute; SANs other than DNS and IP are omitted.
9. Lists: ``ListCertificates`` without ``compartmentId`` lists the whole tenancy (authorized
   against the caller's tenancy); its default sort is ``TIMECREATED`` descending; list page
   tokens are opaque offsets. A bundle ``stage=DEPRECATED`` that matches several versions picks
   the newest; several selectors must all match the same version.
10. ``opc-retry-token`` on CreateCertificate: a repeated token within 24 hours answers the
    certificate the first request created, whatever the body.
11. Every mutation changes the certificate's ``etag``; it is returned on Get/Create/Update and on
    the schedule/cancel actions. Load-balancer associations are not tracked (they neither
    change the etag nor block deletion).
12. The compartment is not checked to exist; authorization (when enabled) decides.
13. A listener that names the certificate in ``certificateIds`` serves its CURRENT version and
    follows every rotation without a listener update (:meth:`Certificates.current_material`).
    OCI does not document this; Oracle's oci-native-ingress-controller relies on it (wire facts
    section 2). It follows after the profile's ``listenerFollowSeconds`` (assumed: the delay is
    counted from the moment the new version became CURRENT, i.e. the certificate ACTIVE again;
    until then the listener serves the version that was CURRENT before).

Public accessor for the Load Balancer (listeners with ``certificateIds``):
:meth:`Certificates.current_material`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from sandbox.oci_emulator import timing
from sandbox.oci_emulator.core import (
    OciError,
    Reply,
    Request,
    Route,
    invalid,
    new_etag,
    new_ocid,
    not_found,
    now,
    rfc3339,
)
from sandbox.oci_emulator.server import Emulator

BASE = "/20210224"
SERVICE_TARGET = "certificates"  # the policy engine's key to tell us from the LB's certificates

# Lifecycle states (SDK Certificate.LIFECYCLE_STATE_*).
ACTIVE = "ACTIVE"
PENDING_DELETION = "PENDING_DELETION"
CREATING = "CREATING"
UPDATING = "UPDATING"
SCHEDULING_DELETION = "SCHEDULING_DELETION"
CANCELLING_DELETION = "CANCELLING_DELETION"
# Transitional states: the service is still applying a change; another change is 409.
BUSY_STATES = frozenset({CREATING, UPDATING, SCHEDULING_DELETION, CANCELLING_DELETION})
UPDATE_SECONDS = "certificateUpdateSeconds"  # timing profile kinds
FOLLOW_SECONDS = "listenerFollowSeconds"
# Record keys of the lifecycle machinery; never part of an answer.
CHANGE_KEYS = ("busyUntil", "pendingChange", "served")

# Rotation states. A version has exactly one of these; LATEST is derived (the highest number).
CURRENT = "CURRENT"
PENDING = "PENDING"
LATEST = "LATEST"
PREVIOUS = "PREVIOUS"
DEPRECATED = "DEPRECATED"
STAGE_ORDER = (CURRENT, PENDING, LATEST, PREVIOUS, DEPRECATED)  # the SDK enum's order
BUNDLE_STAGES = frozenset(STAGE_ORDER)

IMPORTED = "IMPORTED"
OTHER_CONFIG_TYPES = frozenset(
    {"ISSUED_BY_INTERNAL_CA", "MANAGED_EXTERNALLY_ISSUED_BY_INTERNAL_CA"}
)
PUBLIC_ONLY = "CERTIFICATE_CONTENT_PUBLIC_ONLY"
WITH_PRIVATE_KEY = "CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]+$")
DEFAULT_DELETION_DELAY = timedelta(days=30)
MIN_DELETION_DELAY = timedelta(days=1)
DELETION_SLACK = timedelta(minutes=5)
RETRY_TOKEN_TTL = 24 * 3600.0

RSA_KEY_ALGORITHMS = {2048: "RSA2048", 4096: "RSA4096"}
EC_KEY_ALGORITHMS = {"secp256r1": "ECDSA_P256", "secp384r1": "ECDSA_P384"}
SIGNATURE_ALGORITHMS = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: "SHA256_WITH_RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "SHA384_WITH_RSA",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "SHA512_WITH_RSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "SHA256_WITH_ECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "SHA384_WITH_ECDSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "SHA512_WITH_ECDSA",
}
SUBJECT_FIELDS = (  # CertificateSubject's JSON names
    (NameOID.COMMON_NAME, "commonName"),
    (NameOID.COUNTRY_NAME, "country"),
    (NameOID.DOMAIN_COMPONENT, "domainComponent"),
    (NameOID.DN_QUALIFIER, "distinguishedNameQualifier"),
    (NameOID.GENERATION_QUALIFIER, "generationQualifier"),
    (NameOID.GIVEN_NAME, "givenName"),
    (NameOID.INITIALS, "initials"),
    (NameOID.LOCALITY_NAME, "localityName"),
    (NameOID.ORGANIZATION_NAME, "organization"),
    (NameOID.ORGANIZATIONAL_UNIT_NAME, "organizationalUnit"),
    (NameOID.PSEUDONYM, "pseudonym"),
    (NameOID.SERIAL_NUMBER, "serialNumber"),
    (NameOID.STATE_OR_PROVINCE_NAME, "stateOrProvinceName"),
    (NameOID.STREET_ADDRESS, "street"),
    (NameOID.SURNAME, "surname"),
    (NameOID.TITLE, "title"),
    (NameOID.USER_ID, "userId"),
)
# Stored per version; everything else a version holds is derived from these PEMs at import.
MATERIAL_KEYS = ("certificatePem", "certChainPem", "privateKeyPem", "privateKeyPemPassphrase")


class Certificates:
    """The emulated Certificates service (see the module docstring for the behaviour).

    State (``emulator.state.section("certificates")``, JSON)::

        {"certificates": {ocid: record}, "retryTokens": {token: {"id", "expires"}}, "seq": n}

    A record holds the certificate's own fields plus ``etag``, ``seq`` (creation order),
    ``deleteAt`` (epoch seconds or None), ``nextVersionNumber`` and ``versions``: a list of
    version dicts holding the imported PEMs, the fields derived from them, ``rotation`` (one of
    CURRENT, PENDING, PREVIOUS, DEPRECATED) and ``deleteAt``.
    """

    name = "certificates"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    # ------------------------------------------------------------------ service protocol

    def routes(self) -> list[Route]:
        """Every operation, under ``/20210224``."""
        cert = f"{BASE}/certificates/{{certificateId}}"
        version = f"{cert}/version/{{certificateVersionNumber}}"
        bundle = f"{BASE}/certificateBundles/{{certificateId}}"
        return [
            Route("POST", f"{BASE}/certificates", "CreateCertificate", self._create),
            Route("GET", f"{BASE}/certificates", "ListCertificates", self._list),
            Route("GET", cert, "GetCertificate", self._get),
            Route("PUT", cert, "UpdateCertificate", self._update),
            Route(
                "POST",
                f"{cert}/actions/scheduleDeletion",
                "ScheduleCertificateDeletion",
                self._schedule_deletion,
            ),
            Route(
                "POST",
                f"{cert}/actions/cancelDeletion",
                "CancelCertificateDeletion",
                self._cancel_deletion,
            ),
            Route("GET", f"{cert}/versions", "ListCertificateVersions", self._list_versions),
            Route("GET", version, "GetCertificateVersion", self._get_version),
            Route(
                "POST",
                f"{version}/actions/scheduleDeletion",
                "ScheduleCertificateVersionDeletion",
                self._schedule_version_deletion,
            ),
            Route(
                "POST",
                f"{version}/actions/cancelDeletion",
                "CancelCertificateVersionDeletion",
                self._cancel_version_deletion,
            ),
            Route("GET", bundle, "GetCertificateBundle", self._get_bundle),
            Route("GET", f"{bundle}/versions", "ListCertificateBundleVersions", self._list_bundles),
        ]

    def seed(self, fixture: dict[str, Any]) -> None:
        """Import the fixture's ``certificates``; ValueError names a bad entry.

        Each entry: ``name``, ``compartment`` (an OCID, or a name from the fixture's
        ``compartments``), ``certificatePem``, ``certChainPem``, ``privateKeyPem``, and optionally
        ``privateKeyPemPassphrase``, ``versionName``, ``description``, ``freeformTags`` and ``id``
        (a fixed OCID, so other services' fixtures can refer to it). Each becomes an ACTIVE
        certificate with one CURRENT version, validated like CreateCertificate.
        """
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        for entry in fixture.get("certificates", []):
            label = entry.get("name", "?")
            compartment = str(entry.get("compartment", ""))
            body = {
                "name": entry.get("name"),
                "compartmentId": compartments.get(compartment, compartment) or None,
                "description": entry.get("description"),
                "freeformTags": entry.get("freeformTags"),
                "certificateConfig": {
                    "configType": IMPORTED,
                    "versionName": entry.get("versionName"),
                    **{key: entry.get(key) for key in MATERIAL_KEYS},
                },
            }
            if entry.get("id") in self._certificates:
                msg = f"certificate {label!r}: id {entry['id']} is already taken"
                raise ValueError(msg)
            try:
                record = self._new_record(body, certificate_id=entry.get("id"))
            except OciError as exc:
                msg = f"certificate {label!r}: {exc.message}"
                raise ValueError(msg) from exc
            self._certificates[record["id"]] = record

    # ------------------------------------------------------------------ public accessors

    def current_material(self, certificate_id: str) -> tuple[str, str] | None:
        """``(full chain PEM, private key PEM)`` of the certificate's CURRENT version, or None.

        The chain is the leaf followed by ``certChainPem``; the key is unencrypted PEM (decrypted
        with the stored passphrase when it was imported encrypted). None when the certificate
        does not exist (or its scheduled deletion has passed). A listener that refers to the
        certificate by OCID (``certificateIds``) calls this on every handshake or reload, so it
        follows UpdateCertificate/currentVersionNumber rotations without a listener change,
        ``listenerFollowSeconds`` of the timing profile after each (assumption 13).
        """
        with self.emulator.state.lock:
            self._purge()
            record = self._certificates.get(certificate_id)
            if record is None:
                return None
            version = self._served_version(record)
            chain = _join_pems(version["certificatePem"], version["certChainPem"])
            return chain, _unencrypted_key(version)

    # ------------------------------------------------------------------ state helpers

    @property
    def _section(self) -> dict[str, Any]:
        section = self.emulator.state.section(self.name)
        section.setdefault("certificates", {})
        section.setdefault("retryTokens", {})
        section.setdefault("seq", 0)
        return section

    @property
    def _certificates(self) -> dict[str, dict[str, Any]]:
        certificates: dict[str, dict[str, Any]] = self._section["certificates"]
        return certificates

    def _purge(self) -> None:
        """Settle finished changes, carry out scheduled deletions now due (assumption 3)."""
        moment = now()
        for cert_id, record in list(self._certificates.items()):
            _settle(record, moment)
            if record.get("deleteAt") is not None and record["deleteAt"] <= moment:
                del self._certificates[cert_id]
                continue
            record["versions"] = [
                v for v in record["versions"] if v.get("deleteAt") is None or v["deleteAt"] > moment
            ]
        tokens = self._section["retryTokens"]
        for token, entry in list(tokens.items()):
            if entry["expires"] <= moment or entry["id"] not in self._certificates:
                del tokens[token]

    def _update_seconds(self, record: dict[str, Any]) -> float:
        """Wall seconds the next change of ``record`` keeps it in a transitional state."""
        profile = timing.profile(self.emulator.state)
        return profile.wall_seconds(UPDATE_SECONDS, f"{record['id']}:{record['etag']}")

    def _change(
        self,
        record: dict[str, Any],
        apply: Callable[[dict[str, Any]], None],
        *,
        busy: str,
        settled: str = ACTIVE,
    ) -> None:
        """Apply ``apply`` to a copy of ``record`` now, and commit that copy when due.

        Validation errors surface at once. The copy replaces the record now (instant profile)
        or after ``certificateUpdateSeconds``; meanwhile the record is ``busy`` (assumption 3).
        """
        after = copy.deepcopy({k: v for k, v in record.items() if k not in CHANGE_KEYS})
        apply(after)
        after["etag"] = new_etag()
        after["lifecycleState"] = settled
        seconds = self._update_seconds(record)
        if seconds <= 0:
            _commit(record, after, now())
            return
        record["pendingChange"] = after
        record["busyUntil"] = now() + seconds
        record["lifecycleState"] = busy
        record["etag"] = after["etag"]

    def _served_version(self, record: dict[str, Any]) -> dict[str, Any]:
        """The version a listener referencing ``record`` serves now (assumption 13)."""
        profile = timing.profile(self.emulator.state)
        moment = now()
        history: list[list[Any]] = record.get("served") or []
        number = history[0][1] if history else None
        for became_current, candidate in history:
            follow = profile.wall_seconds(FOLLOW_SECONDS, f"{record['id']}:{candidate}")
            if became_current + follow <= moment:
                number = candidate
        served = next((v for v in record["versions"] if v["versionNumber"] == number), None)
        return served or _current(record)

    def _find(self, request: Request, **target: str) -> dict[str, Any]:
        """The path's certificate, after authorization; 404 when missing or not allowed.

        The policy engine gets the certificate's name and OCID (``target.leaf-certificate.*``)
        and any extra ``target`` keys.
        """
        self._purge()
        record = self._certificates.get(request.params["certificateId"])
        if record is None:
            raise not_found("certificate")
        self._authorize(
            request,
            record["compartmentId"],
            certificate_name=record["name"],
            certificate_id=record["id"],
            **target,
        )
        return record

    def _authorize(self, request: Request, compartment_id: str, **target: str) -> None:
        """``Emulator.authorize`` with ``certificate_service`` set (policies.py's contract)."""
        self.emulator.authorize(
            request, compartment_id=compartment_id, certificate_service=SERVICE_TARGET, **target
        )

    def _new_record(
        self, body: dict[str, Any], *, certificate_id: str | None = None
    ) -> dict[str, Any]:
        """A validated certificate record for a CreateCertificate body (not stored yet)."""
        compartment_id = _required_str(body, "compartmentId")
        name = _required_str(body, "name")
        if not NAME_PATTERN.match(name):
            raise invalid(
                "name may contain only letters, numbers, hyphens, underscores and periods."
            )
        config = _imported_config(body.get("certificateConfig"), "certificateConfig")
        version = _new_version(config, number=1, rotation=CURRENT)
        description = _optional_str(body, "description")
        freeform, defined = _tags(body)
        _refuse_rules(body)
        if any(
            r["compartmentId"] == compartment_id and r["name"] == name
            for r in self._certificates.values()
        ):
            raise OciError(
                409,
                "Conflict",
                f"A certificate named {name!r} already exists in compartment {compartment_id}.",
            )
        self._section["seq"] += 1
        record: dict[str, Any] = {
            "id": certificate_id or new_ocid("certificate"),
            "name": name,
            "compartmentId": compartment_id,
            "description": description,
            "freeformTags": freeform or {},
            "definedTags": defined or {},
            "timeCreated": version["timeCreated"],
            "lifecycleState": ACTIVE,
            "configType": IMPORTED,
            "etag": new_etag(),
            "seq": self._section["seq"],
            "deleteAt": None,
            "nextVersionNumber": 2,
            "versions": [version],
            "served": [[now(), 1]],
        }
        return record

    # ------------------------------------------------------------------ management handlers

    def _create(self, request: Request) -> Reply:
        body = request.json_object()
        compartment_id = _required_str(body, "compartmentId")
        name = body.get("name")
        self._authorize(
            request, compartment_id, **({"certificate_name": name} if isinstance(name, str) else {})
        )
        self._purge()
        token = request.header("opc-retry-token")
        tokens = self._section["retryTokens"]
        if token and token in tokens:
            return _certificate_reply(self._certificates[tokens[token]["id"]])
        record = self._new_record(body)
        self._certificates[record["id"]] = record
        seconds = self._update_seconds(record)
        if seconds > 0:
            record["lifecycleState"] = CREATING
            record["busyUntil"] = now() + seconds
        if token:
            tokens[token] = {"id": record["id"], "expires": now() + RETRY_TOKEN_TTL}
        return _certificate_reply(record)

    def _get(self, request: Request) -> Reply:
        return _certificate_reply(self._find(request))

    def _list(self, request: Request) -> Reply:
        compartment_id = request.arg("compartmentId")
        certificate_id = request.arg("certificateId")
        self._purge()
        if compartment_id:
            scope = compartment_id
        elif certificate_id and certificate_id in self._certificates:
            scope = self._certificates[certificate_id]["compartmentId"]
        else:
            scope = request.principal.tenancy if request.principal else ""
        self._authorize(request, scope)
        state = (request.arg("lifecycleState") or "").upper()
        name = request.arg("name")
        issuer = request.arg("issuerCertificateAuthorityId")
        records = [
            r
            for r in self._certificates.values()
            if (not compartment_id or r["compartmentId"] == compartment_id)
            and (not certificate_id or r["id"] == certificate_id)
            and (not name or r["name"] == name)
            and (not state or r["lifecycleState"] == state)
            and not issuer  # imported certificates have no issuing CA
        ]
        records = _sorted_certificates(
            records, request.arg("sortBy") or "TIMECREATED", request.arg("sortOrder")
        )
        page, headers = _paginate(records, request)
        return Reply(
            body={"items": [_certificate_json(r, summary=True) for r in page]}, headers=headers
        )

    def _update(self, request: Request) -> Reply:
        record = self._find(request)
        _refuse_busy(record)
        _check_if_match(request, record)
        body = request.json_object()
        if record["lifecycleState"] != ACTIVE:
            raise _incorrect_state(
                f"The certificate is {record['lifecycleState']}; only ACTIVE can be updated."
            )
        if body.get("currentVersionNumber") is not None:
            others = sorted(
                k for k, v in body.items() if k != "currentVersionNumber" and v is not None
            )
            if others:
                raise invalid(
                    "currentVersionNumber cannot be updated in combination with any other "
                    f"properties (got {', '.join(others)})."
                )
            number = _version_number(body["currentVersionNumber"])
            self._change(record, lambda after: _promote(after, number), busy=UPDATING)
        else:
            self._change(record, lambda after: _apply_update(after, body), busy=UPDATING)
        return _certificate_reply(record)

    def _schedule_deletion(self, request: Request) -> Reply:
        record = self._find(request)
        _refuse_busy(record)
        _check_if_match(request, record)
        if record["lifecycleState"] != ACTIVE:
            raise _incorrect_state(f"The certificate is already {record['lifecycleState']}.")
        when = _deletion_time(request)
        self._change(
            record,
            lambda after: after.update(deleteAt=when),
            busy=SCHEDULING_DELETION,
            settled=PENDING_DELETION,
        )
        return Reply(headers={"etag": record["etag"]})

    def _cancel_deletion(self, request: Request) -> Reply:
        record = self._find(request)
        _refuse_busy(record)
        _check_if_match(request, record)
        if record["lifecycleState"] != PENDING_DELETION:
            raise _incorrect_state("The certificate is not pending deletion.")
        self._change(record, lambda after: after.update(deleteAt=None), busy=CANCELLING_DELETION)
        return Reply(headers={"etag": record["etag"]})

    def _list_versions(self, request: Request) -> Reply:
        record = self._find(request)
        versions = _sorted_versions(record, request)
        wanted = request.arg("versionNumber")
        if wanted and wanted != "0":
            number = _version_number(wanted)
            versions = [v for v in versions if v["versionNumber"] == number]
        page, headers = _paginate(versions, request)
        return Reply(body={"items": [_version_json(record, v) for v in page]}, headers=headers)

    def _get_version(self, request: Request) -> Reply:
        record = self._find(request)
        version = _version(record, request.params["certificateVersionNumber"])
        return Reply(body=_version_json(record, version), headers={"etag": record["etag"]})

    def _schedule_version_deletion(self, request: Request) -> Reply:
        record = self._find(request)
        _refuse_busy(record)
        version = _version(record, request.params["certificateVersionNumber"])
        _check_if_match(request, record)
        if version.get("deleteAt") is not None:
            raise _incorrect_state(
                f"Certificate version {version['versionNumber']} is already pending deletion."
            )
        if version["rotation"] != DEPRECATED:
            stages = ", ".join(_stages(record, version))
            raise _incorrect_state(
                "Only certificate versions marked DEPRECATED can be scheduled for deletion; "
                f"version {version['versionNumber']} is {stages}."
            )
        when, number = _deletion_time(request), version["versionNumber"]
        self._change(record, lambda after: _set_deletion(after, number, when), busy=UPDATING)
        return Reply(headers={"etag": record["etag"]})

    def _cancel_version_deletion(self, request: Request) -> Reply:
        record = self._find(request)
        _refuse_busy(record)
        version = _version(record, request.params["certificateVersionNumber"])
        _check_if_match(request, record)
        if version.get("deleteAt") is None:
            raise _incorrect_state(
                f"Certificate version {version['versionNumber']} is not pending deletion."
            )
        number = version["versionNumber"]
        self._change(record, lambda after: _set_deletion(after, number, None), busy=UPDATING)
        return Reply(headers={"etag": record["etag"]})

    # ------------------------------------------------------------------ bundle handlers

    def _get_bundle(self, request: Request) -> Reply:
        bundle_type = request.arg("certificateBundleType") or PUBLIC_ONLY
        if bundle_type not in (PUBLIC_ONLY, WITH_PRIVATE_KEY):
            raise invalid(f"certificateBundleType must be {PUBLIC_ONLY} or {WITH_PRIVATE_KEY}.")
        record = self._find(request, certificate_bundle_type=bundle_type)
        number = request.arg("versionNumber")
        version_name = request.arg("certificateVersionName")
        stage = request.arg("stage")
        if stage is not None and stage not in BUNDLE_STAGES:
            raise invalid(f"stage must be one of {', '.join(STAGE_ORDER)}.")
        candidates = list(reversed(record["versions"]))  # newest first
        if number and number != "0":
            wanted = _version_number(number)
            candidates = [v for v in candidates if v["versionNumber"] == wanted]
        if version_name:
            candidates = [v for v in candidates if v.get("versionName") == version_name]
        if stage or not ((number and number != "0") or version_name):
            wanted_stage = stage or CURRENT
            candidates = [v for v in candidates if wanted_stage in _stages(record, v)]
        if not candidates:
            raise not_found("certificate version")
        version = candidates[0]
        body = _bundle_json(record, version)
        body["certificateBundleType"] = bundle_type
        if bundle_type == WITH_PRIVATE_KEY:
            body["privateKeyPem"] = version["privateKeyPem"]
            if version.get("privateKeyPemPassphrase"):
                body["privateKeyPemPassphrase"] = version["privateKeyPemPassphrase"]
        return Reply(body=body)

    def _list_bundles(self, request: Request) -> Reply:
        record = self._find(request)
        items = []
        for version in _sorted_versions(record, request):
            item = _bundle_json(record, version)
            del item["certificatePem"], item["certChainPem"]
            if version.get("deleteAt") is not None:
                item["timeOfDeletion"] = _timestamp(version["deleteAt"])
            items.append(item)
        return Reply(body={"items": items})


# ---------------------------------------------------------------------- validation


@dataclass(frozen=True, slots=True)
class _Parsed:
    """What an imported version's PEMs say about it."""

    serial_number: str
    not_before: str
    not_after: str
    subject: dict[str, str]
    subject_alternative_names: list[dict[str, str]]
    key_algorithm: str
    signature_algorithm: str


def _required_str(body: dict[str, Any], field: str, prefix: str = "") -> str:
    value = body.get(field)
    if value is None or value == "":
        raise invalid(f"{prefix}{field} is required.", code="MissingParameter")
    if not isinstance(value, str):
        raise invalid(f"{prefix}{field} must be a string.")
    return value


def _optional_str(body: dict[str, Any], field: str, prefix: str = "") -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{prefix}{field} must be a string.")
    return value


def _tags(body: dict[str, Any]) -> tuple[dict[str, str] | None, dict[str, Any] | None]:
    freeform = body.get("freeformTags")
    if freeform is not None and (
        not isinstance(freeform, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in freeform.items())
    ):
        raise invalid("freeformTags must map strings to strings.")
    defined = body.get("definedTags")
    if defined is not None and (
        not isinstance(defined, dict) or not all(isinstance(v, dict) for v in defined.values())
    ):
        raise invalid("definedTags must map namespaces to objects.")
    return freeform, defined


def _refuse_rules(body: dict[str, Any]) -> None:
    if body.get("certificateRules"):
        raise invalid(
            "certificateRules (renewal rules) apply to certificates issued by an internal CA; "
            "an imported certificate cannot have them."
        )


def _imported_config(config: object, field: str) -> dict[str, Any]:
    """The validated ``IMPORTED`` certificate config (assumptions 1 and 2)."""
    if not isinstance(config, dict):
        raise invalid(f"{field} is required.", code="MissingParameter")
    config_type = config.get("configType")
    if config_type in OTHER_CONFIG_TYPES:
        raise invalid(
            f"{field}.configType {config_type} is not emulated: the emulator only supports "
            "IMPORTED certificates."
        )
    if config_type != IMPORTED:
        raise invalid(
            f"{field}.configType must be IMPORTED, ISSUED_BY_INTERNAL_CA or "
            f"MANAGED_EXTERNALLY_ISSUED_BY_INTERNAL_CA (got {config_type!r})."
        )
    prefix = f"{field}."
    for key in ("certificatePem", "certChainPem", "privateKeyPem"):
        _required_str(config, key, prefix)
    for key in ("privateKeyPemPassphrase", "versionName", "stage"):
        _optional_str(config, key, prefix)
    return config


def _parse_material(config: dict[str, Any]) -> _Parsed:
    """Check the PEMs belong together; the fields OCI derives from them (assumption 2)."""
    leaves = _load_certificates(config["certificatePem"], "certificatePem")
    if len(leaves) != 1:
        raise invalid("certificateConfig.certificatePem must hold exactly one certificate.")
    leaf = leaves[0]
    chain = _load_certificates(config["certChainPem"], "certChainPem")
    try:
        leaf.verify_directly_issued_by(chain[0])
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise invalid(
            "certificateConfig.certChainPem does not start with the certificate that issued "
            "certificatePem."
        ) from exc
    key = _load_private_key(config)
    public_der = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, public_der
    ) != leaf.public_key().public_bytes(serialization.Encoding.DER, public_der):
        raise invalid(
            "certificateConfig.privateKeyPem does not match the public key of certificatePem."
        )
    signature = SIGNATURE_ALGORITHMS.get(leaf.signature_algorithm_oid)
    if signature is None:
        raise invalid(
            "The certificate's signature algorithm is not supported (SHA-256/384/512 with RSA "
            "or ECDSA only)."
        )
    return _Parsed(
        serial_number=_octets(leaf.serial_number),
        not_before=rfc3339(leaf.not_valid_before_utc),
        not_after=rfc3339(leaf.not_valid_after_utc),
        subject=_subject(leaf.subject),
        subject_alternative_names=_sans(leaf),
        key_algorithm=_key_algorithm(leaf.public_key()),
        signature_algorithm=signature,
    )


def _load_certificates(pem: str, field: str) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise invalid(
            f"certificateConfig.{field} is not a valid PEM-encoded X.509 certificate."
        ) from exc


def _load_private_key(config: dict[str, Any]) -> PrivateKeyTypes:
    passphrase = config.get("privateKeyPemPassphrase")
    try:
        return serialization.load_pem_private_key(
            config["privateKeyPem"].encode(), password=passphrase.encode() if passphrase else None
        )
    except TypeError as exc:  # encrypted without a passphrase, or a passphrase not needed
        raise invalid(
            "certificateConfig.privateKeyPemPassphrase must be given exactly when "
            "privateKeyPem is encrypted."
        ) from exc
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise invalid(
            "certificateConfig.privateKeyPem is not a valid PEM private key, or the passphrase "
            "is wrong."
        ) from exc


def _key_algorithm(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size in RSA_KEY_ALGORITHMS:
        return RSA_KEY_ALGORITHMS[public_key.key_size]
    if isinstance(public_key, ec.EllipticCurvePublicKey) and (
        public_key.curve.name in EC_KEY_ALGORITHMS
    ):
        return EC_KEY_ALGORITHMS[public_key.curve.name]
    raise invalid(
        "The certificate's key algorithm is not supported (RSA 2048, RSA 4096, ECDSA P-256 or "
        "ECDSA P-384 only)."
    )


def _octets(serial: int) -> str:
    raw = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return " ".join(f"{byte:02X}" for byte in raw)


def _subject(name: x509.Name) -> dict[str, str]:
    subject = {}
    for oid, field in SUBJECT_FIELDS:
        values = name.get_attributes_for_oid(oid)
        if values:
            value = values[0].value
            subject[field] = value if isinstance(value, str) else value.decode()
    return subject


def _sans(certificate: x509.Certificate) -> list[dict[str, str]]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names = [{"type": "DNS", "value": v} for v in extension.value.get_values_for_type(x509.DNSName)]
    names += [
        {"type": "IP", "value": str(v)} for v in extension.value.get_values_for_type(x509.IPAddress)
    ]
    return names


def _new_version(config: dict[str, Any], *, number: int, rotation: str) -> dict[str, Any]:
    """A version dict from a validated IMPORTED config."""
    parsed = _parse_material(config)
    version: dict[str, Any] = {
        "versionNumber": number,
        "timeCreated": _timestamp(now()),
        "rotation": rotation,
        "deleteAt": None,
        "serialNumber": parsed.serial_number,
        "validity": {
            "timeOfValidityNotBefore": parsed.not_before,
            "timeOfValidityNotAfter": parsed.not_after,
        },
        "subject": parsed.subject,
        "subjectAlternativeNames": parsed.subject_alternative_names,
        "keyAlgorithm": parsed.key_algorithm,
        "signatureAlgorithm": parsed.signature_algorithm,
    }
    if config.get("versionName"):
        version["versionName"] = config["versionName"]
    for key in MATERIAL_KEYS:
        if config.get(key):
            version[key] = config[key]
    return version


def _check_version_name(record: dict[str, Any], version_name: str | None) -> None:
    if version_name and any(v.get("versionName") == version_name for v in record["versions"]):
        raise OciError(
            409,
            "Conflict",
            f"A version named {version_name!r} already exists for this certificate.",
        )


def _apply_update(record: dict[str, Any], body: dict[str, Any]) -> None:
    """UpdateCertificate without ``currentVersionNumber``: validate everything, then apply.

    A ``certificateConfig`` imports a new version: at stage CURRENT (the default) it rotates
    CURRENT -> PREVIOUS -> DEPRECATED; at stage PENDING it deprecates an older PENDING version.
    """
    description = _optional_str(body, "description")
    freeform, defined = _tags(body)
    _refuse_rules(body)
    if body.get("certificateConfig") is not None:
        config = _imported_config(body["certificateConfig"], "certificateConfig")
        stage = config.get("stage") or CURRENT
        if stage not in (CURRENT, PENDING):
            raise invalid("certificateConfig.stage must be CURRENT or PENDING.")
        _check_version_name(record, config.get("versionName"))
        version = _new_version(config, number=record["nextVersionNumber"], rotation=PENDING)
        record["nextVersionNumber"] += 1
        if stage == PENDING:
            for older in record["versions"]:
                if older["rotation"] == PENDING:
                    older["rotation"] = DEPRECATED
        record["versions"].append(version)
        if stage == CURRENT:
            _rotate(record, version)
    if description is not None:
        record["description"] = description
    if freeform is not None:
        record["freeformTags"] = freeform
    if defined is not None:
        record["definedTags"] = defined


def _check_if_match(request: Request, record: dict[str, Any]) -> None:
    expected = request.header("if-match")
    if expected and expected not in ("*", record["etag"]):
        raise OciError(
            409,
            "Conflict",
            "The if-match etag does not match the certificate's current etag; read it again.",
        )


def _incorrect_state(message: str) -> OciError:
    return OciError(409, "IncorrectState", message)


def _refuse_busy(record: dict[str, Any]) -> None:
    """409 IncorrectState while a change is still being applied (assumption 3)."""
    if record["lifecycleState"] in BUSY_STATES:
        raise _incorrect_state(
            f"The certificate is {record['lifecycleState']}: a change is still being applied;"
            " retry when it is ACTIVE."
        )


def _settle(record: dict[str, Any], moment: float) -> None:
    """Finish the record's transitional state when its time has come."""
    until = record.get("busyUntil")
    if until is None or until > moment:
        return
    change = record.get("pendingChange")
    if change is None:  # CREATING: the content was there from the start
        record["lifecycleState"] = ACTIVE
        record.pop("busyUntil", None)
        return
    _commit(record, change, until)


def _commit(record: dict[str, Any], after: dict[str, Any], moment: float) -> None:
    """Replace ``record`` by ``after``; note when a new version became CURRENT."""
    history = record.get("served") or [[0.0, _current(record)["versionNumber"]]]
    record.clear()
    record.update(after)
    number = _current(record)["versionNumber"]
    if history[-1][1] != number:
        history = [*history[-7:], [moment, number]]  # what a listener may still be serving
    record["served"] = history


def _set_deletion(record: dict[str, Any], number: int, when: float | None) -> None:
    version = next(v for v in record["versions"] if v["versionNumber"] == number)
    version["deleteAt"] = when


def _deletion_time(request: Request) -> float:
    """``timeOfDeletion`` from the body (default: in 30 days), as epoch seconds."""
    body = request.json_object() if request.body else {}
    moment = datetime.fromtimestamp(now(), UTC)
    value = body.get("timeOfDeletion")
    if value is None:
        return (moment + DEFAULT_DELETION_DELAY).timestamp()
    if not isinstance(value, str):
        raise invalid("timeOfDeletion must be an RFC 3339 timestamp.")
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid("timeOfDeletion must be an RFC 3339 timestamp.") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if when < moment + MIN_DELETION_DELAY - DELETION_SLACK:
        raise invalid("timeOfDeletion must be at least one day in the future.")
    return when.timestamp()


def _version_number(value: object) -> int:
    try:
        number = int(str(value))
    except ValueError as exc:
        raise invalid("A certificate version number must be an integer.") from exc
    if number < 1:
        raise invalid("A certificate version number must be positive.")
    return number


# ---------------------------------------------------------------------- versions and stages


def _version(record: dict[str, Any], raw_number: str) -> dict[str, Any]:
    number = _version_number(raw_number)
    versions: list[dict[str, Any]] = record["versions"]
    for version in versions:
        if version["versionNumber"] == number:
            return version
    raise not_found("certificate version")


def _current(record: dict[str, Any]) -> dict[str, Any]:
    return next(v for v in record["versions"] if v["rotation"] == CURRENT)


def _stages(record: dict[str, Any], version: dict[str, Any]) -> list[str]:
    """The version's stages in the SDK enum's order; LATEST is the highest version number."""
    stages = {version["rotation"]}
    if version["versionNumber"] == max(v["versionNumber"] for v in record["versions"]):
        stages.add(LATEST)
    return [s for s in STAGE_ORDER if s in stages]


def _rotate(record: dict[str, Any], target: dict[str, Any]) -> None:
    """Make ``target`` CURRENT: CURRENT -> PREVIOUS, PREVIOUS -> DEPRECATED."""
    for version in record["versions"]:
        if version is not target and version["rotation"] == PREVIOUS:
            version["rotation"] = DEPRECATED
    for version in record["versions"]:
        if version is not target and version["rotation"] == CURRENT:
            version["rotation"] = PREVIOUS
    target["rotation"] = CURRENT


def _promote(record: dict[str, Any], number: int) -> None:
    """``currentVersionNumber``: any version but a DEPRECATED one may become CURRENT."""
    target = next((v for v in record["versions"] if v["versionNumber"] == number), None)
    if target is None:
        raise invalid(f"currentVersionNumber: certificate version {number} does not exist.")
    if target["rotation"] == DEPRECATED:
        raise _incorrect_state(
            f"Certificate version {number} is DEPRECATED and cannot be made current."
        )
    _rotate(record, target)


def _sorted_versions(record: dict[str, Any], request: Request) -> list[dict[str, Any]]:
    sort_by = request.arg("sortBy") or "VERSION_NUMBER"
    if sort_by != "VERSION_NUMBER":
        raise invalid("sortBy must be VERSION_NUMBER.")
    order = _sort_order(request.arg("sortOrder"), default="ASC")
    return sorted(record["versions"], key=lambda v: v["versionNumber"], reverse=order == "DESC")


def _sort_order(value: str | None, *, default: str) -> str:
    order = value or default
    if order not in ("ASC", "DESC"):
        raise invalid("sortOrder must be ASC or DESC.")
    return order


def _sorted_certificates(
    records: list[dict[str, Any]], sort_by: str, sort_order: str | None
) -> list[dict[str, Any]]:
    if sort_by == "NAME":
        order = _sort_order(sort_order, default="ASC")
        return sorted(records, key=lambda r: (r["name"], r["seq"]), reverse=order == "DESC")
    if sort_by == "TIMECREATED":
        order = _sort_order(sort_order, default="DESC")
        return sorted(records, key=lambda r: r["seq"], reverse=order == "DESC")
    if sort_by == "EXPIRATIONDATE":
        order = _sort_order(sort_order, default="DESC")
        return sorted(
            records,
            key=lambda r: (_current(r)["validity"]["timeOfValidityNotAfter"], r["seq"]),
            reverse=order == "DESC",
        )
    raise invalid("sortBy must be NAME, EXPIRATIONDATE or TIMECREATED.")


def _paginate(items: list[Any], request: Request) -> tuple[list[Any], dict[str, str]]:
    """One page of ``items`` for ``limit``/``page``, and the ``opc-next-page`` header."""
    try:
        start = int(request.arg("page") or "0")
        limit = int(request.arg("limit") or str(max(len(items), 1)))
    except ValueError as exc:
        raise invalid("limit must be an integer and page a token from opc-next-page.") from exc
    if start < 0 or limit < 1:
        raise invalid("limit must be positive and page a token from opc-next-page.")
    end = start + limit
    headers = {"opc-next-page": str(end)} if end < len(items) else {}
    return items[start:end], headers


# ---------------------------------------------------------------------- wire format


def _timestamp(epoch: float) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def _certificate_reply(record: dict[str, Any]) -> Reply:
    return Reply(body=_certificate_json(record), headers={"etag": record["etag"]})


def _certificate_json(record: dict[str, Any], *, summary: bool = False) -> dict[str, Any]:
    """``Certificate`` (or ``CertificateSummary``) as OCI sends it."""
    current = _current(record)
    body: dict[str, Any] = {
        "id": record["id"],
        "name": record["name"],
        "compartmentId": record["compartmentId"],
        "timeCreated": record["timeCreated"],
        "lifecycleState": record["lifecycleState"],
        "configType": record["configType"],
        "subject": current["subject"],
        "keyAlgorithm": current["keyAlgorithm"],
        "signatureAlgorithm": current["signatureAlgorithm"],
        "freeformTags": record["freeformTags"],
        "definedTags": record["definedTags"],
    }
    body["currentVersionSummary" if summary else "currentVersion"] = _version_json(record, current)
    if record.get("description") is not None:
        body["description"] = record["description"]
    if record.get("deleteAt") is not None:
        body["timeOfDeletion"] = _timestamp(record["deleteAt"])
    return body


def _version_json(record: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """``CertificateVersion`` / ``CertificateVersionSummary`` (the same fields)."""
    body: dict[str, Any] = {
        "certificateId": record["id"],
        "versionNumber": version["versionNumber"],
        "serialNumber": version["serialNumber"],
        "timeCreated": version["timeCreated"],
        "validity": version["validity"],
        "subjectAlternativeNames": version["subjectAlternativeNames"],
        "stages": _stages(record, version),
    }
    if version.get("versionName"):
        body["versionName"] = version["versionName"]
    if version.get("deleteAt") is not None:
        body["timeOfDeletion"] = _timestamp(version["deleteAt"])
    return body


def _bundle_json(record: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
    """The public fields of a ``CertificateBundle`` (callers add the type and the key)."""
    body: dict[str, Any] = {
        "certificateId": record["id"],
        "certificateName": record["name"],
        "versionNumber": version["versionNumber"],
        "serialNumber": version["serialNumber"],
        "certificatePem": version["certificatePem"],
        "certChainPem": version["certChainPem"],
        "timeCreated": version["timeCreated"],
        "validity": version["validity"],
        "stages": _stages(record, version),
    }
    if version.get("versionName"):
        body["versionName"] = version["versionName"]
    return body


def _join_pems(*pems: str) -> str:
    return "".join(pem.strip() + "\n" for pem in pems)


def _unencrypted_key(version: dict[str, Any]) -> str:
    passphrase = version.get("privateKeyPemPassphrase")
    if not passphrase:
        return _join_pems(version["privateKeyPem"])
    key = serialization.load_pem_private_key(
        version["privateKeyPem"].encode(), password=passphrase.encode()
    )
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


__all__ = ["Certificates"]
