"""Request/response plumbing shared by every emulated OCI service.

A service is a class with a ``routes()`` method returning :class:`Route`s. Each route names the
OCI operation it implements (``PutObject``, ``UpdateListener``...), which is what policies, fault
rules and the request log refer to. Handlers take a :class:`Request` and return a :class:`Reply`
or raise :class:`OciError`; they never touch sockets.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

# The tenancy OCID a fixture gets when it names none.
DEFAULT_TENANCY = "ocid1.tenancy.oc1..emulatortenancy"


class OciError(Exception):
    """An OCI error answer: HTTP status and the JSON ``{"code", "message"}`` the SDK parses."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def not_found(what: str = "resource") -> OciError:
    """OCI's answer both for "missing" and for "not allowed": 404 NotAuthorizedOrNotFound."""
    return OciError(
        404,
        "NotAuthorizedOrNotFound",
        f"Authorization failed or requested {what} not found.",
    )


def invalid(message: str, code: str = "InvalidParameter") -> OciError:
    """400 InvalidParameter (or another 400 code) with a message naming the field."""
    return OciError(400, code, message)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who signed a request: an API-key user or a resource principal (a function, a container).

    ``groups`` are IAM group names (users) or dynamic-group names (resources) the principal
    belongs to; policies grant to those.
    """

    kind: str  # "user" | "resource"
    id: str
    tenancy: str
    compartment: str | None = None
    groups: frozenset[str] = frozenset()


@dataclass(slots=True)
class Request:
    """One decoded HTTP request as handlers see it."""

    method: str
    raw_path: str  # exactly as sent, without the query (signatures cover it)
    query_string: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    request_id: str
    params: dict[str, str] = field(default_factory=dict)  # path parameters, percent-decoded
    operation: str = ""
    principal: Principal | None = None

    @property
    def query(self) -> dict[str, list[str]]:
        """Query parameters (decoded)."""
        return parse_qs(self.query_string, keep_blank_values=True)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """First value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def header(self, name: str, default: str | None = None) -> str | None:
        """A request header (case-insensitive)."""
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:  # noqa: ANN401 - arbitrary JSON
        """The body as JSON; 400 InvalidParameter when it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise invalid("The request body is not valid JSON.") from exc

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 when it is anything else."""
        value = self.json()
        if not isinstance(value, dict):
            raise invalid("The request body must be a JSON object.")
        return value


@dataclass(slots=True)
class Reply:
    """What a handler answers. ``body`` may be bytes, or any JSON value (serialized for it)."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        """The body on the wire."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


Handler = Callable[[Request], Reply]


@dataclass(frozen=True, slots=True)
class Route:
    """``method`` + path template -> handler, named by its OCI operation.

    Templates use ``{name}`` for one path segment and ``{name+}`` for the rest of the path
    (object names may contain ``/``). ``signed=False`` routes need no signature (PAR reads).
    ``mutating`` routes persist the state after they succeed.
    """

    method: str
    template: str
    operation: str
    handler: Handler
    signed: bool = True
    mutating: bool | None = None

    def pattern(self) -> re.Pattern[str]:
        """The compiled template."""
        regex = "^"
        for part in re.split(r"(\{[A-Za-z_]+\+?\})", self.template):
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(regex + "$")

    @property
    def changes_state(self) -> bool:
        """Whether a success must be persisted."""
        if self.mutating is not None:
            return self.mutating
        return self.method not in ("GET", "HEAD")


class Router:
    """Finds the route for a method and raw path."""

    def __init__(self) -> None:
        self._routes: list[tuple[Route, re.Pattern[str]]] = []

    def add(self, route: Route) -> None:
        """Register ``route``; earlier routes win on overlap."""
        self._routes.append((route, route.pattern()))

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route and decoded path parameters, or None."""
        for route, pattern in self._routes:
            if route.method != method:
                continue
            found = pattern.match(raw_path)
            if found:
                return route, {k: unquote(v) for k, v in found.groupdict().items()}
        return None

    def operations(self) -> list[str]:
        """Every operation name (for docs and fault-rule validation)."""
        return sorted({route.operation for route, _ in self._routes})


def new_ocid(resource_type: str, region: str = "phx") -> str:
    """A fresh OCID of the documented shape ``ocid1.<type>.oc1.<region>.<unique>``."""
    return f"ocid1.{resource_type}.oc1.{region}.{secrets.token_hex(30)}"


def rfc3339(when: datetime | None = None) -> str:
    """OCI's timestamp format: RFC 3339 with milliseconds and ``Z``."""
    when = when or datetime.now(UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def new_etag() -> str:
    """An opaque entity tag."""
    return secrets.token_hex(16)


class StateStore:
    """The emulator's whole state: one JSON-serializable dict, one lock, atomic saves.

    Services keep their data under ``data[<service name>]``. ``lock`` serializes every handler,
    which keeps the emulator simple and its answers consistent; it is re-entrant so a handler
    may call helpers that take it too.
    """

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self.lock = threading.RLock()
        self.data: dict[str, Any] = {}
        self.loaded = False  # load() found saved state

    def section(self, name: str) -> dict[str, Any]:
        """The (created on first use) state of one service."""
        with self.lock:
            section: dict[str, Any] = self.data.setdefault(name, {})
            return section

    def save(self) -> None:
        """Write the state to ``path`` atomically (temp file + rename); no-op without a path."""
        if not self.path:
            return
        with self.lock:
            tmp = f"{self.path}.tmp"
            with open(tmp, "w", encoding="utf-8") as handle:  # noqa: PTH123
                json.dump(self.data, handle, sort_keys=True)
            os.replace(tmp, self.path)  # noqa: PTH105 - atomic rename is the point

    def load(self) -> bool:
        """Read the state from ``path``; False when there is nothing to read."""
        if not self.path:
            return False
        try:
            with open(self.path, encoding="utf-8") as handle:  # noqa: PTH123
                loaded = json.load(handle)
        except FileNotFoundError:
            return False
        with self.lock:
            self.data = loaded
            self.loaded = True
        return True


def now() -> float:
    """Epoch seconds: the emulator's clock for timed state (work requests, PAR expiry).

    Wall-clock rather than monotonic, because state survives a restart of the emulator.
    """
    return time.time()
