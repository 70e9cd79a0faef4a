"""OCI SDK clients for every OCI adapter: one signer, one retry policy, endpoint overrides.

Authentication: resource principals inside the function (``auth="resource_principal"``), an OCI
config-file profile for operators on a workstation (``auth="config_file"``). Endpoints: per-service
overrides (the sandbox's emulator; dedicated regions), otherwise the SDK derives them from the
region.

Retries are explicit: a bounded SDK retry strategy (attempts and total seconds) on throttling,
409 IncorrectState/LockConflict and 5xx, applied to every operation — including the Load
Balancer's, which the SDK does not retry by default. The SDK's circuit breaker is turned off on
purpose: it is shared by every client in the process and opens after 10 transient failures, so
one throttled load balancer would fail calls to unrelated services for 30 s; our own retries and
the per-certificate isolation already bound the damage.

:func:`translate` is the single place where ``oci.exceptions`` become :mod:`renewer.errors`,
always keeping OCI's ``opc-request-id`` (what OCI support asks for).

Time: the SDK's ``timeout`` bounds one socket operation, and its retries add up to
``retry_seconds``. With a deadline (:meth:`OciClients.set_deadline`, the run's), every call ends
by it, total time included: connections are cut when it passes (:mod:`renewer.deadline`), no
attempt starts after it, a retry is not waited for when less than the longest back-off is left,
and what fails after it is a :class:`TransientError` saying so.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from renewer.deadline import DeadlineOf, bound_session, remaining
from renewer.errors import ConfigError, RenewerError, TransientError

# Read at import time by the SDK: keep its own defaults from retrying behind our back.
os.environ.setdefault("OCI_SDK_DEFAULT_RETRY_ENABLED", "false")

import oci

logger = logging.getLogger(__name__)

SERVICES = (
    "object_storage",
    "vaults",
    "secrets",
    "load_balancer",
    "certificates_management",
    "certificates",
    "kms_vault",
    "monitoring",
    "notifications",
    "dns",
    "functions_management",
)
_CLIENT_CLASSES = {
    "object_storage": "oci.object_storage.ObjectStorageClient",
    "vaults": "oci.vault.VaultsClient",
    "secrets": "oci.secrets.SecretsClient",
    "load_balancer": "oci.load_balancer.LoadBalancerClient",
    "certificates_management": "oci.certificates_management.CertificatesManagementClient",
    "certificates": "oci.certificates.CertificatesClient",
    "kms_vault": "oci.key_management.KmsVaultClient",
    # PostMetricData only: its endpoint is telemetry-ingestion.<region> (oci_monitoring.py).
    "monitoring": "oci.monitoring.MonitoringClient",
    "notifications": "oci.ons.NotificationDataPlaneClient",
    # dns-01's TXT records (oci_dns.py).
    "dns": "oci.dns.DnsClient",
    # GetFunction only: the function's own invoke endpoint, for fan-out (renewer.fanout).
    "functions_management": "oci.functions.FunctionsManagementClient",
}
_TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRANSIENT_CONFLICTS = frozenset({"IncorrectState", "LockConflict"})


@dataclass(frozen=True, slots=True)
class OciSettings:
    """How to reach OCI.

    ``auth``: ``resource_principal`` (in the function) or ``config_file`` (``config_file`` +
    ``profile``, default ``~/.oci/config`` / ``DEFAULT``). ``region`` overrides the signer's.
    ``endpoints`` maps a service name of :data:`SERVICES` to a base URL. ``retry_attempts`` and
    ``retry_seconds`` bound each call's retries; ``retry_backoff`` is the first wait in seconds
    (doubling, plus up to as much jitter; tests set it near zero); ``timeout`` is (connect,
    read) seconds.
    """

    auth: str = "resource_principal"
    config_file: str | None = None
    profile: str | None = None
    region: str | None = None
    endpoints: Mapping[str, str] = field(default_factory=dict)
    retry_attempts: int = 4
    retry_seconds: float = 30.0
    retry_backoff: float = 1.0
    timeout: tuple[float, float] = (10.0, 60.0)

    def __post_init__(self) -> None:
        if self.auth not in ("resource_principal", "config_file"):
            msg = f"oci auth must be 'resource_principal' or 'config_file', not {self.auth!r}"
            raise ConfigError(msg)
        unknown = set(self.endpoints) - set(SERVICES)
        if unknown:
            msg = (
                f"unknown OCI endpoint override(s) {', '.join(sorted(unknown))};"
                f" the services are: {', '.join(SERVICES)}"
            )
            raise ConfigError(msg)
        if self.retry_backoff < 0:
            msg = "retry_backoff must not be negative"
            raise ConfigError(msg)
        if self.retry_attempts < 1:
            msg = "retry_attempts must be at least 1 (1 = no retry)"
            raise ConfigError(msg)


def retry_strategy(settings: OciSettings) -> Any:  # noqa: ANN401 - an SDK strategy object
    """The bounded retry strategy every client uses (no retry when attempts == 1)."""
    if settings.retry_attempts == 1:
        return oci.retry.NoneRetryStrategy()
    return oci.retry.RetryStrategyBuilder(
        max_attempts=settings.retry_attempts,
        total_elapsed_time_seconds=int(settings.retry_seconds),
        retry_max_wait_between_calls_seconds=min(8, int(settings.retry_seconds)),
        # The SDK documents ints but computes in floats: sub-second waits work.
        retry_base_sleep_time_seconds=settings.retry_backoff,
        decorrelated_jitter=settings.retry_backoff,
        service_error_retry_on_any_5xx=True,
    ).get_retry_strategy()


class _DeadlineRetry:
    """The SDK retry strategy ``inner``, ended by ``deadline_of()`` (see the module docstring).

    The SDK calls ``make_retrying_call`` for every operation, so this is where one operation's
    attempts and back-offs are held to the run's deadline.
    """

    def __init__(self, inner: Any, deadline_of: DeadlineOf) -> None:  # noqa: ANN401 - an SDK strategy
        self._inner = inner
        self._deadline_of = deadline_of
        self._max_wait = float(getattr(inner, "max_wait_between_calls_seconds", 0) or 0)
        if hasattr(inner, "do_sleep"):
            sleep = inner.do_sleep

            def do_sleep(attempt: int, exception: BaseException) -> None:
                left = remaining(self._deadline_of)
                if left is not None and left <= self._max_wait:
                    raise exception  # no retry can finish in time: the attempt's own error
                sleep(attempt, exception)

            inner.do_sleep = do_sleep

    def add_circuit_breaker_callback(self, callback: Callable[..., Any]) -> None:
        """Passed on to the SDK strategy (the SDK calls it for every retrying strategy)."""
        add = getattr(self._inner, "add_circuit_breaker_callback", None)
        if add is not None:
            add(callback)

    def make_retrying_call(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:  # noqa: ANN401
        """``func`` with the SDK's retries, every attempt within the deadline."""

        def attempt(*attempt_args: Any, **attempt_kwargs: Any) -> Any:  # noqa: ANN401
            left = remaining(self._deadline_of)
            if left is not None and left <= 0:
                msg = "OCI request not sent: the run's deadline has passed"
                raise TransientError(msg)
            try:
                return func(*attempt_args, **attempt_kwargs)
            except Exception as exc:
                left = remaining(self._deadline_of)
                if left is not None and left <= 0 and not isinstance(exc, RenewerError):
                    msg = f"OCI did not answer before the run's deadline ({type(exc).__name__})"
                    raise TransientError(msg) from exc
                raise

        return self._inner.make_retrying_call(attempt, *args, **kwargs)


class OciClients:
    """Lazily built SDK clients sharing one signer and one retry policy.

    Each client is created once, and the SDK's clients are safe to share between threads for
    independent calls. ``deadline`` (a ``time.monotonic()`` instant; see :meth:`set_deadline`)
    bounds every call of every client, total time and retries included.

    Raises:
        ConfigError: credentials cannot be loaded (no resource-principal environment, a
            missing or invalid config file or profile) — the message says which.

    """

    def __init__(self, settings: OciSettings, *, deadline: float | None = None) -> None:
        self.settings = settings
        # A one-slot holder, not a bound method: the SDK objects that read it must not keep
        # this instance alive (a warm container builds one per invocation).
        self._deadline = [deadline]
        self._config, self._signer = _credentials(settings)
        self._retry = _DeadlineRetry(retry_strategy(settings), _reader(self._deadline))
        # Built once per instance, shared by threads. Not functools.cache on the methods: its
        # process-wide cache would keep every instance (and its HTTP connections) alive, and a
        # warm function container builds one instance per invocation.
        self._built: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()
        self._namespace: str | None = None

    def set_deadline(self, deadline: float | None) -> None:
        """End every call, of clients built before or after, by ``deadline`` (None: no bound).

        The run's deadline as a ``time.monotonic()`` instant: a call in flight when it passes is
        cut and raises :class:`TransientError`; no call or retry starts after it.
        """
        self._deadline[0] = deadline

    def deadline(self) -> float | None:
        """The deadline every call ends by, or None."""
        return self._deadline[0]

    def remaining(self) -> float | None:
        """Seconds left before the deadline (negative once passed), None without one."""
        deadline = self._deadline[0]
        return None if deadline is None else deadline - time.monotonic()

    def client(self, service: str) -> Any:  # noqa: ANN401 - the SDK's client classes
        """The SDK client for ``service`` (one of :data:`SERVICES`)."""
        return self._client(service)

    def _client(self, service: str) -> Any:  # noqa: ANN401
        return self._build(_CLIENT_CLASSES[service], self.settings.endpoints.get(service))

    def kms_management(self, management_endpoint: str) -> Any:  # noqa: ANN401
        """``oci.key_management.KmsManagementClient`` for one vault's management endpoint.

        Key Management has no regional endpoint for keys: each vault answers at the
        ``management_endpoint`` its GetVault returns.
        """
        return self._build("oci.key_management.KmsManagementClient", management_endpoint)

    def functions_invoke(self, invoke_endpoint: str) -> Any:  # noqa: ANN401
        """``oci.functions.FunctionsInvokeClient`` for a function's ``invoke_endpoint``.

        Like a vault's keys, a function answers at the endpoint its GetFunction returns.
        """
        return self._build("oci.functions.FunctionsInvokeClient", invoke_endpoint)

    def _build(self, qualified: str, endpoint: str | None) -> Any:  # noqa: ANN401
        key = (qualified, endpoint)
        with self._lock:
            built = self._built.get(key)
            if built is None:
                built = self._built[key] = self._new(qualified, endpoint)
            return built

    def namespace(self) -> str:
        """The tenancy's Object Storage namespace: one GetNamespace (no policy needed), cached.

        Raises:
            ConfigError / TransientError: as :func:`translate` says.

        """
        if self._namespace is None:
            with translate("look up the Object Storage namespace"):
                self._namespace = str(self.object_storage.get_namespace().data)
        return self._namespace

    def close(self) -> None:
        """Close every client's HTTP connections (the instance may still be used after)."""
        with self._lock:
            built, self._built = list(self._built.values()), {}
        for client in built:
            session = getattr(getattr(client, "base_client", None), "session", None)
            if session is not None:
                session.close()

    def _new(self, qualified: str, endpoint: str | None) -> Any:  # noqa: ANN401
        module_name, _, class_name = qualified.rpartition(".")
        module = __import__(module_name, fromlist=[class_name])
        kwargs: dict[str, Any] = {
            "retry_strategy": self._retry,
            "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
            "timeout": self.settings.timeout,
        }
        if self._signer is not None:
            kwargs["signer"] = self._signer
        if endpoint:
            kwargs["service_endpoint"] = endpoint
        client = getattr(module, class_name)(self._config, **kwargs)
        session = getattr(getattr(client, "base_client", None), "session", None)
        if session is not None:
            bound_session(session, _reader(self._deadline))
        return client

    @property
    def object_storage(self) -> Any:  # noqa: ANN401
        """``oci.object_storage.ObjectStorageClient``."""
        return self._client("object_storage")

    @property
    def vaults(self) -> Any:  # noqa: ANN401
        """``oci.vault.VaultsClient``."""
        return self._client("vaults")

    @property
    def secrets(self) -> Any:  # noqa: ANN401
        """``oci.secrets.SecretsClient``."""
        return self._client("secrets")

    @property
    def load_balancer(self) -> Any:  # noqa: ANN401
        """``oci.load_balancer.LoadBalancerClient``."""
        return self._client("load_balancer")

    @property
    def certificates_management(self) -> Any:  # noqa: ANN401
        """``oci.certificates_management.CertificatesManagementClient``."""
        return self._client("certificates_management")

    @property
    def certificates(self) -> Any:  # noqa: ANN401
        """``oci.certificates.CertificatesClient``."""
        return self._client("certificates")

    @property
    def dns(self) -> Any:  # noqa: ANN401
        """``oci.dns.DnsClient`` (dns-01 TXT records)."""
        return self._client("dns")

    @property
    def kms_vault(self) -> Any:  # noqa: ANN401
        """``oci.key_management.KmsVaultClient`` (GetVault: state and management endpoint)."""
        return self._client("kms_vault")


def _reader(slot: list[float | None]) -> DeadlineOf:
    return lambda: slot[0]


def _credentials(settings: OciSettings) -> tuple[dict[str, Any], Any]:
    if settings.auth == "resource_principal":
        try:
            signer = oci.auth.signers.get_resource_principals_signer()
        except (OSError, ValueError, KeyError) as exc:
            msg = (
                "resource-principal credentials are not available (OCI_RESOURCE_PRINCIPAL_*"
                " environment); inside OCI Functions they always are — elsewhere use the"
                " config-file auth with an OCI CLI profile"
            )
            raise ConfigError(msg) from exc
        config: dict[str, Any] = {"region": settings.region} if settings.region else {}
        return config, signer
    location = settings.config_file or oci.config.DEFAULT_LOCATION
    profile = settings.profile or oci.config.DEFAULT_PROFILE
    try:
        config = oci.config.from_file(file_location=location, profile_name=profile)
        oci.config.validate_config(config)
    except oci.exceptions.ConfigFileNotFound as exc:
        msg = f"OCI config file {location} not found; create it with `oci setup config`"
        raise ConfigError(msg) from exc
    except oci.exceptions.ProfileNotFound as exc:
        msg = f"profile {profile!r} is not in the OCI config file {location}"
        raise ConfigError(msg) from exc
    except (oci.exceptions.InvalidConfig, oci.exceptions.InvalidKeyFilePath) as exc:
        msg = f"profile {profile!r} in {location} is incomplete or invalid: {exc}"
        raise ConfigError(msg) from exc
    if settings.region:
        config["region"] = settings.region
    return config, None


@contextlib.contextmanager
def translate(action: str) -> Iterator[None]:
    """Turn ``oci`` exceptions raised inside the block into :mod:`renewer.errors`.

    401/403/404 and other 4xx are :class:`ConfigError` (wrong OCID, missing policy, bad input:
    retrying will not help); 429, 5xx and 409 IncorrectState/LockConflict are
    :class:`TransientError`; timeouts and connection failures too. The message names ``action``
    and carries OCI's code, message and ``opc-request-id``; never request bodies.
    """
    try:
        yield
    except RenewerError:
        raise
    except oci.exceptions.ServiceError as exc:
        request_id = exc.request_id or (exc.headers or {}).get("opc-request-id")
        text = (
            f"{action}: OCI answered {exc.status} {exc.code}: {exc.message}"
            f" (opc-request-id {request_id})"
        )
        error: RenewerError
        if exc.status in _TRANSIENT_STATUSES or (
            exc.status == 409 and exc.code in _TRANSIENT_CONFLICTS  # noqa: PLR2004
        ):
            error = TransientError(text)
        else:
            if exc.status == 404 and exc.code in ("NotAuthorizedOrNotFound", "BucketNotFound"):  # noqa: PLR2004
                text += "; check the OCID/name and that a policy grants the function access"
            elif exc.code == "NamespaceNotFound":
                text += "; check oci.namespace (leave it null to have it looked up)"
            error = ConfigError(text)
        error.oci_status, error.oci_code = exc.status, exc.code
        raise error from exc
    except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout) as exc:
        msg = f"{action}: cannot reach OCI ({type(exc).__name__})"
        raise TransientError(msg) from exc
