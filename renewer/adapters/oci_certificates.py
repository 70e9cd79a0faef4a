"""``Deployer`` for OCI Certificates-service certificates (imported): one version per renewal.

DEPLOY, for one :class:`~renewer.model.CertificateServiceTarget`: read the certificate (a missing
one is a :class:`ConfigError` naming its OCID); when its CURRENT version already has the
certificate's serial, nothing changes (``changed=False``). Otherwise:

* a version with that serial that may still become current (not DEPRECATED, not pending
  deletion: a rollback to the previous version, a run killed after importing) is made CURRENT
  with ``currentVersionNumber`` — no duplicate version;
* else the certificate is imported as a new version at stage CURRENT
  (``UpdateCertificateByImportingConfigDetails``: ``certificatePem`` the leaf alone,
  ``certChainPem`` the rest of the stored chain — "the certificate" and "the certificate
  chain" of the SDK's import models (``Create``/``UpdateCertificateByImportingConfigDetails``)
  — and the key; unlike a load-balancer bundle, whose ``publicCertificate`` carries the whole
  chain),
  named ``naming.bundle_name(name, serial)`` — the version name marks it as ours, which is what
  ``retire`` goes by (rule 2). Should a DEPRECATED version already carry that name (a rollback
  to a long-superseded certificate) the import goes unnamed, and is never retired.

The service is asynchronous: UpdateCertificate and ScheduleCertificateVersionDeletion leave the
certificate ``UPDATING`` for seconds, and a change meanwhile is answered 409 (Oracle's
oci-native-ingress-controller waits for ``ACTIVE`` after each; the SDK has
``update_certificate_and_wait_for_state``). So every change here starts from an ``ACTIVE``
certificate and is followed by a wait for ``ACTIVE`` (:mod:`renewer.adapters.oci_lifecycle`),
both bounded by the step's deadline (:class:`TransientError` when it passes: the certificate is
busy, nothing is misconfigured). The update carries ``if-match`` = the certificate's ETag; a 409
(the ETag moved: a listener association, a concurrent change; or ``IncorrectState``: still
busy) waits with backoff, re-reads and retries until the deadline — never a ConfigError. Once
the certificate is ``ACTIVE`` again it is read back: its CURRENT version must have the serial
(:class:`DeploymentError` otherwise). Listeners that
name the certificate in ``certificateIds`` follow its CURRENT version without an update of
their own (what Oracle's oci-native-ingress-controller relies on; wire facts §2), so no listener
is touched here.

RETIRE schedules deletion (OCI's default window, 30 days, cancellable) of the versions named as
ours for ``name`` that are neither CURRENT nor PENDING nor already scheduled, beyond the
``keep_previous`` newest. OCI only lets DEPRECATED versions be scheduled: the PREVIOUS version is
always kept, even with ``keep_previous=0``. Calling it again schedules nothing new. Each
deletion waits for the certificate to be ``ACTIVE`` again before the next one (never several
back to back); a 409 re-reads the versions (a deletion an SDK retry already made counts as
done).

There are no work requests. Bad certificate material (a chain
that does not start with the leaf's issuer, a key that does not match) is refused with 400 and
comes out as :class:`ConfigError` through :func:`translate`, before anything changed.
"""

from __future__ import annotations

import logging
from typing import Any

from renewer import naming, pki
from renewer.adapters.oci_clients import OciClients, translate
from renewer.adapters.oci_lifecycle import BUSY_STATES, Backoff, wait_until_settled
from renewer.clock import Clock
from renewer.errors import ConfigError, DeploymentError, RenewerError, TransientError
from renewer.model import CertificateServiceTarget, DeployedTarget, StoredCertificate, Target
from renewer.ports import StoredLeaves

# isort: split
# After oci_clients: it sets the SDK's import-time retry default before ``oci`` is first imported.
import oci

logger = logging.getLogger(__name__)

CURRENT, PENDING, DEPRECATED = "CURRENT", "PENDING", "DEPRECATED"
_CONFLICT = 409

SdkModel = Any  # an ``oci.certificates_management.models`` instance (no type hints in the SDK)


class CertificatesServiceDeployer:
    """``Deployer`` for :class:`~renewer.model.CertificateServiceTarget` (see the module doc).

    ``deploy`` is idempotent (``changed=False`` when the CURRENT version already has the serial,
    with no mutating call); ``retire`` is idempotent. Both raise ConfigError for a missing
    certificate or bad input, TransientError for throttling, 5xx and an exhausted deadline.

    Args:
        clients: the OCI clients (only ``certificates_management`` is used).
        clock: monotonic time, to start no change after the deadline.
        prefix: the name prefix that marks versions as ours (``naming``).

    """

    def __init__(
        self, clients: OciClients, *, clock: Clock, prefix: str = naming.DEFAULT_PREFIX
    ) -> None:
        self._clients = clients
        self._clock = clock
        self._prefix = naming.check_prefix(prefix)

    def deploy(
        self,
        name: str,
        certificate: StoredCertificate,
        target: Target,
        *,
        deadline: float,
        attempt: str | None = None,  # noqa: ARG002 - its update carries no retry token
    ) -> DeployedTarget:
        """Make ``certificate`` the CURRENT version of the target certificate.

        Raises:
            ConfigError: not a CertificateServiceTarget; a missing certificate; material the
                service refuses (400).
            DeploymentError: the read-back's CURRENT version has another serial.
            TransientError: throttling, 5xx, the deadline passed before the update.

        """
        certificate_id = _service_target(target).certificate_id
        serial = pki.normalize_serial(certificate.serial_hex)
        version_name = naming.bundle_name(name, certificate.serial_hex, prefix=self._prefix)
        leaf, chain = _leaf_and_chain(certificate)
        action = f"deploy {version_name} to Certificates-service certificate {certificate_id}"
        current, etag = self._settled(certificate_id, deadline)
        if pki.normalize_serial(current.current_version.serial_number) == serial:
            logger.info("deploy unchanged certificate=%s version=%s", certificate_id, version_name)
            return DeployedTarget(target, None, changed=False)
        backoff = Backoff(self._clock, deadline, action)
        while True:
            details, how = self._update_details(
                certificate_id, serial, version_name, leaf, chain, certificate
            )
            self._check_deadline(action, deadline)
            try:
                with translate(action):
                    self._clients.certificates_management.update_certificate(
                        certificate_id, details, if_match=etag
                    )
            except RenewerError as exc:
                if exc.oci_status != _CONFLICT:
                    raise
                logger.warning(
                    "certificate_retry certificate=%s reason=conflict code=%s",
                    certificate_id,
                    exc.oci_code,
                )
                backoff.pause(f"OCI answered 409 {exc.oci_code}")
                current, etag = self._settled(certificate_id, deadline)
                if pki.normalize_serial(current.current_version.serial_number) == serial:
                    return DeployedTarget(target, None, changed=False)  # done concurrently
                continue
            break
        logger.info(
            "certificate_mutation op=UpdateCertificate certificate=%s version=%s how=%s",
            certificate_id,
            version_name,
            how,
        )
        after, _ = self._settled(certificate_id, deadline)  # the change is visible once ACTIVE
        if pki.normalize_serial(after.current_version.serial_number) != serial:
            msg = (
                f"read-back of {certificate_id}: its CURRENT version is"
                f" {after.current_version.version_number}"
                f" (serial {after.current_version.serial_number}), not {version_name}"
            )
            raise DeploymentError(msg)
        return DeployedTarget(target, None, changed=True)

    def check(self, target: Target) -> None:
        """Read-only: the certificate exists, is usable and takes imported versions.

        A certificate still applying a change (CREATING, UPDATING, ...) is usable: DEPLOY waits
        for it.

        Raises:
            ConfigError: it does not exist (or no policy lets the function read it), it is
                neither ACTIVE nor busy (e.g. pending deletion), or it is issued by an OCI CA
                (``configType`` other than IMPORTED), which cannot take a version from elsewhere.

        """
        certificate_id = _service_target(target).certificate_id
        certificate, _etag = self._get(certificate_id)
        where = f"Certificates-service certificate {certificate_id} (targets[].certificateId)"
        if certificate.lifecycle_state not in BUSY_STATES | {"ACTIVE"}:
            raise ConfigError(_not_active(certificate_id, certificate.lifecycle_state))
        if certificate.config_type != "IMPORTED":
            msg = (
                f"{where} is {certificate.config_type}: only an IMPORTED certificate can take"
                " the renewer's certificates; create one by importing (oci certs-mgmt certificate"
                " create-by-importing-config) and target it"
            )
            raise ConfigError(msg)

    def is_serving(self, name: str, certificate: StoredCertificate, target: Target) -> bool:
        """Read-only: the target certificate's CURRENT version has this serial."""
        del name
        current, _etag = self._get(_service_target(target).certificate_id)
        return pki.normalize_serial(current.current_version.serial_number) == (
            pki.normalize_serial(certificate.serial_hex)
        )

    def retire(
        self,
        name: str,
        target: Target,
        *,
        keep_previous: int,
        deadline: float,
        stored: StoredLeaves | None = None,  # noqa: ARG002 - see below
    ) -> list[str]:
        """Schedule deletion of our superseded DEPRECATED versions of ``name``.

        ``stored`` is not needed here: the certificate is the one the configuration names, a
        scheduled deletion is cancellable for 30 days, and only versions named as ours count.

        Returns:
            The version names scheduled for deletion, newest first.

        Raises:
            ConfigError: not a CertificateServiceTarget, a negative ``keep_previous``, a missing
                certificate.
            TransientError: throttling, 5xx, the deadline passed.

        """
        certificate_id = _service_target(target).certificate_id
        if keep_previous < 0:
            msg = f"keep_previous must be 0 or more, not {keep_previous}"
            raise ConfigError(msg)
        ours = [
            version
            for version in self._versions(certificate_id)
            if version.version_name
            and naming.owns_bundle(version.version_name, name, prefix=self._prefix)
            and version.time_of_deletion is None
            and not {CURRENT, PENDING} & set(version.stages or [])
        ]
        ours.sort(key=lambda version: version.version_number, reverse=True)
        scheduled: list[str] = []
        for version in ours[keep_previous:]:
            if DEPRECATED not in (version.stages or []):
                logger.info(
                    "retire kept certificate=%s version=%s reason=not_deprecated",
                    certificate_id,
                    version.version_name,
                )
                continue
            if not self._schedule_deletion(certificate_id, version.version_number, deadline):
                continue
            logger.info(
                "certificate_mutation op=ScheduleCertificateVersionDeletion certificate=%s"
                " version=%s",
                certificate_id,
                version.version_name,
            )
            scheduled.append(version.version_name)
        return scheduled

    # ------------------------------------------------------------------ plumbing

    def _schedule_deletion(self, certificate_id: str, number: int, deadline: float) -> bool:
        """Schedule version ``number`` for deletion and wait for ACTIVE; False: it need not be.

        A 409 (still busy, or the version changed meanwhile) re-reads the version after a
        pause: already scheduled (an SDK retry of a lost answer) is done, no longer DEPRECATED
        is skipped, anything else is tried again until the deadline.
        """
        action = (
            f"schedule deletion of version {number} of Certificates-service"
            f" certificate {certificate_id}"
        )
        backoff = Backoff(self._clock, deadline, action)
        self._settled(certificate_id, deadline)
        while True:
            self._check_deadline(action, deadline)
            try:
                with translate(action):
                    self._clients.certificates_management.schedule_certificate_version_deletion(
                        certificate_id,
                        number,
                        oci.certificates_management.models.ScheduleCertificateVersionDeletionDetails(),
                    )
                break
            except RenewerError as exc:
                if exc.oci_status != _CONFLICT:
                    raise
                logger.warning(
                    "certificate_retry certificate=%s version=%d reason=conflict code=%s",
                    certificate_id,
                    number,
                    exc.oci_code,
                )
                backoff.pause(f"OCI answered 409 {exc.oci_code}")
                self._settled(certificate_id, deadline)
                version = next(
                    (v for v in self._versions(certificate_id) if v.version_number == number), None
                )
                if version is None or version.time_of_deletion is not None:
                    return version is not None  # gone already, or scheduled by a lost answer
                if DEPRECATED not in (version.stages or []):
                    return False
        self._settled(certificate_id, deadline)  # never schedule the next one while UPDATING
        return True

    def _settled(self, certificate_id: str, deadline: float) -> tuple[SdkModel, str | None]:
        """The certificate and its ETag once it is no longer in a transitional state.

        Raises:
            ConfigError: it settled in a state other than ACTIVE (pending deletion, FAILED).
            TransientError: still busy at ``deadline``.

        """
        certificate, etag = wait_until_settled(
            lambda: self._get(certificate_id),
            lambda answer: answer[0].lifecycle_state,
            clock=self._clock,
            deadline=deadline,
            what=f"wait for Certificates-service certificate {certificate_id} to be ACTIVE",
        )
        if certificate.lifecycle_state != "ACTIVE":
            raise ConfigError(_not_active(certificate_id, certificate.lifecycle_state))
        return certificate, etag

    def _update_details(
        self,
        certificate_id: str,
        serial: str,
        version_name: str,
        leaf: str,
        chain: str,
        certificate: StoredCertificate,
    ) -> tuple[SdkModel, str]:
        """Promote an existing version with ``serial`` or import a new one; (details, how)."""
        models = oci.certificates_management.models
        versions = self._versions(certificate_id)
        for version in versions:
            if (
                pki.normalize_serial(version.serial_number) == serial
                and DEPRECATED not in (version.stages or [])
                and version.time_of_deletion is None
            ):
                details = models.UpdateCertificateDetails(
                    current_version_number=version.version_number
                )
                return details, f"promote_version_{version.version_number}"
        taken = any(version.version_name == version_name for version in versions)
        config = models.UpdateCertificateByImportingConfigDetails(
            certificate_pem=leaf,
            cert_chain_pem=chain,
            private_key_pem=certificate.private_key_pem,
            stage=CURRENT,
            version_name=None if taken else version_name,
        )
        return models.UpdateCertificateDetails(certificate_config=config), "import"

    def _get(self, certificate_id: str) -> tuple[SdkModel, str | None]:
        with translate(f"read Certificates-service certificate {certificate_id}"):
            response = self._clients.certificates_management.get_certificate(certificate_id)
        return response.data, response.headers.get("etag")

    def _versions(self, certificate_id: str) -> list[SdkModel]:
        """Every version summary of the certificate, all pages."""
        versions: list[SdkModel] = []
        page: str | None = None
        while True:
            with translate(
                f"list the versions of Certificates-service certificate {certificate_id}"
            ):
                response = self._clients.certificates_management.list_certificate_versions(
                    certificate_id, page=page
                )
            versions += response.data.items or []
            page = response.next_page
            if not page:
                return versions

    def _check_deadline(self, action: str, deadline: float) -> None:
        if self._clock.monotonic() >= deadline:
            msg = f"{action}: the deadline passed before the change could start"
            raise TransientError(msg)


def _not_active(certificate_id: str, state: str) -> str:
    return (
        f"Certificates-service certificate {certificate_id} (targets[].certificateId) is"
        f" {state}, not ACTIVE: cancel its deletion or name another certificate"
    )


def _service_target(target: Target) -> CertificateServiceTarget:
    if not isinstance(target, CertificateServiceTarget):
        msg = (
            "CertificatesServiceDeployer deploys to Certificates-service targets only,"
            f" not {type(target).__name__}"
        )
        raise ConfigError(msg)
    return target


def _leaf_and_chain(certificate: StoredCertificate) -> tuple[str, str]:
    """The leaf PEM and the rest of the chain, which the service requires.

    Raises:
        ConfigError: the chain does not parse or holds the leaf alone, or the leaf's serial is
            not ``serial_hex``.

    """
    leaf, chain = pki.stored_leaf_and_chain(certificate)
    if not chain:
        msg = (
            f"stored certificate version {certificate.version} has no issuer certificate after"
            " the leaf; the Certificates service needs the chain"
        )
        raise ConfigError(msg)
    return leaf, chain
