"""What one invocation asks for: the function's payload, parsed and validated. Pure, stdlib only.

The body of an invocation is one of:

* empty (or only whitespace): the scheduled run, ``{"action": "renew"}``;
* a JSON object (the operator's or the Resource Scheduler's payload)::

      {"action": "renew" | "plan" | "status" | "history" | "rollback" | "revoke" | "validate",
       "certificates": ["shop", ...],   # default: every configured certificate
       "force": false,                  # renew: order even when not due
       "dryRun": false,                 # renew: decide and report only (same as "plan")
       "version": 3,                    # rollback: the Vault secret version to re-deploy;
                                        # revoke: the version to revoke
       "reason": "keyCompromise",       # revoke: an RFC 5280 reason (renewer.revocation)
       "signWith": "account",           # revoke: or "certificateKey"
       "trigger": "schedule"}           # who sends it: "schedule" or "manual" (the default)

  (``dry_run`` is accepted as a spelling of ``dryRun``, the issue's and the CLI's). The
  Resource Scheduler schedule Terraform writes sends ``{"action": "renew", "trigger":
  "schedule"}`` (``terraform/schedule.tf``), so its runs are journaled as scheduled, like an
  empty body; a person's ``fn invoke`` with a body is ``manual``. ``event`` and ``cli`` are
  not accepted here: an Events delivery is recognised by its shape, the CLI sets its own;
* an OCI Events delivery (CloudEvents 0.1 as OCI sends it, or 1.0 structured): an Object
  Storage event on the configuration object means "the configuration changed" and becomes a
  renew run of every certificate — the policy then orders exactly what changed (a new
  certificate is Missing, changed names are NamesChanged) and leaves the rest read-only. Any
  other event is acknowledged and ignored, so a too-broad Events rule costs nothing.

Every problem is an :class:`InvalidRequest` naming the field and the fix; unknown fields are
errors, as in the configuration.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from renewer.errors import ConfigError
from renewer.operations.run import Trigger
from renewer.revocation import RevocationReason, SignWith, parse_reason, parse_sign_with
from renewer.untrusted import UnreadableJson, decode_json, json_kind, quote, shown_choice

__all__ = ["Action", "InvalidRequest", "Invocation", "Trigger", "parse_payload"]

MAX_BODY_BYTES = 64 * 1024  # a payload is a handful of names; anything larger is a mistake
_FIELDS = frozenset(
    {
        "action",
        "certificates",
        "force",
        "dryRun",
        "dry_run",
        "version",
        "reason",
        "signWith",
        "trigger",
    }
)
# What a payload may say about who sent it; the others are decided by the shape or the caller.
_PAYLOAD_TRIGGERS = (Trigger.SCHEDULE, Trigger.MANUAL)
_SHOWN_UNKNOWN = 5  # unknown fields named in the message; the rest are counted
_SHOWN_OBJECT = 300  # an Object Storage bucket/object name: up to 256 + 1024 characters
_OBJECT_EVENTS = frozenset(
    {
        "com.oraclecloud.objectstorage.createobject",
        "com.oraclecloud.objectstorage.updateobject",
    }
)


class InvalidRequest(ConfigError):
    """The payload is malformed: nothing was done. The message names the field and the fix."""


class Action(enum.StrEnum):
    """What to do."""

    RENEW = "renew"
    PLAN = "plan"
    STATUS = "status"  # what each target serves next to what Vault holds, drift flagged
    HISTORY = "history"  # each stored certificate version: what rollback accepts
    ROLLBACK = "rollback"
    REVOKE = "revoke"
    VALIDATE = "validate"  # the configuration document only: no other OCI call


@dataclass(frozen=True, slots=True)
class Invocation:
    """A validated request. ``certificates`` empty means all; ``ignored`` says why not to run."""

    action: Action = Action.RENEW
    certificates: tuple[str, ...] = ()
    force: bool = False
    dry_run: bool = False
    version: int | None = None
    reason: RevocationReason | None = None  # revoke only
    sign_with: SignWith = SignWith.ACCOUNT  # revoke only
    trigger: Trigger = Trigger.SCHEDULE
    ignored: str | None = None  # an event that is not about the configuration: do nothing

    @property
    def effective_action(self) -> Action:
        """``renew`` with ``dryRun`` is a plan."""
        return Action.PLAN if self.action is Action.RENEW and self.dry_run else self.action


def parse_payload(body: bytes, *, config_object: str | None = None) -> Invocation:
    """Parse an invocation body.

    Args:
        body: the raw body.
        config_object: ``<bucket>/<object>`` of the configuration (``RENEWER_CONFIG_OBJECT``),
            to recognise an Events delivery about it; None when the configuration is inline.

    Raises:
        InvalidRequest: malformed JSON, an unknown action or field, a wrong type.

    """
    if len(body) > MAX_BODY_BYTES:
        msg = f"the payload is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted"
        raise InvalidRequest(msg)
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return Invocation()
    try:
        document = decode_json(text)
    except UnreadableJson as exc:
        msg = (
            f"the payload {exc}; send an object such as"
            ' {"action": "plan"}, or nothing for a scheduled renewal'
        )
        raise InvalidRequest(msg) from None
    if not isinstance(document, dict):
        msg = (
            'the payload must be a JSON object such as {"action": "plan"},'
            f" not {json_kind(document)}"
        )
        raise InvalidRequest(msg)
    if _is_event(document):
        return _event(document, config_object)
    return _request(document)


def _request(document: Mapping[str, Any]) -> Invocation:
    problems: list[str] = []
    unknown = sorted(set(document) - _FIELDS)
    if unknown:
        # Keys are names: shown, but escaped and cut (renewer.untrusted.quote), and few.
        shown = ", ".join(quote(key) for key in unknown[:_SHOWN_UNKNOWN])
        more = (
            f" and {len(unknown) - _SHOWN_UNKNOWN:,} more" if len(unknown) > _SHOWN_UNKNOWN else ""
        )
        problems.append(
            f"unknown field(s) {shown}{more}: the fields are"
            f" {', '.join(sorted(_FIELDS - {'dry_run'}))}"
        )
    raw_action = document.get("action", "renew")
    action = None
    try:
        action = Action(raw_action)
    except ValueError:
        problems.append(
            f"action {shown_choice(raw_action)} is unknown: use one of"
            f" {', '.join(a.value for a in Action)}"
        )
    names = _names(document.get("certificates", []), problems)
    force = _flag(document, "force", problems)
    dry_run = _flag(document, "dryRun", problems) or _flag(document, "dry_run", problems)
    version = document.get("version")
    if version is not None and (
        not isinstance(version, int) or isinstance(version, bool) or version < 1
    ):
        problems.append(
            "version must be a positive integer (a Vault secret version),"
            f" not {shown_choice(version)}"
        )
    reason, sign_with = _revocation(document, action, problems)
    trigger = _trigger(document.get("trigger", Trigger.MANUAL.value), problems)
    if action is not None:
        _combination(action, names, version, force=force, dry_run=dry_run, problems=problems)
    if problems:
        raise InvalidRequest("invalid payload: " + "; ".join(problems))
    assert action is not None  # noqa: S101 - no problem means the action parsed
    return Invocation(
        action=action,
        certificates=names,
        force=force,
        dry_run=dry_run,
        version=version,
        reason=reason,
        sign_with=sign_with,
        trigger=trigger,
    )


def _combination(
    action: Action,
    names: tuple[str, ...],
    version: object,
    *,
    force: bool,
    dry_run: bool,
    problems: list[str],
) -> None:
    """Which fields go with which action."""
    if action in (Action.ROLLBACK, Action.REVOKE):
        verb = {Action.ROLLBACK: "re-deploy", Action.REVOKE: "revoke"}[action]
        if len(names) != 1:
            problems.append(
                f'{action.value} needs exactly one certificate: "certificates": ["<name>"]'
            )
        if version is None:
            problems.append(f'{action.value} needs "version": the Vault secret version to {verb}')
        if force:
            problems.append(f'"force" is for renew only, not {action.value}')
        return
    if version is not None:
        problems.append(f'"version" is for rollback and revoke only, not {action.value}')
    if force and action is not Action.RENEW:
        problems.append(f'"force" is for renew only, not {action.value}')
    if force and dry_run:
        problems.append('"force" and "dryRun" exclude each other: a dry run orders nothing')


def _revocation(
    document: Mapping[str, Any], action: Action | None, problems: list[str]
) -> tuple[RevocationReason | None, SignWith]:
    """``reason`` (required) and ``signWith`` (default ``account``): for revoke only."""
    if action is not Action.REVOKE:
        if action is not None:
            problems.extend(
                f'"{field}" is for revoke only, not {action.value}'
                for field in ("reason", "signWith")
                if field in document
            )
        return None, SignWith.ACCOUNT
    if "reason" not in document:
        problems.append(
            'revoke needs "reason": one of '
            + ", ".join(r.value for r in RevocationReason)
            + " (RFC 5280)"
        )
        reason = None
    else:
        reason, problem = parse_reason(document["reason"])
        if problem:
            problems.append(problem)
    sign_with, problem = parse_sign_with(document.get("signWith", SignWith.ACCOUNT.value))
    if problem:
        problems.append(problem)
    return reason, sign_with or SignWith.ACCOUNT


def _trigger(value: object, problems: list[str]) -> Trigger:
    """``schedule`` (what the Terraform-written schedule sends) or ``manual`` (the default)."""
    for trigger in _PAYLOAD_TRIGGERS:
        if value == trigger.value:
            return trigger
    problems.append(
        f"trigger {shown_choice(value)} is not accepted: use"
        f" {' or '.join(repr(t.value) for t in _PAYLOAD_TRIGGERS)} (events and the CLI are"
        " recognised without it)"
    )
    return Trigger.MANUAL


def _names(value: object, problems: list[str]) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(n, str) and n for n in value):
        problems.append(
            f"certificates must be a list of configured certificate names, not {json_kind(value)}"
        )
        return ()
    if len(set(value)) != len(value):
        problems.append("certificates names a certificate twice")
    return tuple(value)


def _flag(document: Mapping[str, Any], field: str, problems: list[str]) -> bool:
    value = document.get(field, False)
    if not isinstance(value, bool):
        problems.append(f"{field} must be true or false, not {json_kind(value)}")
        return False
    return value


def _is_event(document: Mapping[str, Any]) -> bool:
    """CloudEvents 0.1 (``cloudEventsVersion``/``eventType``, OCI) or 1.0 (``specversion``)."""
    return ("eventType" in document and "cloudEventsVersion" in document) or (
        "specversion" in document and "type" in document
    )


def _event(document: Mapping[str, Any], config_object: str | None) -> Invocation:
    event_type = str(document.get("eventType") or document.get("type") or "")
    data = document.get("data")
    data = data if isinstance(data, dict) else {}
    details = data.get("additionalDetails")
    details = details if isinstance(details, dict) else {}
    target = f"{details.get('bucketName', '?')}/{data.get('resourceName', '?')}"
    if event_type not in _OBJECT_EVENTS:
        # The reason lands in the response and the log: the caller's text escaped and cut.
        return Invocation(
            trigger=Trigger.EVENT, ignored=f"event {quote(event_type, limit=100)} is not handled"
        )
    if config_object is None or target != config_object:
        return Invocation(
            trigger=Trigger.EVENT,
            ignored=f"object {quote(target, limit=_SHOWN_OBJECT)} is not the configuration"
            f" object ({config_object or 'the configuration is inline'})",
        )
    return Invocation(action=Action.RENEW, trigger=Trigger.EVENT)
