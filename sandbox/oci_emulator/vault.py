"""OCI Vault secrets, as the real ``oci`` SDK speaks them.

Management is ``VaultsClient`` (base ``/20180608``), retrieval ``SecretsClient`` (``/20190301``).

Fixture (``vaults`` key)::

    "vaults": [{"id": "ocid1.vault.oc1..v", "compartment": "<ocid or fixture compartment name>",
                "display_name": "renewer",
                "keys": [{"id": "ocid1.key.oc1..k", "algorithm": "AES"}]}]

``compartment`` defaults to the tenancy; a key's ``algorithm`` defaults to ``AES`` (symmetric).
Vaults and keys are read-only here: there is no KMS API, only what secrets need to reference.

Behaviour (documented OCI facts, see ``shared/reference/oci-wire-facts.md`` section 3 and the SDK
models' docstrings):

* ``CreateSecret`` needs ``compartmentId``, ``vaultId``, ``keyId`` (a symmetric key *of that
  vault*) and ``secretName`` (letters, digits, ``-``, ``_``, ``.``; unique within the vault: 409
  Conflict). Version 1 is ``CURRENT`` and ``LATEST``; on create only ``stage: CURRENT`` is
  applicable.
* Lifecycle (the timing profile's ``vaultUpdateSeconds``, :mod:`.timing`): with the default
  ``instant`` profile a secret is ``ACTIVE`` at once and every change is applied at once. With a
  duration, ``CreateSecret`` answers ``CREATING``; ``UpdateSecret`` and the version deletion
  actions put the secret in ``UPDATING``; ``ScheduleSecretDeletion`` in ``SCHEDULING_DELETION``
  (then ``PENDING_DELETION``) and ``CancelSecretDeletion`` in ``CANCELLING_DELETION`` (then
  ``ACTIVE``), each for that long (SDK: ``Secret.lifecycle_state`` has these states, and
  ``VaultsClientCompositeOperations`` offers ``create_secret_and_wait_for_state`` and
  ``update_secret_and_wait_for_state``; ``UpdateSecretDetails``: "the secret must be in an
  ACTIVE lifecycle state"). Any change in a transitional state is ``409 IncorrectState`` (OCI's
  API errors table: "The requested state for the resource conflicts with its current state.
  Retry: yes, with backoff").
* ``opc-retry-token`` on ``CreateSecret``: the same token within 24 h returns the first answer
  again without creating anything.
* ``UpdateSecret``: new ``secretContent`` makes a new version (numbers are never reused),
  ``CURRENT`` by default or ``PENDING``; the newest version is always ``LATEST``; the version that
  was ``CURRENT`` becomes ``PREVIOUS``; a version that is none of CURRENT, PENDING, PREVIOUS is
  ``DEPRECATED``. ``currentVersionNumber`` promotes an existing version to CURRENT; it cannot be
  combined with ``secretContent`` (400). Only an ACTIVE secret can be updated. ``if-match`` is
  checked against the secret's ``etag``: 412 NoEtagMatch.
* ``ScheduleSecretVersionDeletion``: only a ``DEPRECATED`` version can be scheduled (so never the
  CURRENT one); ``timeOfDeletion`` 1 to 30 days ahead, default 30 days. A version pending deletion
  no longer counts as "in active use"; at its ``timeOfDeletion`` it is gone.
  ``CancelSecretVersionDeletion`` undoes it. ``ScheduleSecretDeletion`` /
  ``CancelSecretDeletion`` do the same for the whole secret (``PENDING_DELETION``).
* Limits: a secret bundle is at most 25 KB; at most 30 versions in active use and 30 pending
  deletion per secret.
* ``GetSecretBundle`` / ``GetSecretBundleByName`` select by exactly one of ``versionNumber``,
  ``secretVersionName``, ``stage``; with none, the CURRENT version. Content is
  ``{"contentType": "BASE64", "content": ...}``.
* Missing secret or vault in the URI: 404 NotAuthorizedOrNotFound. Every handler calls
  :meth:`Emulator.authorize` with the secret's compartment (the request's for ``CreateSecret``
  and ``ListSecrets``) and, when known, ``secret_name``, ``secret_id``, ``vault_id`` and
  ``key_id`` (``target.secret.name`` ... in policy conditions; ``ListSecrets`` passes none).

Assumptions (not documented OCI facts; chosen to be strict and plausible):

* A change is visible (new versions, stages, ``currentVersionNumber``, deletion times) only once
  the secret is ``ACTIVE`` again: reads during ``UPDATING`` show the state before it (the
  stricter reading; the etag is the new one at once). A secret ``CREATING`` already holds its
  version 1, and bundles stay readable while a change is applied (``CANCELLING_DELETION``
  excepted: the secret is still pending deletion). That the version deletion actions make the
  secret ``UPDATING`` at all is assumed (the strict reading: nothing says they do not).
* Error codes: oversized content is ``400 InvalidParameter`` (a malformed parameter, not an
  Oracle-defined tenancy limit); too many versions (active or pending deletion) is
  ``400 LimitExceeded`` (the FAQ lists it among the service limits). An unknown ``vaultId`` or
  ``keyId``, or a key of another vault, in the create body is ``400
  RelatedResourceNotAuthorizedOrNotFound`` (the general API-errors table's code for a resource
  named in the body). A missing required field is ``400 MissingParameter``. State conflicts
  (scheduling a non-DEPRECATED version, updating a secret pending deletion, scheduling twice,
  cancelling what is not scheduled, a duplicate version name) are ``409 Conflict`` (not
  ``IncorrectState``, which the SDK would retry).
* The 25 KB limit is 25600 bytes of *decoded* content. Empty content is refused.
* Same ``opc-retry-token`` with a different body: ``409 Conflict`` (OCI documents no code; AWS-style
  idempotency). A token whose secret has since been deleted: ``409 InvalidatedRetryToken``. Only
  successful creates are remembered; tokens are scoped per operation.
* Stage moves: a new CURRENT version leaves an existing PENDING version PENDING; a new PENDING
  version turns an older PENDING one DEPRECATED (at most one PENDING). Promoting makes the old
  CURRENT ``PREVIOUS`` and the old PREVIOUS ``DEPRECATED``. A version pending deletion cannot be
  promoted (409).
* ``stage=DEPRECATED`` selects the newest deprecated version not pending deletion. More than one
  selector: 400 InvalidParameter. Reading the bundle of a version pending deletion, or of a secret
  pending deletion, is 404 (the docs say it "immediately becomes inaccessible").
* ``timeOfDeletion`` bounds get 60 s of grace for clock skew and transit time.
* At its ``timeOfDeletion`` a secret disappears entirely (404, name free again) rather than
  lingering as ``DELETED``.
* Lists: default page size 100, ``limit`` above 1000 is capped, ``limit < 1`` is 400; page tokens
  are opaque. ``ListSecrets`` sorts ``TIMECREATED`` descending by default (``NAME`` ascending);
  both version lists sort by version number, descending by default.
* ``SecretBundle.metadata`` is the secret's current metadata. Version operations' ``if-match`` is
  checked against the version's own ``etag`` (returned by ``GetSecretVersion``).
* Not emulated (400 InvalidParameter rather than silently ignored): ``secretRules``,
  ``rotationConfig``, ``replicationConfig``, ``secretGenerationContext``,
  ``enableAutoGeneration: true``, and content types other than ``BASE64``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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

VAULTS_BASE = "/20180608"
SECRETS_BASE = "/20190301"

MAX_CONTENT_BYTES = 25 * 1024  # "The maximum allowable size for a secret bundle is 25 KB"
MAX_ACTIVE_VERSIONS = 30  # "30 secret versions in active use ..."
MAX_PENDING_DELETION_VERSIONS = 30  # "... and 30 versions pending deletion for each secret"
RETRY_TOKEN_TTL = 24 * 3600.0  # "Retry tokens expire after 24 hours"
DAY = 24 * 3600.0
MIN_DELETION_DELAY = 1 * DAY
MAX_DELETION_DELAY = 30 * DAY
DEFAULT_DELETION_DELAY = 30 * DAY
DELETION_GRACE = 60.0  # assumption: slack for skew and transit time
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

CURRENT = "CURRENT"
PENDING = "PENDING"
LATEST = "LATEST"
PREVIOUS = "PREVIOUS"
DEPRECATED = "DEPRECATED"
STAGES = (CURRENT, PENDING, LATEST, PREVIOUS, DEPRECATED)
ACTIVE, PENDING_DELETION = "ACTIVE", "PENDING_DELETION"
CREATING, UPDATING = "CREATING", "UPDATING"
SCHEDULING_DELETION, CANCELLING_DELETION = "SCHEDULING_DELETION", "CANCELLING_DELETION"
BUSY_STATES = frozenset({CREATING, UPDATING, SCHEDULING_DELETION, CANCELLING_DELETION})
READABLE_STATES = frozenset({ACTIVE, CREATING, UPDATING, SCHEDULING_DELETION})
UPDATE_SECONDS = "vaultUpdateSeconds"  # the timing profile's kind
CHANGE_KEYS = ("busyUntil", "pendingChange")  # lifecycle bookkeeping, never answered
LIFECYCLE_STATES = (
    "CREATING",
    "ACTIVE",
    "UPDATING",
    "DELETING",
    "DELETED",
    "SCHEDULING_DELETION",
    "PENDING_DELETION",
    "CANCELLING_DELETION",
    "FAILED",
)
SYMMETRIC_ALGORITHMS = ("AES",)
UNSUPPORTED_FIELDS = (
    "secretRules",
    "rotationConfig",
    "replicationConfig",
    "secretGenerationContext",
    "enableAutoGeneration",
)
_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


# --------------------------------------------------------------------------- errors


def _conflict(message: str) -> OciError:
    return OciError(409, "Conflict", message)


def _refuse_busy(secret: dict[str, Any]) -> None:
    """409 IncorrectState while a change is still being applied (module docstring)."""
    if secret["lifecycleState"] in BUSY_STATES:
        raise OciError(
            409,
            "IncorrectState",
            f"The secret is {secret['lifecycleState']}: a change is still being applied; retry"
            " when it is ACTIVE.",
        )


def _settle(secret: dict[str, Any], moment: float) -> None:
    """Finish the secret's transitional state when its time has come."""
    until = secret.get("busyUntil")
    if until is None or until > moment:
        return
    change = secret.get("pendingChange")
    if change is None:  # CREATING: version 1 was there from the start
        secret["lifecycleState"] = ACTIVE
        secret.pop("busyUntil", None)
        return
    secret.clear()
    secret.update(change)


def _set_version_deletion(secret: dict[str, Any], number: int, when: float | None) -> None:
    version = next(v for v in secret["versions"] if v["number"] == number)
    version["timeOfDeletion"] = when
    version["etag"] = new_etag()


def _missing(field: str) -> OciError:
    return OciError(400, "MissingParameter", f"Missing required parameter: {field}.")


def _related_not_found(field: str) -> OciError:
    return OciError(
        400,
        "RelatedResourceNotAuthorizedOrNotFound",
        f"Authorization failed or the resource named by {field} was not found.",
    )


def _limit_exceeded(message: str) -> OciError:
    return invalid(message, "LimitExceeded")


# --------------------------------------------------------------------------- small helpers


def _iso(timestamp: float | None) -> str | None:
    return None if timestamp is None else rfc3339(datetime.fromtimestamp(timestamp, UTC))


def _parse_time(value: Any, field: str) -> float:  # noqa: ANN401 - raw JSON
    if not isinstance(value, str):
        raise invalid(f"{field} must be an RFC 3339 timestamp.")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(f"{field} must be an RFC 3339 timestamp, got {value!r}.") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _optional_str(body: dict[str, Any], field: str) -> str | None:
    value = body.get(field)
    if value is not None and not isinstance(value, str):
        raise invalid(f"{field} must be a string.")
    return value


def _required_str(body: dict[str, Any], field: str) -> str:
    value = _optional_str(body, field)
    if not value:
        raise _missing(field)
    return value


def _optional_object(body: dict[str, Any], field: str) -> dict[str, Any] | None:
    value = body.get(field)
    if value is not None and not isinstance(value, dict):
        raise invalid(f"{field} must be a JSON object.")
    return value


def _tags(body: dict[str, Any]) -> dict[str, Any]:
    """The tag fields present in ``body``, validated (freeform: str -> str; defined: ns -> obj)."""
    found: dict[str, Any] = {}
    freeform = _optional_object(body, "freeformTags")
    if freeform is not None:
        if not all(isinstance(v, str) for v in freeform.values()):
            raise invalid("freeformTags values must be strings.")
        found["freeformTags"] = freeform
    defined = _optional_object(body, "definedTags")
    if defined is not None:
        if not all(isinstance(v, dict) for v in defined.values()):
            raise invalid("definedTags must map each namespace to an object.")
        found["definedTags"] = defined
    return found


def _refuse_unsupported(body: dict[str, Any]) -> None:
    for field in UNSUPPORTED_FIELDS:
        if body.get(field):
            raise invalid(f"{field} is not supported by this emulator.")


def _decode_content(details: dict[str, Any]) -> str:
    """Validate ``secretContent`` and return its canonical base64 form."""
    content_type = details.get("contentType")
    if content_type != "BASE64":
        raise invalid(f"secretContent.contentType must be BASE64, got {content_type!r}.")
    content = details.get("content")
    if content is None:
        raise _missing("secretContent.content")
    if not isinstance(content, str):
        raise invalid("secretContent.content must be a base64 string.")
    try:
        raw = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise invalid("secretContent.content is not valid base64.") from exc
    if not raw:
        raise invalid("secretContent.content must not be empty.")
    if len(raw) > MAX_CONTENT_BYTES:
        raise invalid(
            f"secretContent.content is {len(raw)} bytes; a secret bundle may be at most"
            f" {MAX_CONTENT_BYTES} bytes (25 KB)."
        )
    return base64.b64encode(raw).decode("ascii")


def _int_arg(request: Request, name: str) -> int | None:
    value = request.arg(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError as exc:
        raise invalid(f"{name} must be an integer, got {value!r}.") from exc


def _if_match(request: Request, etag: str) -> None:
    expected = request.header("if-match")
    if expected is not None and expected != etag:
        raise OciError(412, "NoEtagMatch", "The resource's etag does not match if-match.")


def _page(request: Request, items: list[Any]) -> tuple[list[Any], str | None]:
    """One page of ``items`` per ``limit``/``page``, and the ``opc-next-page`` token if any."""
    limit = _int_arg(request, "limit")
    if limit is None:
        limit = DEFAULT_PAGE_SIZE
    if limit < 1:
        raise invalid("limit must be at least 1.")
    limit = min(limit, MAX_PAGE_SIZE)
    start = 0
    token = request.arg("page")
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("o:"))
        except (ValueError, binascii.Error) as exc:
            raise invalid(f"page is not a token this service returned: {token!r}.") from exc
        if start < 0 or start > len(items):
            raise invalid(f"page is not a token this service returned: {token!r}.")
    end = start + limit
    following = base64.urlsafe_b64encode(f"o:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], following


def _list_reply(request: Request, items: list[dict[str, Any]]) -> Reply:
    page, following = _page(request, items)
    return Reply(body=page, headers={"opc-next-page": following} if following else {})


def _sort_order(request: Request, *, default_descending: bool) -> bool:
    """True for descending."""
    order = request.arg("sortOrder")
    if order is None:
        return default_descending
    if order not in ("ASC", "DESC"):
        raise invalid(f"sortOrder must be ASC or DESC, got {order!r}.")
    return order == "DESC"


def _versions_sorted(request: Request, versions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    sort_by = request.arg("sortBy")
    if sort_by not in (None, "VERSION_NUMBER"):
        raise invalid(f"sortBy must be VERSION_NUMBER, got {sort_by!r}.")
    descending = _sort_order(request, default_descending=True)
    return sorted(versions, key=lambda v: v["number"], reverse=descending)


def _check_version_name(secret: dict[str, Any], name: str | None) -> None:
    if name is None:
        return
    if not _NAME.match(name):
        raise invalid("secretContent.name may contain only letters, digits, '-', '_' and '.'.")
    if any(v.get("name") == name for v in secret["versions"]):
        raise _conflict(f"A version of this secret is already named {name!r}.")


def _shift_stages(versions: list[dict[str, Any]], *, incoming: str) -> None:
    """Make room for a new ``incoming`` (CURRENT or PENDING) version or promotion.

    CURRENT: the old CURRENT becomes PREVIOUS and the old PREVIOUS DEPRECATED. PENDING: an older
    PENDING becomes DEPRECATED.
    """
    for version in versions:
        if incoming == CURRENT and version["stage"] == PREVIOUS:
            version["stage"] = DEPRECATED
        elif incoming == CURRENT and version["stage"] == CURRENT:
            version["stage"] = PREVIOUS
        elif incoming == PENDING and version["stage"] == PENDING:
            version["stage"] = DEPRECATED


# --------------------------------------------------------------------------- the service


class Vault:
    """The Vault and Secrets services of the emulator (see the module docstring).

    State (``state.section("vault")``, JSON): ``vaults`` by id (``keys`` by id), ``secrets`` by id
    (each with its ``versions`` list), ``retry_tokens`` by ``"<operation>:<token>"``, ``seq``.
    Times are epoch seconds from :func:`now`.
    """

    name = "vault"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    # ------------------------------------------------------------------ Service protocol

    def routes(self) -> list[Route]:
        """Every Vaults and Secrets operation emulated."""
        v, s = VAULTS_BASE, SECRETS_BASE
        secret = f"{v}/secrets/{{secretId}}"
        version = f"{secret}/version/{{secretVersionNumber}}"
        return [
            # Key Management (KmsVaultClient; KmsManagementClient at the vault's management
            # endpoint, which is this emulator too): read-only, what the renewer checks.
            Route("GET", f"{v}/vaults/{{vaultId}}", "GetVault", self.get_vault),
            Route("GET", f"{v}/keys/{{keyId}}", "GetKey", self.get_key),
            Route("POST", f"{v}/secrets", "CreateSecret", self.create_secret),
            Route("GET", f"{v}/secrets", "ListSecrets", self.list_secrets),
            Route("GET", secret, "GetSecret", self.get_secret),
            Route("PUT", secret, "UpdateSecret", self.update_secret),
            Route(
                "POST",
                f"{secret}/actions/scheduleDeletion",
                "ScheduleSecretDeletion",
                self.schedule_secret_deletion,
            ),
            Route(
                "POST",
                f"{secret}/actions/cancelDeletion",
                "CancelSecretDeletion",
                self.cancel_secret_deletion,
            ),
            Route("GET", f"{secret}/versions", "ListSecretVersions", self.list_secret_versions),
            Route("GET", version, "GetSecretVersion", self.get_secret_version),
            Route(
                "POST",
                f"{version}/actions/scheduleDeletion",
                "ScheduleSecretVersionDeletion",
                self.schedule_secret_version_deletion,
            ),
            Route(
                "POST",
                f"{version}/actions/cancelDeletion",
                "CancelSecretVersionDeletion",
                self.cancel_secret_version_deletion,
            ),
            Route(
                "POST",
                f"{s}/secretbundles/actions/getByName",
                "GetSecretBundleByName",
                self.get_secret_bundle_by_name,
                mutating=False,
            ),
            Route(
                "GET", f"{s}/secretbundles/{{secretId}}", "GetSecretBundle", self.get_secret_bundle
            ),
            Route(
                "GET",
                f"{s}/secretbundles/{{secretId}}/versions",
                "ListSecretBundleVersions",
                self.list_secret_bundle_versions,
            ),
        ]

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create the fixture's vaults and their keys; ValueError names a bad entry."""
        state = self._state()
        compartments = {str(c["name"]): str(c["id"]) for c in fixture.get("compartments", [])}
        for entry in fixture.get("vaults", []):
            vault_id = entry.get("id")
            if not vault_id:
                raise ValueError(f"vault {entry!r}: 'id' is required")
            compartment = entry.get("compartment") or fixture.get("tenancy")
            if not compartment:
                raise ValueError(f"vault {vault_id}: 'compartment' (or a fixture tenancy) needed")
            keys: dict[str, dict[str, str]] = {}
            for key in entry.get("keys", []):
                if not key.get("id"):
                    raise ValueError(f"vault {vault_id}: every key needs an 'id'")
                keys[str(key["id"])] = {
                    "id": str(key["id"]),
                    "algorithm": str(key.get("algorithm", "AES")),
                    "lifecycleState": str(key.get("state", "ENABLED")),
                }
            state["vaults"][str(vault_id)] = {
                "id": str(vault_id),
                "compartmentId": compartments.get(str(compartment), str(compartment)),
                "displayName": str(entry.get("display_name", vault_id)),
                "lifecycleState": str(entry.get("state", ACTIVE)),
                "keys": keys,
            }

    # ------------------------------------------------------------------ state access

    def _state(self) -> dict[str, Any]:
        state = self.emulator.state.section(self.name)
        state.setdefault("vaults", {})
        state.setdefault("secrets", {})
        state.setdefault("retry_tokens", {})
        state.setdefault("seq", 0)
        return state

    def _expire(self) -> dict[str, Any]:
        """Apply every deletion and token expiry that is due; return the state."""
        state = self._state()
        moment = now()
        for secret_id, secret in list(state["secrets"].items()):
            _settle(secret, moment)
            due = secret.get("timeOfDeletion")
            if secret["lifecycleState"] == PENDING_DELETION and due is not None and due <= moment:
                del state["secrets"][secret_id]
                continue
            secret["versions"] = [
                v
                for v in secret["versions"]
                if v.get("timeOfDeletion") is None or v["timeOfDeletion"] > moment
            ]
        for key, record in list(state["retry_tokens"].items()):
            if record["time"] + RETRY_TOKEN_TTL <= moment:
                del state["retry_tokens"][key]
        return state

    def _secret(self, request: Request, secret_id: str) -> dict[str, Any]:
        """The secret (404 when missing or not allowed), after authorizing the request on it."""
        secret: dict[str, Any] | None = self._expire()["secrets"].get(secret_id)
        if secret is None:
            raise not_found("secret")
        self.emulator.authorize(
            request,
            compartment_id=secret["compartmentId"],
            secret_name=secret["secretName"],
            secret_id=secret["id"],
            vault_id=secret["vaultId"],
            key_id=secret["keyId"],
        )
        return secret

    @staticmethod
    def _version(secret: dict[str, Any], raw_number: str) -> dict[str, Any]:
        try:
            number = int(raw_number)
        except ValueError as exc:
            raise OciError(
                404, "InvalidParameter", f"secretVersionNumber must be an integer: {raw_number!r}."
            ) from exc
        versions: list[dict[str, Any]] = secret["versions"]
        for version in versions:
            if version["number"] == number:
                return version
        raise not_found("secret version")

    @staticmethod
    def _touch(secret: dict[str, Any]) -> None:
        secret["etag"] = new_etag()

    def _update_seconds(self, secret: dict[str, Any]) -> float:
        """Wall seconds the next change of ``secret`` keeps it in a transitional state."""
        profile = timing.profile(self.emulator.state)
        return profile.wall_seconds(UPDATE_SECONDS, f"{secret['id']}:{secret['etag']}")

    def _change(
        self,
        secret: dict[str, Any],
        apply: Callable[[dict[str, Any]], None],
        *,
        busy: str = UPDATING,
        settled: str = ACTIVE,
    ) -> None:
        """Apply ``apply`` to a copy of ``secret`` now, and commit that copy when due.

        Validation errors surface at once. The copy replaces the secret now (instant profile) or
        after ``vaultUpdateSeconds``; meanwhile the secret is ``busy`` (module docstring).
        """
        after = copy.deepcopy({k: v for k, v in secret.items() if k not in CHANGE_KEYS})
        apply(after)
        after["lifecycleState"] = settled
        self._touch(after)
        seconds = self._update_seconds(secret)
        if seconds <= 0:
            secret.clear()
            secret.update(after)
            return
        secret["pendingChange"] = after
        secret["busyUntil"] = now() + seconds
        secret["lifecycleState"] = busy
        secret["etag"] = after["etag"]

    # ------------------------------------------------------------------ views

    @staticmethod
    def _stages(secret: dict[str, Any], version: dict[str, Any]) -> list[str]:
        newest = max(v["number"] for v in secret["versions"])
        return [version["stage"], LATEST] if version["number"] == newest else [version["stage"]]

    def _secret_view(self, secret: dict[str, Any], *, summary: bool = False) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": secret["id"],
            "compartmentId": secret["compartmentId"],
            "vaultId": secret["vaultId"],
            "keyId": secret["keyId"],
            "secretName": secret["secretName"],
            "description": secret.get("description"),
            "freeformTags": secret.get("freeformTags", {}),
            "definedTags": secret.get("definedTags", {}),
            "lifecycleState": secret["lifecycleState"],
            "timeCreated": _iso(secret["timeCreated"]),
            "timeOfDeletion": _iso(secret.get("timeOfDeletion")),
            "isReplica": False,
            "isAutoGenerationEnabled": False,
        }
        if summary:
            view["systemTags"] = {}
        else:
            view["currentVersionNumber"] = secret["currentVersionNumber"]
            view["metadata"] = secret.get("metadata")
            view["secretRules"] = []
        return _drop_none(view)

    def _version_view(
        self, secret: dict[str, Any], version: dict[str, Any], *, summary: bool
    ) -> dict[str, Any]:
        view: dict[str, Any] = {
            "secretId": secret["id"],
            "versionNumber": version["number"],
            "name": version.get("name"),
            "contentType": "BASE64",
            "stages": self._stages(secret, version),
            "timeCreated": _iso(version["timeCreated"]),
            "timeOfDeletion": _iso(version.get("timeOfDeletion")),
            "isContentAutoGenerated": False,
        }
        if summary:
            view["systemTags"] = {}
        return _drop_none(view)

    def _bundle_summary(self, secret: dict[str, Any], version: dict[str, Any]) -> dict[str, Any]:
        return _drop_none(
            {
                "secretId": secret["id"],
                "versionNumber": version["number"],
                "versionName": version.get("name"),
                "stages": self._stages(secret, version),
                "timeCreated": _iso(version["timeCreated"]),
                "timeOfDeletion": _iso(version.get("timeOfDeletion")),
            }
        )

    def _secret_reply(self, secret: dict[str, Any], status: int = 200) -> Reply:
        return Reply(
            status=status, body=self._secret_view(secret), headers={"etag": secret["etag"]}
        )

    # ------------------------------------------------------------------ versions and stages

    def _add_version(
        self, secret: dict[str, Any], details: dict[str, Any], *, creating: bool
    ) -> None:
        """Append a version from ``secretContent`` and move the stages (module docstring)."""
        content = _decode_content(details)
        stage = details.get("stage") or CURRENT
        allowed = (CURRENT,) if creating else (CURRENT, PENDING)
        if stage not in allowed:
            raise invalid(
                f"secretContent.stage must be one of {', '.join(allowed)}, got {stage!r}."
            )
        name = _optional_str(details, "name")
        _check_version_name(secret, name)
        active = [v for v in secret["versions"] if v.get("timeOfDeletion") is None]
        if len(active) >= MAX_ACTIVE_VERSIONS:
            raise _limit_exceeded(
                f"The secret already has {MAX_ACTIVE_VERSIONS} versions in active use (the secret"
                " version limit); schedule deprecated versions for deletion first."
            )
        _shift_stages(secret["versions"], incoming=stage)
        number = secret["nextVersionNumber"]
        secret["nextVersionNumber"] = number + 1
        secret["versions"].append(
            {
                "number": number,
                "name": name,
                "content": content,
                "stage": stage,
                "timeCreated": now(),
                "timeOfDeletion": None,
                "etag": new_etag(),
            }
        )
        if stage == CURRENT:
            secret["currentVersionNumber"] = number

    def _promote(self, secret: dict[str, Any], number: Any) -> None:  # noqa: ANN401 - raw JSON
        """Make version ``number`` CURRENT; the old CURRENT becomes PREVIOUS."""
        if not isinstance(number, int) or isinstance(number, bool):
            raise invalid("currentVersionNumber must be an integer.")
        target = next((v for v in secret["versions"] if v["number"] == number), None)
        if target is None:
            raise invalid(f"currentVersionNumber {number} is not a version of this secret.")
        if target["stage"] == CURRENT:
            return
        if target.get("timeOfDeletion") is not None:
            raise _conflict(f"Version {number} is pending deletion; cancel the deletion first.")
        _shift_stages([v for v in secret["versions"] if v is not target], incoming=CURRENT)
        target["stage"] = CURRENT
        target["etag"] = new_etag()
        secret["currentVersionNumber"] = number

    def _deletion_time(self, request: Request) -> float:
        body = request.json_object() if request.body else {}
        moment = now()
        if body.get("timeOfDeletion") is None:
            return moment + DEFAULT_DELETION_DELAY
        when = _parse_time(body["timeOfDeletion"], "timeOfDeletion")
        delay = when - moment
        if not MIN_DELETION_DELAY - DELETION_GRACE <= delay <= MAX_DELETION_DELAY + DELETION_GRACE:
            raise invalid("timeOfDeletion must be between 1 and 30 days from now.")
        return when

    # ------------------------------------------------------------------ VaultsClient handlers

    # ------------------------------------------------------------------ Key Management (read)

    def get_vault(self, request: Request) -> Reply:
        """GET /vaults/{vaultId} (KmsVaultClient.get_vault): the vault and its endpoints.

        ``managementEndpoint``/``cryptoEndpoint`` point back at this emulator (the Host the
        client used), so a KmsManagementClient built from them reaches :meth:`get_key`.
        """
        vault = self._state()["vaults"].get(request.params["vaultId"])
        if vault is None:
            raise not_found("vault")
        self.emulator.authorize(
            request, compartment_id=vault["compartmentId"], vault_id=vault["id"]
        )
        endpoint = f"http://{request.header('host', 'localhost')}"
        body = {
            "id": vault["id"],
            "compartmentId": vault["compartmentId"],
            "displayName": vault["displayName"],
            "lifecycleState": vault.get("lifecycleState", ACTIVE),
            "vaultType": "DEFAULT",
            "managementEndpoint": endpoint,
            "cryptoEndpoint": endpoint,
            "timeCreated": rfc3339(),
            "freeformTags": {},
            "definedTags": {},
            "isPrimary": True,
        }
        return Reply(body=body, headers={"etag": vault.get("etag", "vault-etag")})

    def get_key(self, request: Request) -> Reply:
        """GET /keys/{keyId} (KmsManagementClient.get_key): shape, state and vault of a key."""
        key_id = request.params["keyId"]
        for vault in self._state()["vaults"].values():
            key = vault["keys"].get(key_id)
            if key is not None:
                break
        else:
            raise not_found("key")
        self.emulator.authorize(
            request, compartment_id=vault["compartmentId"], vault_id=vault["id"], key_id=key_id
        )
        algorithm = key["algorithm"]
        body = {
            "id": key_id,
            "compartmentId": vault["compartmentId"],
            "vaultId": vault["id"],
            "displayName": key_id.rsplit(".", 1)[-1],
            "lifecycleState": key.get("lifecycleState", "ENABLED"),
            "keyShape": {"algorithm": algorithm, "length": 32 if algorithm == "AES" else 256},
            "protectionMode": "HSM",
            "currentKeyVersion": f"{key_id}.v1",
            "timeCreated": rfc3339(),
            "freeformTags": {},
            "definedTags": {},
            "isPrimary": True,
        }
        return Reply(body=body, headers={"etag": "key-etag"})

    def create_secret(self, request: Request) -> Reply:
        """POST /secrets: a new secret with version 1 (CURRENT, LATEST); retry tokens honoured."""
        state = self._expire()
        body = request.json_object()
        compartment_id = _required_str(body, "compartmentId")
        secret_name = _required_str(body, "secretName")
        vault_id = _required_str(body, "vaultId")
        key_id = _required_str(body, "keyId")
        self.emulator.authorize(
            request,
            compartment_id=compartment_id,
            secret_name=secret_name,
            vault_id=vault_id,
            key_id=key_id,
        )
        token = request.header("opc-retry-token")
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        token_key = f"{request.operation}:{token}"
        if token and token_key in state["retry_tokens"]:
            return self._replay(state, state["retry_tokens"][token_key], fingerprint)

        if not _NAME.match(secret_name):
            raise invalid("secretName may contain only letters, digits, '-', '_' and '.'.")
        vault = state["vaults"].get(vault_id)
        if vault is None:
            raise _related_not_found("vaultId")
        key = vault["keys"].get(key_id)
        if key is None:
            raise _related_not_found("keyId")
        if key["algorithm"] not in SYMMETRIC_ALGORITHMS:
            raise invalid("keyId must name a symmetric (AES) key to encrypt secrets.")
        _refuse_unsupported(body)
        content = _optional_object(body, "secretContent")
        if content is None:
            raise _missing("secretContent")
        description = _optional_str(body, "description")
        metadata = _optional_object(body, "metadata")
        tags = _tags(body)
        if any(
            s["vaultId"] == vault_id and s["secretName"] == secret_name
            for s in state["secrets"].values()
        ):
            raise _conflict(f"A secret named {secret_name!r} already exists in this vault.")

        state["seq"] += 1
        secret: dict[str, Any] = {
            "id": new_ocid("vaultsecret"),
            "seq": state["seq"],
            "compartmentId": compartment_id,
            "vaultId": vault_id,
            "keyId": key_id,
            "secretName": secret_name,
            "description": description,
            "metadata": metadata,
            "freeformTags": tags.get("freeformTags", {}),
            "definedTags": tags.get("definedTags", {}),
            "lifecycleState": ACTIVE,
            "timeCreated": now(),
            "timeOfDeletion": None,
            "currentVersionNumber": 1,
            "nextVersionNumber": 1,
            "versions": [],
        }
        self._add_version(secret, content, creating=True)
        self._touch(secret)
        seconds = self._update_seconds(secret)
        if seconds > 0:
            secret["lifecycleState"] = CREATING
            secret["busyUntil"] = now() + seconds
        state["secrets"][secret["id"]] = secret
        reply = self._secret_reply(secret)
        if token:
            state["retry_tokens"][token_key] = {
                "time": now(),
                "fingerprint": fingerprint,
                "secretId": secret["id"],
                "status": reply.status,
                "body": reply.body,
                "headers": reply.headers,
            }
        return reply

    @staticmethod
    def _replay(state: dict[str, Any], record: dict[str, Any], fingerprint: str) -> Reply:
        if record["fingerprint"] != fingerprint:
            raise _conflict("The opc-retry-token was already used for a different request.")
        if record["secretId"] not in state["secrets"]:
            raise OciError(
                409,
                "InvalidatedRetryToken",
                "The opc-retry-token's secret no longer exists; use a new token.",
            )
        return Reply(status=record["status"], body=record["body"], headers=dict(record["headers"]))

    def get_secret(self, request: Request) -> Reply:
        """GET /secrets/{secretId}."""
        return self._secret_reply(self._secret(request, request.params["secretId"]))

    def list_secrets(self, request: Request) -> Reply:
        """GET /secrets?compartmentId=...: filters name, vaultId, lifecycleState; sorted, paged."""
        state = self._expire()
        compartment_id = request.arg("compartmentId")
        if not compartment_id:
            raise _missing("compartmentId")
        self.emulator.authorize(request, compartment_id=compartment_id)
        name = request.arg("name")
        vault_id = request.arg("vaultId")
        lifecycle = request.arg("lifecycleState")
        if lifecycle is not None and lifecycle.upper() not in LIFECYCLE_STATES:
            raise invalid(f"lifecycleState {lifecycle!r} is not a secret lifecycle state.")
        sort_by = request.arg("sortBy") or "TIMECREATED"
        if sort_by not in ("TIMECREATED", "NAME"):
            raise invalid(f"sortBy must be TIMECREATED or NAME, got {sort_by!r}.")
        descending = _sort_order(request, default_descending=sort_by == "TIMECREATED")
        found = [
            s
            for s in state["secrets"].values()
            if s["compartmentId"] == compartment_id
            and (name is None or s["secretName"] == name)
            and (vault_id is None or s["vaultId"] == vault_id)
            and (lifecycle is None or s["lifecycleState"] == lifecycle.upper())
        ]
        if sort_by == "NAME":
            found.sort(key=lambda s: (s["secretName"], s["seq"]), reverse=descending)
        else:
            found.sort(key=lambda s: (s["timeCreated"], s["seq"]), reverse=descending)
        return _list_reply(request, [self._secret_view(s, summary=True) for s in found])

    def update_secret(self, request: Request) -> Reply:
        """PUT /secrets/{secretId}: new content -> new version, or promote a version; fields."""
        secret = self._secret(request, request.params["secretId"])
        _refuse_busy(secret)
        _if_match(request, secret["etag"])
        body = request.json_object()
        if secret["lifecycleState"] != ACTIVE:
            raise _conflict(
                f"The secret is {secret['lifecycleState']}; only ACTIVE can be updated."
            )
        _refuse_unsupported(body)
        content = _optional_object(body, "secretContent")
        promote = body.get("currentVersionNumber")
        if content is not None and promote is not None:
            raise invalid(
                "currentVersionNumber and secretContent cannot be updated at the same time."
            )
        description = _optional_str(body, "description")
        metadata = _optional_object(body, "metadata")
        tags = _tags(body)

        def apply(after: dict[str, Any]) -> None:
            if content is not None:
                self._add_version(after, content, creating=False)
            elif promote is not None:
                self._promote(after, promote)
            if description is not None:
                after["description"] = description
            if metadata is not None:
                after["metadata"] = metadata
            after.update(tags)

        self._change(secret, apply)
        return self._secret_reply(secret)

    def schedule_secret_deletion(self, request: Request) -> Reply:
        """POST .../actions/scheduleDeletion: PENDING_DELETION until ``timeOfDeletion``."""
        secret = self._secret(request, request.params["secretId"])
        _refuse_busy(secret)
        _if_match(request, secret["etag"])
        when = self._deletion_time(request)
        if secret["lifecycleState"] != ACTIVE:
            raise _conflict(f"The secret is {secret['lifecycleState']}; it cannot be scheduled.")
        self._change(
            secret,
            lambda after: after.update(timeOfDeletion=when),
            busy=SCHEDULING_DELETION,
            settled=PENDING_DELETION,
        )
        return Reply(status=200)

    def cancel_secret_deletion(self, request: Request) -> Reply:
        """POST .../actions/cancelDeletion: back to ACTIVE."""
        secret = self._secret(request, request.params["secretId"])
        _refuse_busy(secret)
        _if_match(request, secret["etag"])
        if secret["lifecycleState"] != PENDING_DELETION:
            raise _conflict("The secret is not pending deletion.")
        self._change(
            secret, lambda after: after.update(timeOfDeletion=None), busy=CANCELLING_DELETION
        )
        return Reply(status=200)

    def list_secret_versions(self, request: Request) -> Reply:
        """GET /secrets/{secretId}/versions: every version (pending deletion included), paged."""
        secret = self._secret(request, request.params["secretId"])
        versions = _versions_sorted(request, secret["versions"])
        return _list_reply(request, [self._version_view(secret, v, summary=True) for v in versions])

    def get_secret_version(self, request: Request) -> Reply:
        """GET /secrets/{secretId}/version/{n}: the version's metadata (no content)."""
        secret = self._secret(request, request.params["secretId"])
        version = self._version(secret, request.params["secretVersionNumber"])
        return Reply(
            body=self._version_view(secret, version, summary=False),
            headers={"etag": version["etag"]},
        )

    def schedule_secret_version_deletion(self, request: Request) -> Reply:
        """POST .../version/{n}/actions/scheduleDeletion: DEPRECATED versions only."""
        secret = self._secret(request, request.params["secretId"])
        _refuse_busy(secret)
        version = self._version(secret, request.params["secretVersionNumber"])
        _if_match(request, version["etag"])
        when = self._deletion_time(request)
        if secret["lifecycleState"] != ACTIVE:
            raise _conflict(f"The secret is {secret['lifecycleState']}.")
        if version.get("timeOfDeletion") is not None:
            raise _conflict(f"Version {version['number']} is already pending deletion.")
        if version["stage"] != DEPRECATED:
            raise _conflict(
                f"Version {version['number']} is {version['stage']}; only DEPRECATED versions"
                " can be scheduled for deletion."
            )
        pending = [v for v in secret["versions"] if v.get("timeOfDeletion") is not None]
        if len(pending) >= MAX_PENDING_DELETION_VERSIONS:
            raise _limit_exceeded(
                f"The secret already has {MAX_PENDING_DELETION_VERSIONS} versions pending deletion."
            )
        number = version["number"]
        self._change(secret, lambda after: _set_version_deletion(after, number, when))
        return Reply(status=200)

    def cancel_secret_version_deletion(self, request: Request) -> Reply:
        """POST .../version/{n}/actions/cancelDeletion: the version is in active use again."""
        secret = self._secret(request, request.params["secretId"])
        _refuse_busy(secret)
        version = self._version(secret, request.params["secretVersionNumber"])
        _if_match(request, version["etag"])
        if version.get("timeOfDeletion") is None:
            raise _conflict(f"Version {version['number']} is not pending deletion.")
        active = [v for v in secret["versions"] if v.get("timeOfDeletion") is None]
        if len(active) >= MAX_ACTIVE_VERSIONS:
            raise _limit_exceeded(
                f"The secret already has {MAX_ACTIVE_VERSIONS} versions in active use."
            )
        number = version["number"]
        self._change(secret, lambda after: _set_version_deletion(after, number, None))
        return Reply(status=200)

    # ------------------------------------------------------------------ SecretsClient handlers

    def _select(self, request: Request, secret: dict[str, Any]) -> dict[str, Any]:
        """The version a bundle request selects; 404 when none, or when it is pending deletion.

        Selectors: one of ``versionNumber``, ``secretVersionName``, ``stage``; CURRENT by default.
        """
        if secret["lifecycleState"] not in READABLE_STATES:
            raise not_found("secret bundle")
        number = _int_arg(request, "versionNumber")
        name = request.arg("secretVersionName") or None
        stage = request.arg("stage") or None
        if sum(x is not None for x in (number, name, stage)) > 1:
            raise invalid("Give at most one of versionNumber, secretVersionName and stage.")
        versions: list[dict[str, Any]] = sorted(
            secret["versions"], key=lambda v: v["number"], reverse=True
        )
        if number is not None:
            chosen = [v for v in versions if v["number"] == number]
        elif name is not None:
            chosen = [v for v in versions if v.get("name") == name]
        elif stage == LATEST:
            chosen = versions[:1]
        elif stage is not None:
            if stage not in STAGES:
                raise invalid(f"stage must be one of {', '.join(STAGES)}, got {stage!r}.")
            chosen = [
                v for v in versions if v["stage"] == stage and v.get("timeOfDeletion") is None
            ]
        else:
            chosen = [v for v in versions if v["stage"] == CURRENT]
        if not chosen or chosen[0].get("timeOfDeletion") is not None:
            raise not_found("secret bundle")
        return chosen[0]

    def _bundle_reply(self, request: Request, secret: dict[str, Any]) -> Reply:
        version = self._select(request, secret)
        body = self._bundle_summary(secret, version)
        body["secretBundleContent"] = {"contentType": "BASE64", "content": version["content"]}
        if secret.get("metadata") is not None:
            body["metadata"] = secret["metadata"]
        return Reply(body=body)

    def get_secret_bundle(self, request: Request) -> Reply:
        """GET /secretbundles/{secretId} (operation GetSecretBundle)."""
        return self._bundle_reply(request, self._secret(request, request.params["secretId"]))

    def get_secret_bundle_by_name(self, request: Request) -> Reply:
        """POST /secretbundles/actions/getByName?secretName=&vaultId= (no body)."""
        state = self._expire()
        secret_name = request.arg("secretName")
        vault_id = request.arg("vaultId")
        if not secret_name:
            raise _missing("secretName")
        if not vault_id:
            raise _missing("vaultId")
        if vault_id not in state["vaults"]:
            raise not_found("vault")
        match = next(
            (
                s
                for s in state["secrets"].values()
                if s["vaultId"] == vault_id and s["secretName"] == secret_name
            ),
            None,
        )
        if match is None:
            raise not_found("secret")
        return self._bundle_reply(request, self._secret(request, match["id"]))

    def list_secret_bundle_versions(self, request: Request) -> Reply:
        """GET /secretbundles/{secretId}/versions: summaries (no content), paged."""
        secret = self._secret(request, request.params["secretId"])
        versions = _versions_sorted(request, secret["versions"])
        return _list_reply(request, [self._bundle_summary(secret, v) for v in versions])
