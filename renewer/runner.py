"""One invocation, start to end: environment → configuration → service → action → result.

Shared by the function (``func.py``) and the operator CLI (``python -m renewer``), so both do
exactly the same thing for the same request. The order is fixed by rule 6 of the architecture:
the payload and the environment are validated, then the configuration, then the requested
certificate names — all before the first call that could change anything.

:func:`execute` never raises for a certificate's failure: the :class:`Result` says ``failed``
and carries a secret-free ``summary`` (names, steps and error types only) for the 502 body. It
raises :class:`~renewer.errors.ConfigError` for what prevents any run (bad payload, environment
or configuration; unknown certificate names), with the message naming the fix, and
:class:`~renewer.errors.TransientError` when OCI could not be reached to start.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from renewer.environment import Environment, load_configuration
from renewer.errors import RenewerError
from renewer.invocation import Action, Invocation, Trigger
from renewer.operations.run import RunInfo
from renewer.operations.status import (
    Observation,
    VersionEntry,
    history_view,
    rollback_refusal,
    status_view,
    unknown_version_message,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from renewer.adapters.oci_clients import OciClients
    from renewer.model import CaSpec, StoredCertificate
    from renewer.operations.facade import Operations
    from renewer.renewal import RenewalService
    from renewer.report import RenewalReport
    from renewer.settings import Config

logger = logging.getLogger(__name__)

# Seconds kept back from the deadline: unlock, journal, metrics and the response itself.
RESERVE_S = 15.0
ANSWER_S = 5.0  # of the reserve, kept for the response itself after the last OCI call
MIN_BUDGET_S = 5.0
MAX_STEP_S = 60.0
STATUS_RUNS = 10  # journal records shown by `status`
STATUS_HISTORY = 5  # per certificate


@dataclass(frozen=True, slots=True)
class Result:
    """What an invocation answers: the JSON document, whether it failed, and the 502 summary."""

    document: dict[str, Any]
    failed: bool = False
    summary: str = ""
    report: RenewalReport | None = field(default=None, repr=False)

    def to_json(self) -> str:
        """The response body."""
        return json.dumps(self.document)


def budget_from_deadline(deadline: float | None, *, now: float | None = None) -> float:
    """Seconds a run may use before ``deadline`` (epoch seconds), keeping :data:`RESERVE_S`.

    Without a deadline (the CLI), 270 s: inside the function's 300-s limit anyway.
    """
    if deadline is None:
        return 300.0 - 30.0
    now = time.time() if now is None else now
    return max(MIN_BUDGET_S, deadline - now - RESERVE_S)


def execute(
    invocation: Invocation,
    environment: Environment,
    *,
    call_id: str,
    budget_s: float,
    function_id: str | None = None,
) -> Result:
    """Run ``invocation``.

    Args:
        invocation: the validated request.
        environment: the validated environment.
        call_id: this invocation's id (the lease holder, the journal's key, every log line).
        budget_s: seconds the run may take.
        function_id: this function's OCID (the fdk's ``FN_FN_ID``), when running as one: a
            scheduled run too short for its fleet then fans out (:mod:`renewer.fanout`).

    """
    if invocation.ignored is not None:
        logger.info("ignored trigger=%s reason=%s", invocation.trigger, invocation.ignored)
        return Result({"ignored": invocation.ignored, "trigger": str(invocation.trigger)})

    from renewer.adapters.oci_clients import OciClients  # noqa: PLC0415 - the SDK, on use

    # Every OCI call ends by the invocation's deadline (the run's budget and its reserve, less
    # time to answer), whatever OCI does: see renewer.adapters.oci_clients.
    oci_deadline = time.monotonic() + budget_s + RESERVE_S - ANSWER_S
    if invocation.action is Action.VALIDATE:
        return _validated(invocation, environment, call_id=call_id, deadline=oci_deadline)
    clients = None
    if environment.config_object is not None:
        clients = OciClients(environment.oci_settings(), deadline=oci_deadline)
    # An inline document is validated before credentials are even loaded (rule 6).
    config = load_configuration(environment, clients)
    clients = clients or OciClients(environment.oci_settings(), deadline=oci_deadline)
    try:
        names = list(invocation.certificates) or None
        for name in names or ():
            config.certificate(name)  # ConfigError listing the configured names
        action = invocation.effective_action
        inspection = _inspection_for(invocation, config, environment, clients)
        service = _service(config, environment, clients, call_id=call_id, budget_s=budget_s)
        logger.info(
            "invocation action=%s trigger=%s certificates=%s force=%s budget_s=%.0f",
            action,
            invocation.trigger,
            ",".join(names or ["*"]),
            invocation.force,
            budget_s,
        )
        fanned: list[dict[str, object]] | None = None
        if action is Action.REVOKE:
            report = _revoke(invocation, config, environment, clients, service, call_id, budget_s)
        else:
            fanned_report, fanned = _fanned_out(
                invocation, action, service, config, clients, function_id, call_id, budget_s
            )
            report = fanned_report or _act(action, invocation, service, names, budget_s)
            if fanned is None and action is Action.RENEW and function_id:
                fanned = _continued(report, invocation, clients, function_id)
        document = json.loads(report.to_json())
        if fanned is not None:
            document["fanOut"] = fanned
        document["action"] = str(action)
        document["trigger"] = str(invocation.trigger)
        document["call_id"] = call_id
        if inspection is not None and action in (Action.STATUS, Action.HISTORY):
            inspection.annotate(document, action)
        # A plan reports nothing to operators; the other actions post, record or read the journal.
        if action not in (Action.PLAN, Action.HISTORY):
            _operate(document, report, invocation, config, clients, call_id=call_id)
        return Result(document, failed=report.failed, summary=report.summary(), report=report)
    finally:
        clients.close()  # a warm container must not keep this invocation's connections


def _fanned_out(
    invocation: Invocation,
    action: Action,
    service: RenewalService,
    config: Config,
    clients: OciClients,
    function_id: str | None,
    call_id: str,
    budget_s: float,
) -> tuple[RenewalReport | None, list[dict[str, object]] | None]:
    """A scheduled renewal too short for its fleet, fanned out (:mod:`renewer.fanout`)."""
    if not (
        action is Action.RENEW
        and function_id
        and not invocation.certificates
        and not invocation.force
        and invocation.trigger is Trigger.SCHEDULE
    ):
        return None, None
    from renewer.adapters.oci_functions import fan_out  # noqa: PLC0415 - the SDK's, on use

    return fan_out(
        service, config, clients, function_id=function_id, holder=call_id, budget_s=budget_s
    )


def _continued(
    report: RenewalReport, invocation: Invocation, clients: OciClients, function_id: str
) -> list[dict[str, object]] | None:
    """A run that made progress but deferred certificates for time continues them detached."""
    from renewer.adapters.oci_functions import continue_detached  # noqa: PLC0415 - on use

    return continue_detached(report, clients, function_id=function_id, force=invocation.force)


def _act(
    action: Action,
    invocation: Invocation,
    service: RenewalService,
    names: list[str] | None,
    budget_s: float,
) -> RenewalReport:
    """The renewal service's actions: renew, rollback; plan, status and history plan."""
    match action:
        case Action.RENEW:
            return service.run(budget_s=budget_s, names=names, force=invocation.force)
        case Action.ROLLBACK:
            version = invocation.version or 0  # parse_payload requires it for a rollback
            return service.rollback((names or [""])[0], version, budget_s=budget_s)
        case _:
            return service.plan(names)


def _journalled(invocation: Invocation, action: Action) -> bool:
    """Whether the run is journalled.

    Renew, rollback, and revoke (every revocation, and every refused one); not a revoke's dry
    run, which is a plan.
    """
    return action in (Action.RENEW, Action.ROLLBACK) or (
        action is Action.REVOKE and not invocation.dry_run
    )


def _revoke(
    invocation: Invocation,
    config: Config,
    environment: Environment,
    clients: OciClients,
    renewals: RenewalService,
    call_id: str,
    budget_s: float,
) -> RenewalReport:
    """The revoke action (renewer.revoker); its replacement run is a renewal like any other."""
    from renewer.revocation_wiring import build_revocation_service  # noqa: PLC0415 - on use
    from renewer.revoker import RevocationRequest  # noqa: PLC0415

    def renewals_for(changed: Config) -> RenewalService:
        if changed is config:
            return renewals
        return _service(changed, environment, clients, call_id=call_id, budget_s=budget_s)

    revocations = build_revocation_service(
        config,
        clients=clients,
        renewals_for=renewals_for,
        ca_bundle=environment.acme_ca_bundle,
        holder=call_id,
    )
    assert invocation.reason is not None  # noqa: S101 - parse_payload requires it for revoke
    request = RevocationRequest(
        name=invocation.certificates[0],
        version=invocation.version or 0,
        reason=invocation.reason,
        sign_with=invocation.sign_with,
        dry_run=invocation.dry_run,
    )
    return revocations.revoke(request, budget_s=budget_s)


def _operate(
    document: dict[str, Any],
    report: RenewalReport,
    invocation: Invocation,
    config: Config,
    clients: OciClients,
    *,
    call_id: str,
) -> None:
    """Renew/rollback/revoke: metrics, notices, the journal record; status: the journal's reads."""
    action = invocation.effective_action
    operations = _operations(config, clients)
    if operations is None:
        return
    if _journalled(invocation, action):
        # Never raises: a Monitoring, Notifications or journal failure is logged, not fatal.
        run = RunInfo(trigger=str(invocation.trigger), call_id=call_id, action=str(action))
        after = operations.after_run(report, run)
        document["journal"] = after.journal_object
    if action is Action.STATUS:
        document["runs"] = _journal_reads(
            lambda: [_run_summary(record) for record in operations.last_runs(STATUS_RUNS)]
        )
        for certificate in document["certificates"]:
            name = str(certificate["name"])
            certificate["history"] = _journal_reads(
                functools.partial(operations.certificate_history, name, limit=STATUS_HISTORY)
            )


def _inspection_for(
    invocation: Invocation, config: Config, environment: Environment, clients: OciClients
) -> _Inspection | None:
    """The reader status, history and rollback need; a rollback's version is checked here.

    Raises:
        InvalidRequest: a rollback to a version that is not a usable stored certificate
            version — a usage error (exit 2, 502) before any lease or write.

    """
    action = invocation.effective_action
    if action not in (Action.STATUS, Action.HISTORY, Action.ROLLBACK):
        return None
    inspection = _Inspection(config, environment, clients)
    if action is Action.ROLLBACK:
        inspection.check_rollback((invocation.certificates or ("",))[0], invocation.version or 0)
    return inspection


def _validated(
    invocation: Invocation, environment: Environment, *, call_id: str, deadline: float
) -> Result:
    """``validate``: the configuration document alone (inline: no OCI call at all).

    A configuration object is read (GetNamespace + GetObject), nothing else: no credentials are
    needed for an inline document, no vault, bucket or load balancer is looked at.

    Raises:
        ConfigError: every problem of the document, or an unknown certificate name.

    """
    clients = None
    if environment.config_inline is None:
        from renewer.adapters.oci_clients import OciClients  # noqa: PLC0415 - the SDK, on use

        clients = OciClients(environment.oci_settings(), deadline=deadline)
    try:
        config = load_configuration(environment, clients)
    finally:
        if clients is not None:
            clients.close()
    selected = [config.certificate(n) for n in invocation.certificates] or list(config.certificates)
    document: dict[str, Any] = {
        "action": str(Action.VALIDATE),
        "trigger": str(invocation.trigger),
        "call_id": call_id,
        "valid": True,
        "directory_url": config.acme.directory_url,
        "certificates": [
            {
                "name": m.spec.name,
                "dns_names": list(m.spec.dns_names),
                "key_type": str(m.spec.key_type),
                "targets": len(m.targets),
            }
            for m in selected
        ],
    }
    logger.info("validated certificates=%d", len(selected))
    return Result(document, summary=f"validate: {len(selected)} certificate(s) valid")


class _Inspection:
    """``status``/``history``/rollback's check: the Vault versions and what targets serve.

    Read-only. Versions are read once per certificate, targets observed once per certificate.
    """

    def __init__(self, config: Config, environment: Environment, clients: OciClients) -> None:
        from renewer.adapters.oci_revocations import (  # noqa: PLC0415 - on use
            ObjectStorageRevocationRecords,
        )
        from renewer.adapters.oci_served_probe import ServedProbe  # noqa: PLC0415 - on use
        from renewer.adapters.oci_vault import VaultCertificateStore  # noqa: PLC0415

        resources = config.oci
        self._config = config
        self._store = VaultCertificateStore(
            clients,
            compartment_id=resources.compartment_id,
            vault_id=resources.vault_id,
            key_id=resources.key_id,
            prefix=resources.name_prefix,
        )
        # Revocations recorded by the revoke action: rollback refuses those versions.
        self._revocations = ObjectStorageRevocationRecords(
            clients,
            namespace=resources.namespace or clients.namespace(),
            bucket=resources.state_bucket,
        )
        loopback = environment.loopback
        self._probe = ServedProbe(
            clients, address_override=None if loopback is None else loopback.address_override
        )

    def versions(self, name: str) -> list[VersionEntry]:
        """The certificate versions of ``name`` as the views take them."""
        from renewer import pki  # noqa: PLC0415

        entries = []
        managed_cas = self._config.certificate(name).spec.cas
        revoked = self._revocations.revoked(name)
        for stored in self._store.history(name):
            certificate = stored.certificate
            revocation = (
                None if certificate is None else revoked.get(certificate.serial_hex.lower())
            )
            entries.append(
                VersionEntry(
                    version=stored.version,
                    stages=stored.stages,
                    serial=None if certificate is None else certificate.serial_hex,
                    not_after=None if certificate is None else certificate.not_after,
                    dns_names=() if certificate is None else certificate.dns_names,
                    key_type=None if certificate is None else str(certificate.key_type),
                    issuer=None
                    if certificate is None
                    else pki.common_name(pki.split_chain(certificate.fullchain_pem)[0].issuer),
                    ca=None if certificate is None else _ca_host(certificate, managed_cas),
                    pending_deletion=stored.pending_deletion,
                    unreadable=stored.unreadable,
                    revoked=None
                    if revocation is None
                    else f"{revocation.reason}, {revocation.to_dict()['revoked_at']}",
                )
            )
        return entries

    def observations(self, name: str) -> list[Observation]:
        """What each target of ``name`` serves now (SNI: its first DNS name)."""
        managed = self._config.certificate(name)
        server_name = managed.spec.dns_names[0]
        return [o for t in managed.targets for o in self._probe.observe(t, server_name)]

    def check_rollback(self, name: str, version: int) -> None:
        """InvalidRequest unless ``version`` is a certificate version rollback can use."""
        from datetime import UTC, datetime  # noqa: PLC0415

        from renewer.invocation import InvalidRequest  # noqa: PLC0415

        self._config.certificate(name)  # ConfigError listing the configured names
        versions = self.versions(name)
        entry = next((v for v in versions if v.version == version), None)
        if entry is None:
            raise InvalidRequest(unknown_version_message(name, version, versions))
        refusal = rollback_refusal(entry, now=datetime.now(UTC))
        if refusal is not None:
            msg = (
                f"version {version} of {name!r} cannot be rolled back to: it is {refusal};"
                f" list the versions with `python -m renewer history {name}`"
            )
            raise InvalidRequest(msg)

    def annotate(self, document: dict[str, Any], action: Action) -> None:
        """Add the status view (``held``, ``targets``, ``drift``) or ``versions`` to each one."""
        from datetime import UTC, datetime  # noqa: PLC0415

        now = datetime.now(UTC)
        for certificate in document["certificates"]:
            name = str(certificate["name"])
            try:
                versions = self.versions(name)
            except RenewerError as exc:
                certificate["error"] = certificate.get("error") or str(exc)
                versions = []
            observations = self.observations(name)
            if action is Action.STATUS:
                certificate.update(status_view(versions, observations, now=now))
            else:
                certificate["versions"] = history_view(versions, observations, now=now)


def _operations(config: Config, clients: OciClients) -> Operations | None:
    """The metrics/notifications/journal façade, or None if it cannot even be built."""
    from renewer.errors import RenewerError  # noqa: PLC0415
    from renewer.operations_wiring import build_operations  # noqa: PLC0415 - on use

    try:
        return build_operations(config, clients=clients)
    except RenewerError as exc:
        logger.warning("operations_unavailable error_type=%s error=%s", type(exc).__name__, exc)
        return None


def _journal_reads(read: Callable[[], list[dict[str, object]]]) -> list[dict[str, object]]:
    """A journal read for ``status``; a failure leaves the list empty and is logged."""
    from renewer.errors import RenewerError  # noqa: PLC0415

    try:
        return read()
    except RenewerError as exc:
        logger.warning("journal_read_failed error_type=%s error=%s", type(exc).__name__, exc)
        return []


def _run_summary(record: dict[str, object]) -> dict[str, object]:
    """A journal record without its per-certificate details (those go in ``history``)."""
    return {key: value for key, value in record.items() if key != "certificates"}


def _service(
    config: Config,
    environment: Environment,
    clients: OciClients,
    *,
    call_id: str,
    budget_s: float,
) -> RenewalService:
    from renewer.wiring import build_service  # noqa: PLC0415 - acme and the adapters, on use

    loopback = environment.loopback
    options: dict[str, Any] = {
        "oci": environment.oci_settings(),
        "holder": call_id,
        "ca_bundle": environment.acme_ca_bundle,
        "clients": clients,
        # A step may take a minute (an LB work request), but never so much of a short
        # invocation that nothing could start: no step starts with less than this left.
        "step_budget": min(MAX_STEP_S, max(MIN_BUDGET_S, budget_s / 3)),
    }
    if loopback is not None:
        options.update(
            self_check_port=loopback.self_check_port,
            self_check_connect_host=loopback.self_check_host,
            self_check_resolve=dict(loopback.resolve) or None,
            tls_address_override=loopback.address_override,
        )
    return build_service(config, **options)


def _ca_host(certificate: StoredCertificate, cas: Sequence[CaSpec]) -> str | None:
    """The host of the CA that issued ``certificate`` (recorded, else by its account URL)."""
    from renewer import ca_choice  # noqa: PLC0415

    if certificate.directory_url is not None:
        return ca_choice.ca_host(certificate.directory_url)
    ca = ca_choice.issuing_ca(certificate, cas)
    return ca_choice.ca_host(ca.directory_url) if ca is not None else None
