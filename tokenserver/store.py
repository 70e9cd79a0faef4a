"""Reading key authorizations from the challenge bucket with the real ``oci`` SDK (blocking).

The renewer's :class:`~renewer.adapters.oci_object_storage.ObjectStorageChallengeStore` writes
each http-01 key authorization as the object ``.well-known/acme-challenge/<token>`` (text/plain)
of the challenge bucket; :class:`ObjectStorageTokens` reads it back. Its calls block, so the
server runs them on a small thread pool (:mod:`tokenserver.cache`), never on the event loop.

Credentials (``OCI_AUTH``): resource principals (OCI Container Instances inject the
``OCI_RESOURCE_PRINCIPAL_*`` variables), instance principals (a compute instance in a dynamic
group), or an OCI config-file profile (a workstation). The policy the token server needs is
``Allow dynamic-group <token-server-dg> to read objects in compartment <c> where
target.bucket.name = '<challenge bucket>'``; GetNamespace needs none.

The SDK's own retries and circuit breaker are off: a CA validator waits seconds, not the SDK's
default 600 s retry budget, and it retries on its own. One bounded attempt per miss, a timeout, and
a clear 502/503 are what a backend behind a load balancer should give.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import oci

from tokenserver.settings import Settings, SettingsError

logger = logging.getLogger(__name__)

CHALLENGE_PREFIX = ".well-known/acme-challenge/"
# A key authorization is "<token>.<base64url SHA-256 thumbprint>": ~87 bytes for a 43-character
# token, ~300 for the longest token we accept. Anything much bigger is not one: refuse to relay it.
MAX_OBJECT_BYTES = 4096
_UNAVAILABLE_STATUSES = frozenset({429, 503, 504})


class StorageError(Exception):
    """Object Storage could not answer; the message is for logs (names, codes, request ids)."""

    #: the HTTP status the token server answers with (502: OCI answered wrongly; 503: try later)
    status = 502


class StorageUnavailable(StorageError):
    """Object Storage is slow, throttling, unreachable, or every fetch slot is busy."""

    status = 503


def build_client(settings: Settings) -> Any:  # noqa: ANN401 - the SDK's client class
    """An ``ObjectStorageClient`` for ``settings`` (credentials loaded now, no request made).

    Raises:
        SettingsError: the credentials of ``OCI_AUTH`` cannot be loaded (the message says why).

    """
    config: dict[str, Any]
    signer: Any = None
    if settings.auth == "resource_principal":
        try:
            signer = oci.auth.signers.get_resource_principals_signer()
        except (OSError, ValueError, KeyError) as exc:
            raise SettingsError(
                "OCI_AUTH=resource_principal, but the OCI_RESOURCE_PRINCIPAL_* environment is"
                " missing or unreadable; OCI Container Instances provide it. Elsewhere set"
                " OCI_AUTH=instance_principal (a compute instance) or OCI_AUTH=config_file"
                f" ({type(exc).__name__})"
            ) from exc
        config = {}
    elif settings.auth == "instance_principal":
        try:
            signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
        except Exception as exc:
            raise SettingsError(
                "OCI_AUTH=instance_principal, but the instance metadata service did not give"
                " instance-principal credentials (is this a compute instance in a dynamic"
                f" group?) ({type(exc).__name__})"
            ) from exc
        config = {}
    else:
        location = settings.config_file or oci.config.DEFAULT_LOCATION
        profile = settings.profile or oci.config.DEFAULT_PROFILE
        try:
            config = oci.config.from_file(file_location=location, profile_name=profile)
            oci.config.validate_config(config)
        except (
            oci.exceptions.ConfigFileNotFound,
            oci.exceptions.ProfileNotFound,
            oci.exceptions.InvalidConfig,
            oci.exceptions.InvalidKeyFilePath,
        ) as exc:
            raise SettingsError(
                f"OCI_AUTH=config_file: profile {profile!r} of {location} is missing or invalid"
                " (OCI_CONFIG_FILE, OCI_CONFIG_PROFILE); create it with `oci setup config`"
            ) from exc
    if settings.region:
        config["region"] = settings.region
    kwargs: dict[str, Any] = {
        "retry_strategy": oci.retry.NoneRetryStrategy(),
        "circuit_breaker_strategy": oci.circuit_breaker.NoCircuitBreakerStrategy(),
        # (connect, read): a thread is never held longer than one storage timeout.
        "timeout": (min(3.0, settings.storage_timeout), settings.storage_timeout),
    }
    if signer is not None:
        kwargs["signer"] = signer
    if settings.object_storage_endpoint:
        kwargs["service_endpoint"] = settings.object_storage_endpoint
    try:
        return oci.object_storage.ObjectStorageClient(config, **kwargs)
    except (ValueError, oci.exceptions.ClientError) as exc:
        raise SettingsError(
            "cannot build the Object Storage client: set OCI_REGION or"
            f" TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT ({type(exc).__name__}: {exc})"
        ) from exc


class ObjectStorageTokens:
    """Key authorizations of one challenge bucket. Blocking; safe to call from many threads.

    :meth:`get` answers the object's bytes, or None when there is no such object (404
    ObjectNotFound). Anything else raises :class:`StorageError` (OCI answered an error: a
    missing bucket or policy is a 404 BucketNotFound) or :class:`StorageUnavailable` (throttled,
    5xx that asks for patience, timeout, unreachable). The namespace, when not configured, is
    looked up once with GetNamespace (no policy needed) and remembered; a failed lookup is
    retried on the next call. Object bodies are never logged.
    """

    def __init__(self, client: Any, *, bucket: str, namespace: str | None = None) -> None:  # noqa: ANN401
        self._client = client
        self.bucket = bucket
        self._namespace = namespace
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStorageTokens:
        """A reader with credentials of ``settings`` (see :func:`build_client`)."""
        return cls(build_client(settings), bucket=settings.bucket, namespace=settings.namespace)

    def namespace(self) -> str:
        """The Object Storage namespace (looked up once when not configured)."""
        if self._namespace is not None:
            return self._namespace
        with self._lock:
            if self._namespace is None:
                response = self._call(
                    "look up the Object Storage namespace", self._client.get_namespace
                )
                self._namespace = str(response.data)
            return self._namespace

    def get(self, token: str) -> bytes | None:
        """The key authorization stored for ``token`` (already validated), or None."""
        namespace = self.namespace()
        name = f"{CHALLENGE_PREFIX}{token}"
        action = f"read {name!r} from bucket {self.bucket!r}"
        response = self._call(
            action, self._client.get_object, namespace, self.bucket, name, missing_is_none=True
        )
        if response is None:
            return None
        stream = response.data  # the SDK's streamed HTTP response: read it ourselves, bounded
        body = bytearray()
        try:
            for chunk in stream.iter_content(chunk_size=MAX_OBJECT_BYTES):
                body += chunk
                if len(body) > MAX_OBJECT_BYTES:
                    raise StorageError(
                        f"{action}: more than {MAX_OBJECT_BYTES} bytes; a key authorization is"
                        " far shorter, so this object is not one: not serving it"
                    )
        except OSError as exc:  # requests' errors derive from IOError (timeouts, resets)
            raise StorageUnavailable(f"{action}: {type(exc).__name__} reading the body") from exc
        finally:
            stream.close()
        return bytes(body)

    def warm_up(self) -> None:
        """Look the namespace up now, so the first validator does not pay for it; logs failures."""
        try:
            logger.info("object storage namespace=%s bucket=%s", self.namespace(), self.bucket)
        except StorageError as exc:
            logger.warning("namespace lookup failed (retried on the first miss): %s", exc)

    def _call(
        self,
        action: str,
        operation: Any,  # noqa: ANN401
        *args: object,
        missing_is_none: bool = False,
    ) -> Any:  # noqa: ANN401 - an SDK response, or None for a missing object
        try:
            return operation(*args)
        except oci.exceptions.ServiceError as exc:
            if missing_is_none and exc.status == 404 and exc.code == "ObjectNotFound":  # noqa: PLR2004
                return None
            request_id = exc.request_id or (exc.headers or {}).get("opc-request-id")
            text = f"{action}: OCI answered {exc.status} {exc.code} (opc-request-id {request_id})"
            if exc.status in _UNAVAILABLE_STATUSES:
                raise StorageUnavailable(text) from exc
            if exc.status == 404:  # noqa: PLR2004
                text += "; check TOKEN_SERVER_BUCKET/NAMESPACE and the policy letting us read it"
            raise StorageError(text) from exc
        except (oci.exceptions.RequestException, oci.exceptions.ConnectTimeout, OSError) as exc:
            raise StorageUnavailable(f"{action}: cannot reach OCI ({type(exc).__name__})") from exc
