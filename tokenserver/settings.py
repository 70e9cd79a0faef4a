"""The token server's settings, read from the environment and validated before anything starts.

Every variable (the Terraform module sets the first six on the container instance)::

    TOKEN_SERVER_BUCKET        required: the challenge bucket the renewer writes tokens to
    TOKEN_SERVER_NAMESPACE     the Object Storage namespace (looked up with GetNamespace if unset)
    TOKEN_SERVER_PORT          listening port (default 8080; 0 = a free port, for tests)
    OCI_AUTH                   resource_principal (default; OCI Container Instances),
                               instance_principal (a compute instance), or config_file (local runs)
    OCI_REGION                 overrides the region the signer reports (needed for config_file
                               profiles without one)
    TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT
                               base URL of Object Storage (the sandbox's emulator; dedicated
                               regions); otherwise the SDK derives it from the region
    TOKEN_SERVER_HOST          address to bind (default 0.0.0.0)
    OCI_CONFIG_FILE, OCI_CONFIG_PROFILE
                               the profile for OCI_AUTH=config_file (default ~/.oci/config, DEFAULT)

Tuning (defaults are what production wants; see docs/token-server.md for the trade-offs)::

    TOKEN_SERVER_CACHE_SECONDS           5    how long a found token is served from memory
    TOKEN_SERVER_NEGATIVE_CACHE_SECONDS  1    how long "no such token" is remembered
    TOKEN_SERVER_STORAGE_TIMEOUT_SECONDS 4    a request waits this long for Object Storage
    TOKEN_SERVER_STORAGE_THREADS         8    concurrent GetObject calls at most
    TOKEN_SERVER_MAX_PENDING_FETCHES     32   distinct tokens being fetched (running + queued);
                                              beyond it a miss is answered 503 at once
    TOKEN_SERVER_MAX_CONNECTIONS         512  open client connections; beyond it 503 + close
    TOKEN_SERVER_HEADER_TIMEOUT_SECONDS  10   a request's head must arrive within this
    TOKEN_SERVER_IDLE_TIMEOUT_SECONDS    65   an idle kept-alive connection is closed after this

Every error names the variable and what it accepts.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

AUTH_MODES = ("resource_principal", "instance_principal", "config_file")
# Object Storage bucket names: letters, digits, '-', '_' and '.', 1-256 characters (OCI docs).
_BUCKET = re.compile(r"[A-Za-z0-9._-]{1,256}")
_NAMESPACE = re.compile(r"[a-z0-9]{1,64}")


def _described(text: str) -> str:
    """What a rejected value is, without its content (its length).

    A secret pasted into the wrong variable must not reach the log: the renewer's rule
    (renewer/untrusted.py), which this package, importing no renewer code, applies itself.
    """
    if not text:
        return "an empty value"
    return f"a value of {len(text):,} character{'s' if len(text) != 1 else ''}"


class SettingsError(ValueError):
    """A variable is missing or invalid; the message names it and what it accepts."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the token server needs; build with :meth:`from_env` or directly (tests).

    Seconds are floats, counts ints; :meth:`__post_init__` checks every bound.
    """

    bucket: str
    namespace: str | None = None
    host: str = "0.0.0.0"  # noqa: S104 - a container's only interface faces the LB's subnet
    port: int = 8080
    auth: str = "resource_principal"
    region: str | None = None
    object_storage_endpoint: str | None = None
    config_file: str | None = None
    profile: str | None = None
    cache_seconds: float = 5.0
    negative_cache_seconds: float = 1.0
    storage_timeout: float = 4.0
    storage_threads: int = 8
    max_pending_fetches: int = 32
    max_connections: int = 512
    header_timeout: float = 10.0
    idle_timeout: float = 65.0

    def __post_init__(self) -> None:  # noqa: C901 - one check per field, in field order
        if not _BUCKET.fullmatch(self.bucket):
            raise SettingsError(
                "TOKEN_SERVER_BUCKET is required: the name of the challenge bucket"
                " (letters, digits, '.', '-', '_'), e.g. TOKEN_SERVER_BUCKET=acme-challenges"
            )
        if self.namespace is not None and not _NAMESPACE.fullmatch(self.namespace):
            raise SettingsError(
                f"TOKEN_SERVER_NAMESPACE ({_described(self.namespace)}) is not an Object Storage"
                " namespace"
                " (lower-case letters and digits); leave it unset to look it up"
            )
        if self.auth not in AUTH_MODES:
            raise SettingsError(
                f"OCI_AUTH must be one of {', '.join(AUTH_MODES)}, not {_described(self.auth)}"
            )
        if not 0 <= self.port <= 65535:  # noqa: PLR2004 - the TCP port range
            raise SettingsError(f"TOKEN_SERVER_PORT must be 0-65535, not {self.port}")
        endpoint = self.object_storage_endpoint
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise SettingsError(
                "TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT must be a base URL such as"
                f" https://objectstorage.eu-frankfurt-1.oraclecloud.com, not {_described(endpoint)}"
            )
        for name, value in (
            ("TOKEN_SERVER_CACHE_SECONDS", self.cache_seconds),
            ("TOKEN_SERVER_NEGATIVE_CACHE_SECONDS", self.negative_cache_seconds),
        ):
            if not 0 <= value <= 300:  # noqa: PLR2004 - a token lives minutes, not hours
                raise SettingsError(f"{name} must be between 0 and 300 seconds, not {value}")
        for name, value in (
            ("TOKEN_SERVER_STORAGE_TIMEOUT_SECONDS", self.storage_timeout),
            ("TOKEN_SERVER_HEADER_TIMEOUT_SECONDS", self.header_timeout),
            ("TOKEN_SERVER_IDLE_TIMEOUT_SECONDS", self.idle_timeout),
        ):
            if not 0 < value <= 3600:  # noqa: PLR2004
                raise SettingsError(f"{name} must be above 0 and at most 3600 seconds, not {value}")
        for name, count in (
            ("TOKEN_SERVER_STORAGE_THREADS", self.storage_threads),
            ("TOKEN_SERVER_MAX_PENDING_FETCHES", self.max_pending_fetches),
            ("TOKEN_SERVER_MAX_CONNECTIONS", self.max_connections),
        ):
            if not 1 <= count <= 100_000:  # noqa: PLR2004
                raise SettingsError(f"{name} must be between 1 and 100000, not {count}")
        if self.max_pending_fetches < self.storage_threads:
            raise SettingsError(
                "TOKEN_SERVER_MAX_PENDING_FETCHES must be at least TOKEN_SERVER_STORAGE_THREADS"
                f" ({self.max_pending_fetches} < {self.storage_threads})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read the variables of the module docstring from ``env`` (usually ``os.environ``).

        Raises:
            SettingsError: a variable is missing or invalid (the message names it).

        """

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        defaults = {f.name: f.default for f in dataclasses.fields(cls)}

        def number(name: str, field: str) -> float:
            default = defaults[field]
            if not isinstance(default, int | float):  # pragma: no cover - a typo in this module
                raise TypeError(field)
            text = get(name)
            if text is None:
                return default
            try:
                value: float = int(text) if isinstance(default, int) else float(text)
            except ValueError:
                raise SettingsError(f"{name} must be a number, not {_described(text)}") from None
            if not math.isfinite(value):
                raise SettingsError(f"{name} must be a finite number, not {_described(text)}")
            return value

        return cls(
            bucket=get("TOKEN_SERVER_BUCKET") or "",
            namespace=get("TOKEN_SERVER_NAMESPACE"),
            host=get("TOKEN_SERVER_HOST") or str(defaults["host"]),
            port=int(number("TOKEN_SERVER_PORT", "port")),
            auth=get("OCI_AUTH") or "resource_principal",
            region=get("OCI_REGION"),
            object_storage_endpoint=get("TOKEN_SERVER_OBJECT_STORAGE_ENDPOINT"),
            config_file=get("OCI_CONFIG_FILE"),
            profile=get("OCI_CONFIG_PROFILE"),
            cache_seconds=number("TOKEN_SERVER_CACHE_SECONDS", "cache_seconds"),
            negative_cache_seconds=number(
                "TOKEN_SERVER_NEGATIVE_CACHE_SECONDS", "negative_cache_seconds"
            ),
            storage_timeout=number("TOKEN_SERVER_STORAGE_TIMEOUT_SECONDS", "storage_timeout"),
            storage_threads=int(number("TOKEN_SERVER_STORAGE_THREADS", "storage_threads")),
            max_pending_fetches=int(
                number("TOKEN_SERVER_MAX_PENDING_FETCHES", "max_pending_fetches")
            ),
            max_connections=int(number("TOKEN_SERVER_MAX_CONNECTIONS", "max_connections")),
            header_timeout=number("TOKEN_SERVER_HEADER_TIMEOUT_SECONDS", "header_timeout"),
            idle_timeout=number("TOKEN_SERVER_IDLE_TIMEOUT_SECONDS", "idle_timeout"),
        )
