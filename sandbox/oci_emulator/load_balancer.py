"""Classic Load Balancer control plane (``/20170115``), asynchronous as OCI's.

Every change is a work request, queued per load balancer, that takes effect when it SUCCEEDS.

Operations
----------
* Load balancers: ``GetLoadBalancer``, ``ListLoadBalancers`` (``compartmentId``, ``displayName``,
  ``lifecycleState``, ``sortBy``/``sortOrder``, ``limit``/``page``), ``ListProtocols``,
  ``ListPolicies``. Load balancers themselves come from the fixture (no create/delete).
* Work requests: ``GetWorkRequest``, ``ListWorkRequests`` (newest first, ``limit``/``page``).
* Certificate bundles: ``CreateCertificate``, ``ListCertificates``, ``DeleteCertificate``.
* Listeners: ``CreateListener``, ``UpdateListener``, ``DeleteListener``.
* Backend sets, hostnames, rule sets, routing policies, path route sets: ``Create*``, ``Get*``,
  ``List*``, ``Update*``, ``Delete*``.
* Backends: ``CreateBackend``, ``GetBackend``, ``ListBackends``, ``UpdateBackend``,
  ``DeleteBackend``; health checkers: ``GetHealthChecker``, ``UpdateHealthChecker``.

How a mutation is handled
-------------------------
1. The target load balancer's due work requests are settled (see below); a missing load balancer,
   or one the caller may not see (:meth:`Emulator.authorize` with its compartment), is
   404 NotAuthorizedOrNotFound.
2. A repeated ``opc-retry-token`` for the same operation answers the original work request again.
3. ``if-match`` that differs from the load balancer's ETag: 412 NoEtagMatch.
4. The body is checked against the SDK model (required fields, enums, ranges, name rules):
   400 MissingParameter / InvalidParameter naming the field.
5. Request-time conflicts against the settled configuration plus the names that queued work
   requests will create: a duplicate name is 409 Conflict, updating or deleting a missing child is
   404, deleting something still referenced (a certificate attached to a listener or backend set,
   a backend set a listener uses...) is 409 Conflict.
6. The answer is **204 with ``opc-work-request-id``** (and the new ``etag``), no body.

The work request is ACCEPTED, then IN_PROGRESS for ``workRequestSeconds``, then SUCCEEDED or
FAILED. Only one runs at a time per load balancer: a work request starts at
``max(its accept time, the end of the previous one on that load balancer)``. Its effect is applied
when it ends, to the configuration as the earlier work requests left it, and only then are the
apply-time checks made: PEM parsing and key/certificate match for a new bundle, and every
reference the change introduces (certificate name, Certificates-service certificate id, backend
set, hostname, rule set, routing policy, path route set, cipher suite, unique listener ports). A
failed check FAILS the work request with ``errorDetails: [{"errorCode": "BAD_INPUT", ...}]`` and
leaves the configuration untouched. Time is modelled lazily with :func:`now` — no threads: every
handler settles the load balancer it touches first, and so do the data-plane accessors.

State schema (``state.section("loadbalancer")``, JSON, persisted and reloaded)
------------------------------------------------------------------------------
::

    {
      "loadBalancers": {
        "<lb ocid>": {
          "config": {...},               # the LoadBalancer JSON exactly as GetLoadBalancer answers
          "privateKeys": {"<certificateName>": "<unencrypted PKCS#8 PEM>"},  # never answered
          "etag": "<hex>",
          "configVersion": 0,            # +1 each time a work request's effect is applied
          "workRequestSeconds": 0.2,
          "workRequests": ["<wr ocid>", ...],          # acceptance order
          "retryTokens": {"<token>": {"operation": "...", "workRequestId": "...", "at": 0.0,
                                      "certificateName": "..."}},   # the last for creates
          "busyConflict": false, "retryTokenAfterDelete": "reject",
          "sparseListeners": {"<listener>": [["sslConfiguration", "verifyDepth"], ...]}
        }
      },
      "workRequests": {
        "<wr ocid>": {
          "id", "loadBalancerId", "compartmentId", "type",   # type = the operation name
          "acceptedAt", "startsAt", "endsAt",                 # epoch seconds
          "outcome": null | "SUCCEEDED" | "FAILED",           # set when settled
          "errorDetails": [{"errorCode": "BAD_INPUT", "message": "..."}],
          "payload": {"kind": "...", ...}                     # the change; dropped once settled
        }
      }
    }

A queued ``CreateCertificate`` keeps its private key in ``payload`` until it is settled.

Fixture (key ``load_balancers``)
--------------------------------
A list of LoadBalancer JSON objects (camelCase, as the API answers them; ``compartmentId``
required, ``id`` generated when absent) plus emulator-only keys: ``workRequestSeconds``
(default 0.2), ``privateKeys`` (``{certificateName: PEM}`` for seeded bundles) and the knobs
``busyConflict``, ``retryTokenAfterDelete`` and ``legacyListeners`` (Assumptions). Omitted fields
get the defaults below; maps may omit the ``name`` inside each entry (the key is the name).

Data-plane API (thread-safe; each call settles first)
-----------------------------------------------------
``settle_all()``, ``load_balancer_ids()``, ``current(lb_id)`` (the settled LoadBalancer JSON or
None), ``listeners(lb_id)``, ``config_version(lb_id)``, ``certificate_material(lb_id, name)`` and
``listener_certificate(lb_id, listener_name)`` (``(cert_chain_pem, private_key_pem)`` or None),
``certificate_ids_in_use()``, and ``port_map()`` / ``publish_port(...)``: an in-memory
``{lb_id: {listener_port: local_port}}`` the data plane fills (empty until it does).

Certificates-service certificates (``sslConfiguration.certificateIds``) are resolved through the
service registered as ``"certificates"``, duck-typed: ``current_material(certificate_id) ->
(cert_chain_pem, private_key_pem) | None`` (None: no such certificate). Without that service no
certificate id resolves.

Assumptions (not documented OCI facts; wire facts §1, §10)
---------------------------------------------------------
* Mutations answer 204 (any 2xx works for the SDK), with ``opc-work-request-id`` and ``etag``.
* Work requests on one load balancer are queued (ACCEPTED) rather than rejected with 409; the
  load balancer stays ACTIVE meanwhile. ``ListWorkRequests`` answers the newest first. A work
  request's ``message`` is a short sentence (OCI's carries workflow details).
* A repeated ``opc-retry-token`` (kept 24 h) answers the first work request; reused for another
  operation it is 409 Conflict. A CreateCertificate token whose bundle has since been deleted is
  ``409 InvalidatedRetryToken`` (the SDK docstring: a retry of the original creation "may be
  rejected" once the resource is gone; the code is assumed, as Vault's); the fixture knob
  ``retryTokenAfterDelete: "replay"`` answers the first (SUCCEEDED) work request instead —
  the other reading of "may". The renewer copes with both.
* ``busyConflict: true`` (fixture knob, per load balancer): a mutation while the load balancer
  has an unfinished work request is ``409 Conflict`` instead of being queued (the stricter
  reading of a busy load balancer; Oracle's ingress controller retries 409 on UpdateListener
  and the Terraform provider retries 409s). A repeated retry token is still answered first.
* ``legacyListeners: true`` (fixture knob): a fixture listener answers GetLoadBalancer with
  the optional fields the fixture left out as null (as a listener created before OCI added
  them reads) until it is written; a written listener answers every field with its default
  (OCI's normalised form). Which fields OCI leaves null is assumed: ``SPARSE_LISTENER_PATHS``.
* ETag: one per load balancer, on every answer about it (the Go/Java SDKs model no ``etag``
  response header; the docstring says one can be read "from a GET or POST response for any
  resource of that load balancer"). It changes when a mutation is accepted and again when a work
  request's effect is applied (not when one fails). ``if-match`` is checked on mutations only.
* ``UpdateListener``, ``UpdateBackendSet``, ``UpdateRuleSet``, ``UpdateRoutingPolicy``... replace
  the resource whole (PUT semantics): an omitted optional field is reset to its default.
* Certificate names: 1-255 of ``[A-Za-z0-9_-]`` (the SDK docstring: "only alphanumeric
  characters, dashes, and underscores"; no dot); the length limit is a guess. Bad PEM, a
  mismatched key, a private key without public certificate or a bundle with neither public nor CA
  certificate fail the work request (BAD_INPUT), not the HTTP request. Expiry is not checked.
* A duplicate name also counts names a queued work request will create (409 at request time).
* Deleting a referenced backend set, hostname, rule set, routing policy or path route set is 409
  Conflict at request time, like the documented certificate case.
* An SSL listener needs exactly one of ``certificateName`` / one ``certificateIds`` entry (400).
* Defaults of omitted fields, where the SDK docstring names none: ``hostnameNames``/
  ``ruleSetNames`` ``[]``; ``connectionConfiguration.idleTimeout`` 60 (300 for TCP);
  ``serverOrderPreference`` DISABLED; ``hasSessionResumption`` true; ``verifyPeerCertificate``
  false; ``verifyDepth`` 1; backend ``weight`` 1; health checker ``retries`` 3,
  ``timeoutInMillis`` 3000, ``intervalInMillis`` 10000, ``port`` 0, ``returnCode`` 200 (HTTP),
  ``urlPath`` "/", ``responseBodyRegex`` ""; load balancer ``shapeName`` "flexible" (10/10 Mbps),
  ``ipAddresses`` ``[127.0.0.1]``, ``ipMode`` IPV4. ``RedirectUri`` fields stay null (null means
  "keep the incoming value", per the docstring).
* Limits the SDK docstrings do not state are unverified: names at most 255 characters;
  ``idleTimeout`` 1-7200 s; backend ``weight`` 1-100; health checker ``retries`` 1-10,
  ``timeoutInMillis`` 1-600000, ``intervalInMillis`` 1000-1800000; ``verifyDepth`` >= 1.
* Listeners may share a port as virtual hosts when they have the same protocol, are all SSL
  (with the same ``protocols``) or all plain, name no hostname in common, and at most one of
  them has no hostnames (the port's default); any other port clash fails the work request.
* The LB's served chain for a bundle is exactly its ``publicCertificate`` (every certificate in
  it, in its order); ``caCertificate`` is never sent to clients: it is the trust anchor for
  ``verifyPeerCertificate``. OCI's documentation tells users to put a chain in the certificate
  file, and nothing published says the LB serves ``caCertificate``; that it does not is assumed.
* "A listener can have only one RedirectRule object for a given original path" (SDK docstring):
  the original path is read as the first PATH condition's value and operator. Two such REDIRECT
  items in one rule set are 400 InvalidParameter at request time; two in different rule sets of
  one listener fail the work request (BAD_INPUT), as does a REDIRECT rule on a listener that is
  not HTTP/HTTP2 ("This rule applies only to HTTP listeners").
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

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

JSON = dict[str, Any]
API = "/20170115"
LB = f"{API}/loadBalancers/{{loadBalancerId}}"

DEFAULT_WORK_REQUEST_SECONDS = 0.2
RETRY_TOKEN_TTL = 24 * 3600.0  # "Retry tokens expire after 24 hours" [SDK docstring]
# A create token reused after its resource was deleted: refused (what the SDK docstring says
# "may" happen, the default) or answered with the first work request again (assumed).
RETRY_TOKEN_AFTER_DELETE = ("reject", "replay")

ACCEPTED, IN_PROGRESS, SUCCEEDED, FAILED = "ACCEPTED", "IN_PROGRESS", "SUCCEEDED", "FAILED"
BAD_INPUT = "BAD_INPUT"

LISTENER_PROTOCOLS = ("HTTP", "HTTP2", "TCP", "GRPC")
POLICIES = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "IP_HASH")
HEALTH_CHECK_PROTOCOLS = ("HTTP", "TCP")
TLS_PROTOCOLS = ("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
DEFAULT_CIPHER_SUITE = "oci-default-ssl-cipher-suite-v1"
PREDEFINED_CIPHER_SUITES = (
    "oci-default-ssl-cipher-suite-v1",
    "oci-modern-ssl-cipher-suite-v1",
    "oci-compatible-ssl-cipher-suite-v1",
    "oci-wider-compatible-ssl-cipher-suite-v1",
    "oci-default-http2-ssl-cipher-suite-v1",
    "oci-default-http2-tls-13-ssl-cipher-suite-v1",
    "oci-default-http2-tls-12-13-ssl-cipher-suite-v1",
    "oci-tls-13-recommended-ssl-cipher-suite-v1",
    "oci-tls-12-13-wider-ssl-cipher-suite-v1",
    "oci-tls-11-12-13-wider-ssl-cipher-suite-v1",
)
# GET may answer it, but "is not accepted as valid input" [SDK docstring of cipherSuiteName].
CUSTOMIZED_CIPHER_SUITE = "oci-customized-ssl-cipher-suite"
ENABLED_DISABLED = ("ENABLED", "DISABLED")
LIFECYCLE_STATES = ("CREATING", "FAILED", "ACTIVE", "DELETING", "DELETED")
PATH_OPERATORS = ("EXACT_MATCH", "FORCE_LONGEST_PREFIX_MATCH", "PREFIX_MATCH", "SUFFIX_MATCH")
REDIRECT_CODES = (301, 302, 303, 307, 308)
HEADER_BUFFER_SIZES = (8, 16, 32, 64)
CONDITION_ATTRIBUTES = ("SOURCE_IP_ADDRESS", "SOURCE_VCN_ID", "SOURCE_VCN_IP_ADDRESS", "PATH")

MAX_NAME = 255
MIN_MAX_CONNECTIONS = 256
CERTIFICATE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
BACKEND_SET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# "must start with a letter or underscore ... can't contain ; ? # / % \ ] [" [DOC routing policies]
ROUTING_POLICY_NAME = re.compile(r"^[A-Za-z_][^;?#/%\\\]\[]{0,254}$")


class _BadInput(Exception):
    """A work request's apply-time check failed; the message goes into ``errorDetails``."""


class InternalError(Exception):
    """OCI's side failed a work request (errorCode ``INTERNAL_ERROR``).

    Tests raise it from an ``EFFECTS`` entry to make a work request end FAILED for a reason
    other than its input.
    """


# ---------------------------------------------------------------------------------------------
# Request-body reading: typed fields whose errors name the field's JSON path.


class _Fields:
    """One JSON object of a request body (or fixture), read field by field.

    Every accessor answers None for an absent or null field unless ``required``, which raises 400
    MissingParameter; a value of the wrong type or outside its enum or range is 400
    InvalidParameter. Messages name the field's path (``sslConfiguration.protocols[1]``).
    """

    def __init__(self, value: object, where: str) -> None:
        if not isinstance(value, dict):
            raise invalid(f"{where or 'The request body'} must be a JSON object.")
        self.data: JSON = value
        self.where = where

    def path(self, key: str) -> str:
        """The JSON path of ``key`` in this object."""
        return f"{self.where}.{key}" if self.where else key

    def raw(self, key: str, *, required: bool = False) -> object:
        """The value as sent; MissingParameter when required and absent."""
        value = self.data.get(key)
        if value is None and required:
            raise invalid(f"{self.path(key)} is required.", code="MissingParameter")
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        """A string field (required strings must not be empty)."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise invalid(f"{self.path(key)} must be a string.")
        if required and not value:
            raise invalid(f"{self.path(key)} must not be empty.", code="MissingParameter")
        return value

    def name(self, key: str, pattern: re.Pattern[str] | None = None, rule: str = "") -> str:
        """A required resource name of at most 255 characters, matching ``pattern``."""
        value = self.text(key, required=True) or ""
        if len(value) > MAX_NAME:
            raise invalid(f"{self.path(key)} is longer than {MAX_NAME} characters.")
        if pattern is not None and not pattern.match(value):
            raise invalid(f"{self.path(key)} {value!r} is not a valid name: {rule}.")
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        low: int | None = None,
        high: int | None = None,
        allowed: tuple[int, ...] = (),
    ) -> int | None:
        """An integer field within ``[low, high]`` and, when given, one of ``allowed``."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"{self.path(key)} must be an integer.")
        if low is not None and value < low:
            raise invalid(f"{self.path(key)} must be at least {low}, not {value}.")
        if high is not None and value > high:
            raise invalid(f"{self.path(key)} must be at most {high}, not {value}.")
        if allowed and value not in allowed:
            choices = ", ".join(str(a) for a in allowed)
            raise invalid(f"{self.path(key)} must be one of {choices}, not {value}.")
        return value

    def flag(self, key: str, *, required: bool = False, default: bool | None = None) -> bool | None:
        """A boolean field (``default`` when absent)."""
        value = self.raw(key, required=required)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise invalid(f"{self.path(key)} must be true or false.")
        return value

    def choice(self, key: str, allowed: tuple[str, ...], *, required: bool = False) -> str | None:
        """A string field that must be one of ``allowed`` (an API enum)."""
        value = self.text(key, required=required)
        if value is not None and value not in allowed:
            raise invalid(f"{self.path(key)} must be one of {', '.join(allowed)}, not {value!r}.")
        return value

    def texts(
        self, key: str, *, allowed: tuple[str, ...] = (), required: bool = False
    ) -> list[str] | None:
        """A list of strings, each one of ``allowed`` when that is given."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise invalid(f"{self.path(key)} must be a list of strings.")
        for i, item in enumerate(value):
            if allowed and item not in allowed:
                raise invalid(
                    f"{self.path(key)}[{i}] must be one of {', '.join(allowed)}, not {item!r}."
                )
        return list(value)

    def child(self, key: str, *, required: bool = False) -> _Fields | None:
        """A nested object."""
        value = self.raw(key, required=required)
        return None if value is None else _Fields(value, self.path(key))

    def children(self, key: str, *, required: bool = False) -> list[_Fields] | None:
        """A list of nested objects."""
        value = self.raw(key, required=required)
        if value is None:
            return None
        if not isinstance(value, list):
            raise invalid(f"{self.path(key)} must be a list.")
        return [_Fields(item, f"{self.path(key)}[{i}]") for i, item in enumerate(value)]


def _default(value: Any, fallback: Any) -> Any:  # noqa: ANN401 - JSON values
    return fallback if value is None else value


# ---------------------------------------------------------------------------------------------
# Models: each normalizer turns a request body (or fixture entry) into the exact JSON the API
# answers, with every field of the SDK response model present.


def _ssl_configuration(fields: _Fields, *, for_listener: bool, from_fixture: bool = False) -> JSON:
    """SSLConfigurationDetails -> SSLConfiguration (defaults from the SDK docstrings)."""
    suite = _default(fields.text("cipherSuiteName"), DEFAULT_CIPHER_SUITE)
    if suite == CUSTOMIZED_CIPHER_SUITE and not from_fixture:
        raise invalid(
            f"{fields.path('cipherSuiteName')} {CUSTOMIZED_CIPHER_SUITE!r} is not accepted as "
            "input; name a predefined or custom cipher suite."
        )
    certificate_name = fields.text("certificateName") or None
    certificate_ids = fields.texts("certificateIds") or None
    if certificate_ids is not None and len(certificate_ids) > 1:
        raise invalid(
            f"{fields.path('certificateIds')}: only a single certificate id may be passed."
        )
    if certificate_name is not None and certificate_ids is not None:
        raise invalid(f"{fields.where}: set either certificateName or certificateIds, not both.")
    if for_listener and certificate_name is None and certificate_ids is None:
        raise invalid(
            f"{fields.where}: an SSL listener needs certificateName or certificateIds.",
            code="MissingParameter",
        )
    return {
        "protocols": _default(fields.texts("protocols", allowed=TLS_PROTOCOLS), ["TLSv1.2"]),
        "cipherSuiteName": suite,
        "serverOrderPreference": _default(
            fields.choice("serverOrderPreference", ENABLED_DISABLED), "DISABLED"
        ),
        "certificateName": certificate_name,
        "certificateIds": certificate_ids,
        "trustedCertificateAuthorityIds": fields.texts("trustedCertificateAuthorityIds") or None,
        "hasSessionResumption": fields.flag("hasSessionResumption", default=True),
        "verifyPeerCertificate": fields.flag("verifyPeerCertificate", default=False),
        "verifyDepth": _default(fields.integer("verifyDepth", low=1), 1),
    }


def _connection_configuration(fields: _Fields | None, protocol: str) -> JSON:
    """ConnectionConfiguration; absent -> the documented idle timeouts (60 s HTTP, 300 s TCP)."""
    default_idle = 300 if protocol == "TCP" else 60
    if fields is None:
        return {
            "idleTimeout": default_idle,
            "backendTcpProxyProtocolVersion": None,
            "backendTcpProxyProtocolOptions": None,
        }
    return {
        "idleTimeout": _default(fields.integer("idleTimeout", low=1, high=7200), default_idle),
        "backendTcpProxyProtocolVersion": fields.integer(
            "backendTcpProxyProtocolVersion", allowed=(1, 2)
        ),
        "backendTcpProxyProtocolOptions": fields.texts(
            "backendTcpProxyProtocolOptions", allowed=("PP2_TYPE_AUTHORITY",)
        ),
    }


def _listener(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:
    """ListenerDetails (create, update, fixture) -> Listener: the body replaces everything."""
    protocol = fields.choice("protocol", LISTENER_PROTOCOLS, required=True) or ""
    ssl = fields.child("sslConfiguration")
    return {
        "name": name,
        "defaultBackendSetName": fields.text("defaultBackendSetName", required=True),
        "port": fields.integer("port", required=True, low=1, high=65535),
        "protocol": protocol,
        "hostnameNames": _default(fields.texts("hostnameNames"), []),
        "pathRouteSetName": fields.text("pathRouteSetName") or None,
        "sslConfiguration": None
        if ssl is None
        else _ssl_configuration(ssl, for_listener=True, from_fixture=from_fixture),
        "connectionConfiguration": _connection_configuration(
            fields.child("connectionConfiguration"), protocol
        ),
        "ruleSetNames": _default(fields.texts("ruleSetNames"), []),
        "routingPolicyName": fields.text("routingPolicyName") or None,
    }


def _backend(fields: _Fields) -> JSON:
    """BackendDetails -> Backend, named ``<ipAddress>:<port>`` as OCI names backends."""
    ip_address = fields.text("ipAddress", required=True)
    port = fields.integer("port", required=True, low=1, high=65535)
    return {
        "name": f"{ip_address}:{port}",
        "ipAddress": ip_address,
        "port": port,
        **_backend_settings(fields),
    }


def _backend_settings(fields: _Fields, *, required: bool = False) -> JSON:
    """The updatable part of a backend (UpdateBackendDetails requires all but maxConnections)."""
    return {
        "weight": _default(fields.integer("weight", required=required, low=1, high=100), 1),
        "maxConnections": _max_connections(fields, "maxConnections"),
        "drain": fields.flag("drain", required=required, default=False),
        "backup": fields.flag("backup", required=required, default=False),
        "offline": fields.flag("offline", required=required, default=False),
    }


def _max_connections(fields: _Fields, key: str) -> int | None:
    """0 or absent: unlimited; otherwise "must be greater or equal to 256" [SDK docstring]."""
    value = fields.integer(key, low=0)
    if value is not None and 0 < value < MIN_MAX_CONNECTIONS:
        raise invalid(f"{fields.path(key)} must be 0 (unlimited) or at least 256, not {value}.")
    return value


def _health_checker(fields: _Fields, *, strict: bool = False) -> JSON:
    """HealthCheckerDetails -> HealthChecker. ``strict``: UpdateHealthChecker's required fields."""
    protocol = fields.choice("protocol", HEALTH_CHECK_PROTOCOLS, required=True)
    http = protocol == "HTTP"
    return {
        "protocol": protocol,
        "urlPath": _default(fields.text("urlPath"), "/" if http else None),
        "port": _default(fields.integer("port", required=strict, low=0, high=65535), 0),
        "returnCode": _default(fields.integer("returnCode", required=strict), 200 if http else 0),
        "retries": _default(fields.integer("retries", required=strict, low=1, high=10), 3),
        "timeoutInMillis": _default(
            fields.integer("timeoutInMillis", required=strict, low=1, high=600000), 3000
        ),
        "intervalInMillis": _default(
            fields.integer("intervalInMillis", required=strict, low=1000, high=1800000), 10000
        ),
        "responseBodyRegex": _default(fields.text("responseBodyRegex"), ""),
        "isForcePlainText": fields.flag("isForcePlainText", default=False),
    }


def _backend_set(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:
    """BackendSetDetails (create, update, fixture) -> BackendSet: the body replaces everything."""
    backends = [_backend(item) for item in fields.children("backends") or []]
    seen: set[str] = set()
    for backend in backends:
        if backend["name"] in seen:
            raise invalid(f"{fields.path('backends')}: backend {backend['name']} appears twice.")
        seen.add(backend["name"])
    checker = fields.child("healthChecker", required=not from_fixture)
    ssl = fields.child("sslConfiguration")
    persistence = fields.child("sessionPersistenceConfiguration")
    cookie = fields.child("lbCookieSessionPersistenceConfiguration")
    return {
        "name": name,
        "policy": _default(
            fields.choice("policy", POLICIES, required=not from_fixture), POLICIES[0]
        ),
        "backends": backends,
        "backendMaxConnections": _max_connections(fields, "backendMaxConnections"),
        "healthChecker": _health_checker(checker or _Fields({"protocol": "HTTP"}, "")),
        "sslConfiguration": None
        if ssl is None
        else _ssl_configuration(ssl, for_listener=False, from_fixture=from_fixture),
        "sessionPersistenceConfiguration": None
        if persistence is None
        else {
            "cookieName": persistence.text("cookieName", required=True),
            "disableFallback": persistence.flag("disableFallback", default=False),
        },
        "lbCookieSessionPersistenceConfiguration": None
        if cookie is None
        else {
            "cookieName": _default(cookie.text("cookieName"), "X-Oracle-BMC-LBS-Route"),
            "disableFallback": cookie.flag("disableFallback", default=False),
            "domain": cookie.text("domain"),
            "path": _default(cookie.text("path"), "/"),
            "maxAgeInSeconds": cookie.integer("maxAgeInSeconds", low=1),
            "isSecure": cookie.flag("isSecure", default=False),
            "isHttpOnly": cookie.flag("isHttpOnly", default=False),
        },
    }


def _hostname(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:  # noqa: ARG001
    """HostnameDetails -> Hostname."""
    return {"name": name, "hostname": fields.text("hostname", required=True)}


def _condition(fields: _Fields, *, path_only: bool) -> JSON:
    """RuleCondition (polymorphic on ``attributeName``); REDIRECT takes PATH conditions only."""
    allowed = ("PATH",) if path_only else CONDITION_ATTRIBUTES
    attribute = fields.choice("attributeName", allowed, required=True)
    condition: JSON = {
        "attributeName": attribute,
        "attributeValue": fields.text("attributeValue", required=True),
    }
    if attribute == "PATH":
        condition["operator"] = fields.choice("operator", PATH_OPERATORS, required=True)
    return condition


def _redirect_uri(fields: _Fields | None) -> JSON | None:
    """RedirectUri; null fields keep the incoming request's value [SDK docstrings]."""
    if fields is None:
        return None
    protocol = fields.text("protocol")
    if protocol is not None and protocol not in ("HTTP", "HTTPS", "{protocol}"):
        raise invalid(f"{fields.path('protocol')} must be HTTP, HTTPS or {{protocol}}.")
    path = fields.text("path")
    if path and not (path.startswith(("/", "{path}"))):
        raise invalid(f"{fields.path('path')} must begin with / unless it begins with {{path}}.")
    query = fields.text("query")
    if query and not query.startswith(("?", "{query}")):
        raise invalid(f"{fields.path('query')} must begin with ? unless it begins with {{query}}.")
    return {
        "protocol": protocol,
        "host": fields.text("host"),
        "port": fields.integer("port", low=1, high=65535),
        "path": path,
        "query": query,
    }


def _header_rule(fields: _Fields, *, extend: bool = False, value: bool = False) -> JSON:
    rule: JSON = {"header": fields.text("header", required=True)}
    if value:
        rule["value"] = fields.text("value", required=True)
    if extend:
        rule["prefix"] = fields.text("prefix")
        rule["suffix"] = fields.text("suffix")
        if rule["prefix"] is None and rule["suffix"] is None:
            raise invalid(f"{fields.where}: set prefix, suffix or both.", code="MissingParameter")
    return rule


def _rule_body(action: str, fields: _Fields) -> JSON:  # noqa: PLR0911 - one branch per action
    """The action-specific fields of one rule (the SDK's Rule subclasses)."""
    if action in ("ADD_HTTP_REQUEST_HEADER", "ADD_HTTP_RESPONSE_HEADER"):
        return _header_rule(fields, value=True)
    if action in ("EXTEND_HTTP_REQUEST_HEADER_VALUE", "EXTEND_HTTP_RESPONSE_HEADER_VALUE"):
        return _header_rule(fields, extend=True)
    if action in ("REMOVE_HTTP_REQUEST_HEADER", "REMOVE_HTTP_RESPONSE_HEADER"):
        return _header_rule(fields)
    if action == "ALLOW":
        return {
            "conditions": [
                _condition(c, path_only=False)
                for c in fields.children("conditions", required=True) or []
            ],
            "description": fields.text("description"),
        }
    if action == "CONTROL_ACCESS_USING_HTTP_METHODS":
        return {
            "allowedMethods": fields.texts("allowedMethods", required=True),
            "statusCode": _default(fields.integer("statusCode", low=400, high=599), 405),
        }
    if action == "REDIRECT":
        conditions = fields.children("conditions", required=True) or []
        if not conditions:
            raise invalid(f"{fields.path('conditions')}: a REDIRECT rule needs a PATH condition.")
        return {
            "responseCode": _default(fields.integer("responseCode", allowed=REDIRECT_CODES), 302),
            "conditions": [_condition(c, path_only=True) for c in conditions],
            "redirectUri": _redirect_uri(fields.child("redirectUri")),
        }
    if action == "HTTP_HEADER":
        return {
            "areInvalidCharactersAllowed": fields.flag("areInvalidCharactersAllowed"),
            "httpLargeHeaderSizeInKB": fields.integer(
                "httpLargeHeaderSizeInKB", allowed=HEADER_BUFFER_SIZES
            ),
        }
    # IP_BASED_MAX_CONNECTIONS
    return {
        "defaultMaxConnections": fields.integer("defaultMaxConnections", low=0),
        "ipMaxConnections": [
            {
                "ipAddresses": item.texts("ipAddresses", required=True),
                "maxConnections": item.integer("maxConnections", required=True, low=0),
            }
            for item in fields.children("ipMaxConnections") or []
        ],
    }


RULE_ACTIONS = (
    "ADD_HTTP_REQUEST_HEADER",
    "EXTEND_HTTP_REQUEST_HEADER_VALUE",
    "REMOVE_HTTP_REQUEST_HEADER",
    "ADD_HTTP_RESPONSE_HEADER",
    "EXTEND_HTTP_RESPONSE_HEADER_VALUE",
    "REMOVE_HTTP_RESPONSE_HEADER",
    "ALLOW",
    "CONTROL_ACCESS_USING_HTTP_METHODS",
    "REDIRECT",
    "HTTP_HEADER",
    "IP_BASED_MAX_CONNECTIONS",
)


def _rule_set(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:  # noqa: ARG001
    """RuleSetDetails -> RuleSet; each item is validated as its ``action`` subtype.

    "A listener can have only one RedirectRule object for a given original path" [SDK
    docstring]: two REDIRECT items with the same first PATH condition are 400 here.
    """
    items = []
    for item in fields.children("items", required=True) or []:
        action = item.choice("action", RULE_ACTIONS, required=True) or ""
        items.append({"action": action, **_rule_body(action, item)})
    paths = [_redirect_path(item) for item in items if item["action"] == "REDIRECT"]
    twice = sorted({path for path in paths if paths.count(path) > 1})
    if twice:
        raise invalid(
            f"{fields.path('items')}: more than one REDIRECT rule for the path"
            f" {twice[0][1]} {twice[0][0]!r}; a listener can have only one per original path."
        )
    return {"name": name, "items": items}


def _redirect_path(rule: JSON) -> tuple[str, str]:
    """The "original path" of a REDIRECT rule: its first condition's (value, operator)."""
    first = rule["conditions"][0]
    return str(first["attributeValue"]), str(first.get("operator"))


def _routing_policy(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:  # noqa: ARG001
    """RoutingPolicyDetails -> RoutingPolicy (rule names unique, FORWARD_TO_BACKENDSET actions)."""
    rules = []
    seen: set[str] = set()
    for rule in fields.children("rules", required=True) or []:
        rule_name = rule.name("name")
        if rule_name in seen:
            raise invalid(f"{rule.path('name')}: rule {rule_name!r} appears twice.")
        seen.add(rule_name)
        actions = [
            {
                "name": action.choice("name", ("FORWARD_TO_BACKENDSET",), required=True),
                "backendSetName": action.text("backendSetName", required=True),
            }
            for action in rule.children("actions", required=True) or []
        ]
        rules.append(
            {
                "name": rule_name,
                "condition": rule.text("condition", required=True),
                "actions": actions,
            }
        )
    version = _default(fields.choice("conditionLanguageVersion", ("V1",)), "V1")
    return {"name": name, "conditionLanguageVersion": version, "rules": rules}


def _path_route_set(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:  # noqa: ARG001
    """PathRouteSetDetails -> PathRouteSet."""
    routes = []
    for route in fields.children("pathRoutes", required=True) or []:
        match = route.child("pathMatchType", required=True) or _Fields({}, "")
        routes.append(
            {
                "path": route.text("path", required=True),
                "pathMatchType": {
                    "matchType": match.choice("matchType", PATH_OPERATORS, required=True)
                },
                "backendSetName": route.text("backendSetName", required=True),
            }
        )
    return {"name": name, "pathRoutes": routes}


def _cipher_suite(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:  # noqa: ARG001
    """SSLCipherSuite (fixture only)."""
    return {"ciphers": fields.texts("ciphers", required=True), "name": name}


def _certificate_view(name: str, fields: _Fields, *, from_fixture: bool = False) -> JSON:  # noqa: ARG001
    """Certificate as answered: never a private key."""
    return {
        "certificateName": name,
        "publicCertificate": fields.text("publicCertificate"),
        "caCertificate": fields.text("caCertificate"),
    }


Normalizer = Callable[..., JSON]


@dataclass(frozen=True, slots=True)
class _Kind:
    """A name-keyed child collection of a load balancer (``ruleSets``...) and its API names."""

    collection: str  # key in the LoadBalancer JSON, and the URL segment
    label: str  # for messages
    noun: str  # operation suffix: CreateRuleSet
    plural: str  # ListRuleSets
    param: str  # path parameter of one item
    normalize: Normalizer
    name_pattern: re.Pattern[str] | None = None
    name_rule: str = ""


LISTENERS = _Kind("listeners", "listener", "Listener", "Listeners", "listenerName", _listener)
BACKEND_SETS = _Kind(
    "backendSets", "backend set", "BackendSet", "BackendSets", "backendSetName",
    _backend_set, BACKEND_SET_NAME, "only letters, digits, dashes and underscores",
)  # fmt: skip
HOSTNAMES = _Kind("hostnames", "hostname", "Hostname", "Hostnames", "name", _hostname)
RULE_SETS = _Kind("ruleSets", "rule set", "RuleSet", "RuleSets", "ruleSetName", _rule_set)
ROUTING_POLICIES = _Kind(
    "routingPolicies", "routing policy", "RoutingPolicy", "RoutingPolicies", "routingPolicyName",
    _routing_policy, ROUTING_POLICY_NAME,
    "it must start with a letter or underscore and can't contain ; ? # / % \\ ] [",
)  # fmt: skip
PATH_ROUTE_SETS = _Kind(
    "pathRouteSets", "path route set", "PathRouteSet", "PathRouteSets", "pathRouteSetName",
    _path_route_set,
)  # fmt: skip
# Children that GetLoadBalancer answers as name-keyed maps, with their fixture normalizers.
FIXTURE_MAPS: tuple[tuple[str, str, Normalizer], ...] = (
    ("backendSets", "name", _backend_set),
    ("certificates", "certificateName", _certificate_view),
    ("hostnames", "name", _hostname),
    ("ruleSets", "name", _rule_set),
    ("routingPolicies", "name", _routing_policy),
    ("pathRouteSets", "name", _path_route_set),
    ("sslCipherSuites", "name", _cipher_suite),
    ("listeners", "name", _listener),
)


# ---------------------------------------------------------------------------------------------
# Certificates: the checks a CreateCertificate work request makes (wire facts §1.2).


def _spki(key: Any) -> bytes:  # noqa: ANN401 - any cryptography public key
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _parse_certificates(pem: str, field: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise _BadInput(f"{field} is not a valid PEM certificate: {exc}") from None
    return certificates


def _check_bundle(payload: JSON) -> str | None:
    """Validate a new bundle; answer its private key as unencrypted PKCS#8 PEM (or None).

    Raises _BadInput (never with key material in the message) when a PEM does not parse, the
    passphrase is wrong, the key does not match the certificate, or the bundle is incomplete.
    """
    public = payload.get("publicCertificate")
    private = payload.get("privateKey")
    ca = payload.get("caCertificate")
    if not public and not ca:
        raise _BadInput("A certificate bundle needs publicCertificate or caCertificate.")
    if private and not public:
        raise _BadInput("privateKey was given without publicCertificate.")
    if ca:
        _parse_certificates(ca, "caCertificate")
    if not public:
        return None
    leaf = _parse_certificates(public, "publicCertificate")[0]
    if not private:
        raise _BadInput("publicCertificate was given without privateKey.")
    passphrase = payload.get("passphrase")
    try:
        key = serialization.load_pem_private_key(
            private.encode(), password=passphrase.encode() if passphrase else None
        )
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _BadInput(
            "privateKey is not a valid PEM private key, or the passphrase is wrong."
        ) from None
    if _spki(key.public_key()) != _spki(leaf.public_key()):
        raise _BadInput("privateKey does not match the public key of publicCertificate.")
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _chain(certificate: JSON) -> str:
    """The served chain: exactly ``publicCertificate`` (leaf first, then what followed it).

    ``caCertificate`` is not served: it is the trust anchor for ``verifyPeerCertificate``
    (client certificates), and nothing OCI publishes says a listener sends it to clients
    (docs/oci-emulator.md, "The chain").
    """
    public = certificate.get("publicCertificate") or ""
    return public if public.endswith("\n") or not public else public + "\n"


# ---------------------------------------------------------------------------------------------
# Apply-time consistency: every reference in a configuration, as readable violations.


def _ssl_violations(
    who: str, ssl: JSON | None, config: JSON, resolve: Callable[[str], bool]
) -> set[str]:
    found: set[str] = set()
    if ssl is None:
        return found
    name = ssl.get("certificateName")
    if name and name not in config["certificates"]:
        found.add(f"{who} references certificate '{name}', which does not exist")
    for certificate_id in ssl.get("certificateIds") or []:
        if not resolve(certificate_id):
            found.add(f"{who} references certificate id '{certificate_id}', which does not exist")
    suite = ssl.get("cipherSuiteName")
    known = {*PREDEFINED_CIPHER_SUITES, CUSTOMIZED_CIPHER_SUITE, *config["sslCipherSuites"]}
    if suite not in known:
        found.add(f"{who} references cipher suite '{suite}', which does not exist")
    return found


def _dangling(config: JSON, who: str, label: str, name: str | None, collection: str) -> set[str]:
    if name and name not in config[collection]:
        return {f"{who} references {label} '{name}', which does not exist"}
    return set()


def _redirect_violations(config: JSON, who: str, listener: JSON) -> set[str]:
    """REDIRECT rules "apply only to HTTP listeners", one per original path [SDK docstrings]."""
    redirects = [
        (rule_set, _redirect_path(item))
        for rule_set in listener["ruleSetNames"]
        for item in config["ruleSets"].get(rule_set, {}).get("items", [])
        if item["action"] == "REDIRECT"
    ]
    found: set[str] = set()
    if redirects and listener["protocol"] not in ("HTTP", "HTTP2"):
        found.add(f"{who} is {listener['protocol']}: REDIRECT rules apply only to HTTP listeners")
    seen: dict[tuple[str, str], str] = {}
    for rule_set, path in redirects:
        if path in seen:
            found.add(
                f"{who} has REDIRECT rules for the path {path[1]} {path[0]!r} in rule sets"
                f" '{seen[path]}' and '{rule_set}'; only one per original path is allowed"
            )
        seen.setdefault(path, rule_set)
    return found


def _may_share_port(one: JSON, other: JSON) -> bool:
    """Whether two listeners can be virtual hosts of one port (see the module docstring)."""
    one_ssl, other_ssl = one["sslConfiguration"], other["sslConfiguration"]
    return (
        one["protocol"] == other["protocol"]
        and (one_ssl is None) == (other_ssl is None)
        and (one_ssl is None or set(one_ssl["protocols"]) == set(other_ssl["protocols"]))
        and bool(one["hostnameNames"] or other["hostnameNames"])
        and not set(one["hostnameNames"]) & set(other["hostnameNames"])
    )


def _listener_violations(config: JSON, resolve: Callable[[str], bool]) -> set[str]:
    found: set[str] = set()
    ports: dict[int, list[tuple[str, JSON]]] = {}
    for name, listener in config["listeners"].items():
        who = f"listener '{name}'"
        found |= _dangling(
            config, who, "backend set", listener["defaultBackendSetName"], "backendSets"
        )
        for hostname in listener["hostnameNames"]:
            found |= _dangling(config, who, "hostname", hostname, "hostnames")
        for rule_set in listener["ruleSetNames"]:
            found |= _dangling(config, who, "rule set", rule_set, "ruleSets")
        found |= _redirect_violations(config, who, listener)
        found |= _dangling(
            config, who, "routing policy", listener["routingPolicyName"], "routingPolicies"
        )
        found |= _dangling(
            config, who, "path route set", listener["pathRouteSetName"], "pathRouteSets"
        )
        found |= _ssl_violations(who, listener["sslConfiguration"], config, resolve)
        sharing = ports.setdefault(listener["port"], [])
        for other_name, other in sharing:
            if not _may_share_port(listener, other):
                pair = " and ".join(sorted((other_name, name)))
                found.add(f"listeners {pair} both use port {listener['port']}")
        sharing.append((name, listener))
    return found


def _violations(config: JSON, resolve: Callable[[str], bool]) -> set[str]:
    """Every dangling reference or port clash in ``config``; a work request may add none."""
    found = _listener_violations(config, resolve)
    for name, backend_set in config["backendSets"].items():
        found |= _ssl_violations(
            f"backend set '{name}'", backend_set["sslConfiguration"], config, resolve
        )
    for name, policy in config["routingPolicies"].items():
        for rule in policy["rules"]:
            who = f"routing policy '{name}' rule '{rule['name']}'"
            for action in rule["actions"]:
                found |= _dangling(
                    config, who, "backend set", action["backendSetName"], "backendSets"
                )
    for name, route_set in config["pathRouteSets"].items():
        who = f"path route set '{name}'"
        for route in route_set["pathRoutes"]:
            found |= _dangling(config, who, "backend set", route["backendSetName"], "backendSets")
    return found


# ---------------------------------------------------------------------------------------------
# Work-request effects: each takes the candidate configuration and private keys and changes
# them, or raises _BadInput.


def _apply_create_certificate(config: JSON, keys: dict[str, str], payload: JSON) -> None:
    name = payload["certificateName"]
    if name in config["certificates"]:
        raise _BadInput(f"Certificate '{name}' already exists.")
    key = _check_bundle(payload)
    config["certificates"][name] = {
        "certificateName": name,
        "publicCertificate": payload.get("publicCertificate"),
        "caCertificate": payload.get("caCertificate"),
    }
    if key is not None:
        keys[name] = key


def _apply_delete_certificate(config: JSON, keys: dict[str, str], payload: JSON) -> None:
    name = payload["certificateName"]
    if config["certificates"].pop(name, None) is None:
        raise _BadInput(f"Certificate '{name}' does not exist.")
    keys.pop(name, None)


def _apply_put(config: JSON, keys: dict[str, str], payload: JSON) -> None:  # noqa: ARG001
    items = config[payload["collection"]]
    name = payload["name"]
    if payload["create"] and name in items:
        raise _BadInput(f"{payload['label'].capitalize()} '{name}' already exists.")
    if not payload["create"] and name not in items:
        raise _BadInput(f"{payload['label'].capitalize()} '{name}' does not exist.")
    items[name] = payload["value"]


def _apply_delete(config: JSON, keys: dict[str, str], payload: JSON) -> None:  # noqa: ARG001
    if config[payload["collection"]].pop(payload["name"], None) is None:
        raise _BadInput(f"{payload['label'].capitalize()} '{payload['name']}' does not exist.")


def _backend_set_of(config: JSON, payload: JSON) -> JSON:
    backend_set = config["backendSets"].get(payload["backendSetName"])
    if backend_set is None:
        raise _BadInput(f"Backend set '{payload['backendSetName']}' does not exist.")
    return dict(backend_set)


def _apply_put_backend(config: JSON, keys: dict[str, str], payload: JSON) -> None:  # noqa: ARG001
    backend_set = _backend_set_of(config, payload)
    backends = {b["name"]: b for b in backend_set["backends"]}
    name = payload["name"]
    if payload["create"] and name in backends:
        raise _BadInput(f"Backend '{name}' already exists.")
    if not payload["create"] and name not in backends:
        raise _BadInput(f"Backend '{name}' does not exist.")
    backends[name] = {**backends.get(name, {}), **payload["value"]}
    backend_set["backends"] = list(backends.values())
    config["backendSets"][backend_set["name"]] = backend_set


def _apply_delete_backend(config: JSON, keys: dict[str, str], payload: JSON) -> None:  # noqa: ARG001
    backend_set = _backend_set_of(config, payload)
    kept = [b for b in backend_set["backends"] if b["name"] != payload["name"]]
    if len(kept) == len(backend_set["backends"]):
        raise _BadInput(f"Backend '{payload['name']}' does not exist.")
    backend_set["backends"] = kept
    config["backendSets"][backend_set["name"]] = backend_set


def _apply_health_checker(config: JSON, keys: dict[str, str], payload: JSON) -> None:  # noqa: ARG001
    backend_set = _backend_set_of(config, payload)
    backend_set["healthChecker"] = payload["value"]
    config["backendSets"][backend_set["name"]] = backend_set


EFFECTS: dict[str, Callable[[JSON, dict[str, str], JSON], None]] = {
    "createCertificate": _apply_create_certificate,
    "deleteCertificate": _apply_delete_certificate,
    "put": _apply_put,
    "delete": _apply_delete,
    "putBackend": _apply_put_backend,
    "deleteBackend": _apply_delete_backend,
    "healthChecker": _apply_health_checker,
}


def _time(epoch: float) -> str:
    return rfc3339(datetime.fromtimestamp(epoch, UTC))


def _page(request: Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """Apply ``limit``/``page`` (an offset token); answer the page and ``opc-next-page``."""
    try:
        start = int(request.arg("page") or 0)
        limit = int(request.arg("limit") or 0) or len(items) or 1
    except ValueError:
        raise invalid("limit and page must be integers (page: an opc-next-page value).") from None
    if start < 0 or limit < 1:
        raise invalid("limit must be positive and page a value from opc-next-page.")
    page = items[start : start + limit]
    headers = {"opc-next-page": str(start + limit)} if start + limit < len(items) else {}
    return page, headers


# ---------------------------------------------------------------------------------------------


class LoadBalancer:
    """The emulated Load Balancing service; see the module docstring for behaviour and state."""

    name = "loadbalancer"

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._ports: dict[str, dict[int, int]] = {}

    # ------------------------------------------------------------------ service protocol

    def routes(self) -> list[Route]:
        """Every operation this service answers."""
        routes = [
            Route("GET", f"{API}/loadBalancers", "ListLoadBalancers", self._list_load_balancers),
            Route("GET", LB, "GetLoadBalancer", self._get_load_balancer),
            Route("GET", f"{API}/loadBalancerProtocols", "ListProtocols", self._list_protocols),
            Route("GET", f"{API}/loadBalancerPolicies", "ListPolicies", self._list_policies),
            Route(
                "GET",
                f"{API}/loadBalancerWorkRequests/{{workRequestId}}",
                "GetWorkRequest",
                self._get_work_request,
            ),
            Route("GET", f"{LB}/workRequests", "ListWorkRequests", self._list_work_requests),
            Route("POST", f"{LB}/certificates", "CreateCertificate", self._create_certificate),
            Route("GET", f"{LB}/certificates", "ListCertificates", self._list_certificates),
            Route(
                "DELETE",
                f"{LB}/certificates/{{certificateName}}",
                "DeleteCertificate",
                self._delete_certificate,
            ),
            Route("POST", f"{LB}/listeners", "CreateListener", self._creator(LISTENERS)),
            Route(
                "PUT",
                f"{LB}/listeners/{{listenerName}}",
                "UpdateListener",
                self._updater(LISTENERS),
            ),
            Route(
                "DELETE",
                f"{LB}/listeners/{{listenerName}}",
                "DeleteListener",
                self._deleter(LISTENERS),
            ),
        ]
        for kind in (BACKEND_SETS, HOSTNAMES, RULE_SETS, ROUTING_POLICIES, PATH_ROUTE_SETS):
            one = f"{LB}/{kind.collection}/{{{kind.param}}}"
            routes += [
                Route("POST", f"{LB}/{kind.collection}", f"Create{kind.noun}", self._creator(kind)),
                Route("GET", f"{LB}/{kind.collection}", f"List{kind.plural}", self._lister(kind)),
                Route("GET", one, f"Get{kind.noun}", self._getter(kind)),
                Route("PUT", one, f"Update{kind.noun}", self._updater(kind)),
                Route("DELETE", one, f"Delete{kind.noun}", self._deleter(kind)),
            ]
        backends = f"{LB}/backendSets/{{backendSetName}}/backends"
        checker = f"{LB}/backendSets/{{backendSetName}}/healthChecker"
        routes += [
            Route("POST", backends, "CreateBackend", self._create_backend),
            Route("GET", backends, "ListBackends", self._list_backends),
            Route("GET", f"{backends}/{{backendName}}", "GetBackend", self._get_backend),
            Route("PUT", f"{backends}/{{backendName}}", "UpdateBackend", self._update_backend),
            Route("DELETE", f"{backends}/{{backendName}}", "DeleteBackend", self._delete_backend),
            Route("GET", checker, "GetHealthChecker", self._get_health_checker),
            Route("PUT", checker, "UpdateHealthChecker", self._update_health_checker),
        ]
        return routes

    def seed(self, fixture: dict[str, Any]) -> None:
        """Create the fixture's ``load_balancers``; ValueError names a bad entry and field."""
        entries = fixture.get("load_balancers", [])
        with self.emulator.state.lock:
            for i, entry in enumerate(entries):
                where = f"load_balancers[{i}]"
                try:
                    config, keys, seconds = _seed_entry(entry, where)
                except OciError as exc:
                    raise ValueError(exc.message) from None
                try:
                    knobs = _seed_knobs(entry, where)
                except OciError as exc:
                    raise ValueError(exc.message) from None
                self._lbs[config["id"]] = {
                    "config": config,
                    "privateKeys": keys,
                    "etag": new_etag(),
                    "configVersion": 0,
                    "workRequestSeconds": seconds,
                    "workRequests": [],
                    "retryTokens": {},
                    **knobs,
                }

    # ------------------------------------------------------------------ data-plane API

    def settle_all(self) -> None:
        """Apply every work request whose end time has passed, on every load balancer."""
        with self.emulator.state.lock:
            for lb_id in list(self._lbs):
                self._settle(lb_id)

    def load_balancer_ids(self) -> list[str]:
        """Every load balancer's OCID."""
        with self.emulator.state.lock:
            return sorted(self._lbs)

    def current(self, lb_id: str) -> JSON | None:
        """The settled LoadBalancer JSON (a copy, as GetLoadBalancer answers it), or None."""
        with self.emulator.state.lock:
            if lb_id not in self._lbs:
                return None
            self._settle(lb_id)
            config: JSON = copy.deepcopy(self._lbs[lb_id]["config"])
            return config

    def listeners(self, lb_id: str) -> dict[str, JSON]:
        """The settled listeners of a load balancer by name (copies; empty when unknown)."""
        config = self.current(lb_id)
        return {} if config is None else config["listeners"]

    def config_version(self, lb_id: str) -> int:
        """A counter that grows each time a work request changes the load balancer (-1: none)."""
        with self.emulator.state.lock:
            if lb_id not in self._lbs:
                return -1
            self._settle(lb_id)
            return int(self._lbs[lb_id]["configVersion"])

    def certificate_material(self, lb_id: str, name: str) -> tuple[str, str] | None:
        """``(cert_chain_pem, private_key_pem)`` of a bundle, or None (no bundle or no key)."""
        with self.emulator.state.lock:
            if lb_id not in self._lbs:
                return None
            self._settle(lb_id)
            entry = self._lbs[lb_id]
            certificate = entry["config"]["certificates"].get(name)
            key = entry["privateKeys"].get(name)
            if certificate is None or key is None or not certificate.get("publicCertificate"):
                return None
            return _chain(certificate), key

    def listener_certificate(self, lb_id: str, listener_name: str) -> tuple[str, str] | None:
        """What an SSL listener serves now: its bundle, or its Certificates-service certificate.

        ``(cert_chain_pem, private_key_pem)``; None for an unknown or plain-text listener or a
        reference that does not resolve.
        """
        with self.emulator.state.lock:
            listener = self.listeners(lb_id).get(listener_name)
            ssl = listener and listener["sslConfiguration"]
            if not ssl:
                return None
            if ssl["certificateName"]:
                return self.certificate_material(lb_id, ssl["certificateName"])
            if ssl["certificateIds"]:
                return self._certificate_service_bundle(ssl["certificateIds"][0])
            return None

    def certificate_ids_in_use(self) -> set[str]:
        """Certificates-service OCIDs referenced by any listener or backend set (settled)."""
        used: set[str] = set()
        for lb_id in self.load_balancer_ids():
            config = self.current(lb_id) or {}
            holders = [*config["listeners"].values(), *config["backendSets"].values()]
            for holder in holders:
                used.update((holder["sslConfiguration"] or {}).get("certificateIds") or [])
        return used

    def port_map(self) -> dict[str, dict[int, int]]:
        """``{lb_id: {listener_port: local_port}}`` as published by the data plane."""
        with self.emulator.state.lock:
            return {lb_id: dict(ports) for lb_id, ports in self._ports.items()}

    def publish_port(self, lb_id: str, listener_port: int, local_port: int | None) -> None:
        """Record (or, with None, forget) where the data plane serves a listener port."""
        with self.emulator.state.lock:
            ports = self._ports.setdefault(lb_id, {})
            if local_port is None:
                ports.pop(listener_port, None)
            else:
                ports[listener_port] = local_port
            if not ports:
                del self._ports[lb_id]

    # ------------------------------------------------------------------ state

    @property
    def _db(self) -> JSON:
        # Looked up on every use: StateStore.load() replaces the data wholesale.
        section = self.emulator.state.section(self.name)
        section.setdefault("loadBalancers", {})
        section.setdefault("workRequests", {})
        return section

    @property
    def _lbs(self) -> dict[str, JSON]:
        lbs: dict[str, JSON] = self._db["loadBalancers"]
        return lbs

    @property
    def _wrs(self) -> dict[str, JSON]:
        wrs: dict[str, JSON] = self._db["workRequests"]
        return wrs

    def _settle(self, lb_id: str) -> None:
        """Apply, in order, every work request of ``lb_id`` whose end time has passed."""
        entry = self._lbs[lb_id]
        moment = now()
        applied = False
        for wr_id in entry["workRequests"]:
            wr = self._wrs[wr_id]
            if wr["outcome"] is not None:
                continue
            if wr["endsAt"] > moment:
                break
            self._apply(entry, wr)
            applied = True
        if applied:
            self.emulator.state.save()

    def _apply(self, entry: JSON, wr: JSON) -> None:
        config = copy.deepcopy(entry["config"])
        keys = dict(entry["privateKeys"])
        payload = wr.pop("payload")
        try:
            EFFECTS[payload["kind"]](config, keys, payload)
            self._check_references(entry["config"], config)
        except _BadInput as exc:
            wr["outcome"] = FAILED
            wr["errorDetails"] = [{"errorCode": BAD_INPUT, "message": str(exc)}]
            return
        except InternalError as exc:
            wr["outcome"] = FAILED
            wr["errorDetails"] = [{"errorCode": "INTERNAL_ERROR", "message": str(exc)}]
            return
        entry["config"] = config
        entry["privateKeys"] = keys
        if payload.get("collection") == "listeners":
            # Written now: OCI answers every field of a written listener (legacyListeners).
            (entry.get("sparseListeners") or {}).pop(payload["name"], None)
        entry["etag"] = new_etag()
        entry["configVersion"] += 1
        wr["outcome"] = SUCCEEDED

    def _check_references(self, before: JSON, after: JSON) -> None:
        """_BadInput naming every dangling reference ``after`` has and ``before`` had not."""
        new = _violations(after, self._certificate_id_exists) - _violations(
            before, self._certificate_id_exists
        )
        if new:
            raise _BadInput("; ".join(sorted(new)) + ".")

    def _certificate_service_bundle(self, certificate_id: str) -> tuple[str, str] | None:
        service = self.emulator.services.get("certificates")
        lookup = getattr(service, "current_material", None)
        if not callable(lookup):
            return None
        bundle: tuple[str, str] | None = lookup(certificate_id)
        return bundle

    def _certificate_id_exists(self, certificate_id: str) -> bool:
        return self._certificate_service_bundle(certificate_id) is not None

    # ------------------------------------------------------------------ request plumbing

    def _entry(self, request: Request) -> tuple[str, JSON]:
        """The target load balancer, settled and authorized; 404 when missing or not allowed."""
        lb_id = request.params["loadBalancerId"]
        entry = self._lbs.get(lb_id)
        if entry is None:
            raise not_found("load balancer")
        self.emulator.authorize(request, compartment_id=entry["config"]["compartmentId"])
        self._settle(lb_id)
        return lb_id, entry

    def _answer(self, entry: JSON, body: Any, headers: dict[str, str] | None = None) -> Reply:  # noqa: ANN401
        return Reply(body=body, headers={"etag": entry["etag"], **(headers or {})})

    def _begin_mutation(self, request: Request) -> tuple[str, JSON, Reply | None]:
        """Locate + authorize, then replay a known retry token or check ``if-match``."""
        lb_id, entry = self._entry(request)
        token = request.header("opc-retry-token")
        if token:
            moment = now()
            tokens = entry["retryTokens"]
            for old in [t for t, v in tokens.items() if moment - v["at"] > RETRY_TOKEN_TTL]:
                del tokens[old]
            seen = tokens.get(token)
            if seen is not None:
                if seen["operation"] != request.operation:
                    raise OciError(
                        409, "Conflict", "The opc-retry-token was already used for another request."
                    )
                self._refuse_invalidated_token(entry, seen)
                return lb_id, entry, self._accepted_reply(entry, seen["workRequestId"])
        if entry.get("busyConflict"):
            running = self._running_work_request(entry)
            if running is not None:
                # The stricter reading of a busy load balancer (assumed; docs/oci-emulator.md).
                raise OciError(
                    409,
                    "Conflict",
                    f"The load balancer has a work request in progress ({running});"
                    " retry when it has finished.",
                )
        expected = request.header("if-match")
        if expected is not None and expected.strip('"') != entry["etag"]:
            raise OciError(
                412,
                "NoEtagMatch",
                "The if-match value does not match the load balancer's current ETag.",
            )
        return lb_id, entry, None

    def _refuse_invalidated_token(self, entry: JSON, seen: JSON) -> None:
        """409 InvalidatedRetryToken: a create token whose bundle has since been deleted.

        "Retry tokens expire after 24 hours, but can be invalidated before then due to
        conflicting operations (e.g., if a resource has been deleted and purged from the
        system, then a retry of the original creation request may be rejected)" [SDK
        docstring of ``opc_retry_token``]. With ``retryTokenAfterDelete: "replay"`` the first
        answer is replayed instead (the other reading of "may").
        """
        if entry.get("retryTokenAfterDelete", "reject") != "reject":
            return
        created = seen.get("certificateName")
        wr = self._wrs.get(seen["workRequestId"])
        if (
            created
            and wr is not None
            and wr["outcome"] == SUCCEEDED
            and created not in entry["config"]["certificates"]
        ):
            raise OciError(
                409,
                "InvalidatedRetryToken",
                f"The opc-retry-token created certificate '{created}', which has since been"
                " deleted; use a new token.",
            )

    def _running_work_request(self, entry: JSON) -> str | None:
        """The id of the load balancer's unfinished (ACCEPTED or IN_PROGRESS) work request."""
        for wr_id in entry["workRequests"]:
            if self._wrs[wr_id]["outcome"] is None:
                return str(wr_id)
        return None

    def _accepted_reply(self, entry: JSON, wr_id: str) -> Reply:
        return Reply(status=204, headers={"opc-work-request-id": wr_id, "etag": entry["etag"]})

    def _work_request_seconds(self, entry: JSON, wr_id: str) -> float:
        """The LB's own ``workRequestSeconds``, else the timing profile's, else the default."""
        if entry.get("workRequestSeconds") is not None:
            return float(entry["workRequestSeconds"])
        profile = timing.profile(self.emulator.state)
        if "lbWorkRequestSeconds" in profile.durations:
            return profile.wall_seconds("lbWorkRequestSeconds", wr_id)
        return DEFAULT_WORK_REQUEST_SECONDS

    def _accept(self, request: Request, lb_id: str, entry: JSON, payload: JSON) -> Reply:
        """Queue a work request behind the load balancer's previous one; answer 204."""
        moment = now()
        previous_end = max(
            (self._wrs[w]["endsAt"] for w in entry["workRequests"][-1:]), default=moment
        )
        starts = max(moment, previous_end)
        wr_id = new_ocid("loadbalancerworkrequest")
        self._wrs[wr_id] = {
            "id": wr_id,
            "loadBalancerId": lb_id,
            "compartmentId": entry["config"]["compartmentId"],
            "type": request.operation,
            "acceptedAt": moment,
            "startsAt": starts,
            "endsAt": starts + self._work_request_seconds(entry, wr_id),
            "outcome": None,
            "errorDetails": [],
            "payload": payload,
        }
        entry["workRequests"].append(wr_id)
        entry["etag"] = new_etag()
        token = request.header("opc-retry-token")
        if token:
            entry["retryTokens"][token] = {
                "operation": request.operation,
                "workRequestId": wr_id,
                "at": moment,
                **(
                    {"certificateName": payload["certificateName"]}
                    if payload["kind"] == "createCertificate"
                    else {}
                ),
            }
        return self._accepted_reply(entry, wr_id)

    def _pending(self, entry: JSON, kind: str, key: str, **match: str) -> set[str]:
        """Names that queued (unsettled) work requests of ``kind`` will create."""
        names: set[str] = set()
        for wr_id in entry["workRequests"]:
            payload = self._wrs[wr_id].get("payload")
            if (
                payload
                and payload["kind"] == kind
                and payload.get("create", True)
                and all(payload.get(k) == v for k, v in match.items())
            ):
                names.add(payload[key])
        return names

    def _known(self, entry: JSON, kind: _Kind) -> set[str]:
        return set(entry["config"][kind.collection]) | self._pending(
            entry, "put", "name", collection=kind.collection
        )

    def _refuse_if_referenced(
        self, entry: JSON, change: Callable[[JSON], None], message: str
    ) -> None:
        """409 Conflict when ``change`` (a deletion) would leave a dangling reference."""
        config = copy.deepcopy(entry["config"])
        change(config)
        try:
            self._check_references(entry["config"], config)
        except _BadInput as exc:
            raise OciError(409, "Conflict", f"{message}: {exc}") from None

    # ------------------------------------------------------------------ load balancers

    def _get_load_balancer(self, request: Request) -> Reply:
        _, entry = self._entry(request)
        sparse = entry.get("sparseListeners") or {}
        if not sparse:
            return self._answer(entry, entry["config"])
        config = dict(entry["config"])
        config["listeners"] = {
            name: _sparse_view(listener, sparse[name]) if name in sparse else listener
            for name, listener in config["listeners"].items()
        }
        return self._answer(entry, config)

    def _list_load_balancers(self, request: Request) -> Reply:
        compartment = request.arg("compartmentId")
        if not compartment:
            raise invalid("compartmentId is required.", code="MissingParameter")
        self.emulator.authorize(request, compartment_id=compartment)
        sort_by = request.arg("sortBy") or "TIMECREATED"
        if sort_by not in ("TIMECREATED", "DISPLAYNAME"):
            raise invalid("sortBy must be TIMECREATED or DISPLAYNAME.")
        order = request.arg("sortOrder") or ("DESC" if sort_by == "TIMECREATED" else "ASC")
        if order not in ("ASC", "DESC"):
            raise invalid("sortOrder must be ASC or DESC.")
        name, state = request.arg("displayName"), request.arg("lifecycleState")
        found = []
        for lb_id, entry in self._lbs.items():
            config = entry["config"]
            if config["compartmentId"] != compartment:
                continue
            if (name and config["displayName"] != name) or (
                state and config["lifecycleState"] != state
            ):
                continue
            self._settle(lb_id)
            found.append(entry["config"])
        field = "timeCreated" if sort_by == "TIMECREATED" else "displayName"
        found.sort(key=lambda c: c[field], reverse=order == "DESC")
        page, headers = _page(request, found)
        return Reply(body=page, headers=headers)

    def _list_static(self, request: Request, names: tuple[str, ...]) -> Reply:
        compartment = request.arg("compartmentId")
        if not compartment:
            raise invalid("compartmentId is required.", code="MissingParameter")
        self.emulator.authorize(request, compartment_id=compartment)
        page, headers = _page(request, [{"name": n} for n in names])
        return Reply(body=page, headers=headers)

    def _list_protocols(self, request: Request) -> Reply:
        return self._list_static(request, LISTENER_PROTOCOLS)

    def _list_policies(self, request: Request) -> Reply:
        return self._list_static(request, POLICIES)

    # ------------------------------------------------------------------ work requests

    def _work_request_view(self, wr: JSON) -> JSON:
        moment = now()
        if wr["outcome"] is not None:
            state = wr["outcome"]
        elif moment < wr["startsAt"]:
            state = ACCEPTED
        else:
            state = IN_PROGRESS
        messages = {
            ACCEPTED: "queued behind an earlier work request on this load balancer",
            IN_PROGRESS: "in progress",
            SUCCEEDED: "succeeded",
            FAILED: "failed: " + "; ".join(e["message"] for e in wr["errorDetails"]),
        }
        return {
            "id": wr["id"],
            "loadBalancerId": wr["loadBalancerId"],
            "type": wr["type"],
            "compartmentId": wr["compartmentId"],
            "lifecycleState": state,
            "message": f"{wr['type']} {messages[state]}",
            "timeAccepted": _time(wr["acceptedAt"]),
            "timeFinished": _time(wr["endsAt"]) if wr["outcome"] is not None else None,
            "errorDetails": list(wr["errorDetails"]),
        }

    def _get_work_request(self, request: Request) -> Reply:
        wr = self._wrs.get(request.params["workRequestId"])
        if wr is None or wr["loadBalancerId"] not in self._lbs:
            raise not_found("work request")
        self.emulator.authorize(request, compartment_id=wr["compartmentId"])
        self._settle(wr["loadBalancerId"])
        return Reply(body=self._work_request_view(wr))

    def _list_work_requests(self, request: Request) -> Reply:
        _, entry = self._entry(request)
        views = [self._work_request_view(self._wrs[w]) for w in reversed(entry["workRequests"])]
        page, headers = _page(request, views)
        return Reply(body=page, headers=headers)

    # ------------------------------------------------------------------ certificates

    def _list_certificates(self, request: Request) -> Reply:
        _, entry = self._entry(request)
        return self._answer(entry, list(entry["config"]["certificates"].values()))

    def _create_certificate(self, request: Request) -> Reply:
        lb_id, entry, replay = self._begin_mutation(request)
        if replay is not None:
            return replay
        fields = _Fields(request.json(), "")
        name = fields.name(
            "certificateName",
            CERTIFICATE_NAME,
            "only letters, digits, dashes and underscores (no spaces), at most 255",
        )
        payload: JSON = {"kind": "createCertificate", "certificateName": name}
        for key in ("publicCertificate", "privateKey", "caCertificate", "passphrase"):
            payload[key] = fields.text(key) or None
        taken = set(entry["config"]["certificates"]) | self._pending(
            entry, "createCertificate", "certificateName"
        )
        if name in taken:
            raise OciError(409, "Conflict", f"Certificate '{name}' already exists.")
        return self._accept(request, lb_id, entry, payload)

    def _delete_certificate(self, request: Request) -> Reply:
        lb_id, entry, replay = self._begin_mutation(request)
        if replay is not None:
            return replay
        name = request.params["certificateName"]
        if name not in entry["config"]["certificates"]:
            raise not_found("certificate")
        self._refuse_if_referenced(
            entry,
            lambda config: config["certificates"].pop(name),
            f"Certificate '{name}' is attached to one or more listeners/backendSets",
        )
        payload = {"kind": "deleteCertificate", "certificateName": name}
        return self._accept(request, lb_id, entry, payload)

    # ------------------------------------------------------------------ name-keyed children

    def _creator(self, kind: _Kind) -> Callable[[Request], Reply]:
        def create(request: Request) -> Reply:
            lb_id, entry, replay = self._begin_mutation(request)
            if replay is not None:
                return replay
            fields = _Fields(request.json(), "")
            name = fields.name("name", kind.name_pattern, kind.name_rule)
            value = kind.normalize(name, fields)
            if name in self._known(entry, kind):
                raise OciError(
                    409, "Conflict", f"{kind.label.capitalize()} '{name}' already exists."
                )
            payload = {
                "kind": "put",
                "collection": kind.collection,
                "label": kind.label,
                "name": name,
                "value": value,
                "create": True,
            }
            return self._accept(request, lb_id, entry, payload)

        return create

    def _updater(self, kind: _Kind) -> Callable[[Request], Reply]:
        def update(request: Request) -> Reply:
            lb_id, entry, replay = self._begin_mutation(request)
            if replay is not None:
                return replay
            name = request.params[kind.param]
            if name not in self._known(entry, kind):
                raise not_found(kind.label)
            value = kind.normalize(name, _Fields(request.json(), ""))
            payload = {
                "kind": "put",
                "collection": kind.collection,
                "label": kind.label,
                "name": name,
                "value": value,
                "create": False,
            }
            return self._accept(request, lb_id, entry, payload)

        return update

    def _deleter(self, kind: _Kind) -> Callable[[Request], Reply]:
        def delete(request: Request) -> Reply:
            lb_id, entry, replay = self._begin_mutation(request)
            if replay is not None:
                return replay
            name = request.params[kind.param]
            if name not in entry["config"][kind.collection]:
                raise not_found(kind.label)
            self._refuse_if_referenced(
                entry,
                lambda config: config[kind.collection].pop(name),
                f"{kind.label.capitalize()} '{name}' is still in use",
            )
            payload = {
                "kind": "delete",
                "collection": kind.collection,
                "label": kind.label,
                "name": name,
            }
            return self._accept(request, lb_id, entry, payload)

        return delete

    def _getter(self, kind: _Kind) -> Callable[[Request], Reply]:
        def get(request: Request) -> Reply:
            _, entry = self._entry(request)
            item = entry["config"][kind.collection].get(request.params[kind.param])
            if item is None:
                raise not_found(kind.label)
            return self._answer(entry, item)

        return get

    def _lister(self, kind: _Kind) -> Callable[[Request], Reply]:
        def list_items(request: Request) -> Reply:
            _, entry = self._entry(request)
            page, headers = _page(request, list(entry["config"][kind.collection].values()))
            return self._answer(entry, page, headers)

        return list_items

    # ------------------------------------------------------------------ backends, health checkers

    def _backend_set(self, entry: JSON, request: Request) -> JSON:
        backend_set = entry["config"]["backendSets"].get(request.params["backendSetName"])
        if backend_set is None:
            raise not_found("backend set")
        return dict(backend_set)

    def _create_backend(self, request: Request) -> Reply:
        lb_id, entry, replay = self._begin_mutation(request)
        if replay is not None:
            return replay
        backend_set = self._backend_set(entry, request)
        backend = _backend(_Fields(request.json(), ""))
        taken = {b["name"] for b in backend_set["backends"]} | self._pending(
            entry, "putBackend", "name", backendSetName=backend_set["name"]
        )
        if backend["name"] in taken:
            raise OciError(409, "Conflict", f"Backend '{backend['name']}' already exists.")
        payload = {
            "kind": "putBackend",
            "backendSetName": backend_set["name"],
            "name": backend["name"],
            "value": backend,
            "create": True,
        }
        return self._accept(request, lb_id, entry, payload)

    def _find_backend(self, entry: JSON, request: Request) -> tuple[JSON, JSON]:
        backend_set = self._backend_set(entry, request)
        name = request.params["backendName"]
        for backend in backend_set["backends"]:
            if backend["name"] == name:
                return backend_set, backend
        raise not_found("backend")

    def _update_backend(self, request: Request) -> Reply:
        lb_id, entry, replay = self._begin_mutation(request)
        if replay is not None:
            return replay
        backend_set, backend = self._find_backend(entry, request)
        settings = _backend_settings(_Fields(request.json(), ""), required=True)
        payload = {
            "kind": "putBackend",
            "backendSetName": backend_set["name"],
            "name": backend["name"],
            "value": settings,
            "create": False,
        }
        return self._accept(request, lb_id, entry, payload)

    def _delete_backend(self, request: Request) -> Reply:
        lb_id, entry, replay = self._begin_mutation(request)
        if replay is not None:
            return replay
        backend_set, backend = self._find_backend(entry, request)
        payload = {
            "kind": "deleteBackend",
            "backendSetName": backend_set["name"],
            "name": backend["name"],
        }
        return self._accept(request, lb_id, entry, payload)

    def _get_backend(self, request: Request) -> Reply:
        _, entry = self._entry(request)
        return self._answer(entry, self._find_backend(entry, request)[1])

    def _list_backends(self, request: Request) -> Reply:
        _, entry = self._entry(request)
        return self._answer(entry, self._backend_set(entry, request)["backends"])

    def _get_health_checker(self, request: Request) -> Reply:
        _, entry = self._entry(request)
        return self._answer(entry, self._backend_set(entry, request)["healthChecker"])

    def _update_health_checker(self, request: Request) -> Reply:
        lb_id, entry, replay = self._begin_mutation(request)
        if replay is not None:
            return replay
        backend_set = self._backend_set(entry, request)
        checker = _health_checker(_Fields(request.json(), ""), strict=True)
        payload = {"kind": "healthChecker", "backendSetName": backend_set["name"], "value": checker}
        return self._accept(request, lb_id, entry, payload)


# ---------------------------------------------------------------------------------------------
# Fixture seeding.


def _seed_entry(entry: object, where: str) -> tuple[JSON, dict[str, str], float | None]:
    """A fixture load balancer -> (LoadBalancer JSON, private keys, work-request seconds)."""
    fields = _Fields(entry, where)
    lb_id = fields.text("id") or new_ocid("loadbalancer")
    shape = _default(fields.text("shapeName"), "flexible")
    shape_details = fields.child("shapeDetails")
    ip_addresses = fields.children("ipAddresses")
    config: JSON = {
        "id": lb_id,
        "compartmentId": fields.text("compartmentId", required=True),
        "displayName": _default(fields.text("displayName"), f"lb-{lb_id[-8:]}"),
        "lifecycleState": _default(fields.choice("lifecycleState", LIFECYCLE_STATES), "ACTIVE"),
        "timeCreated": _default(fields.text("timeCreated"), rfc3339()),
        "ipAddresses": [
            {
                "ipAddress": ip.text("ipAddress", required=True),
                "isPublic": ip.flag("isPublic", default=True),
                "reservedIp": ip.raw("reservedIp"),
            }
            for ip in ip_addresses
        ]
        if ip_addresses is not None
        else [{"ipAddress": "127.0.0.1", "isPublic": True, "reservedIp": None}],
        "shapeName": shape,
        "shapeDetails": {
            "minimumBandwidthInMbps": shape_details.integer("minimumBandwidthInMbps"),
            "maximumBandwidthInMbps": shape_details.integer("maximumBandwidthInMbps"),
        }
        if shape_details is not None
        else (
            {"minimumBandwidthInMbps": 10, "maximumBandwidthInMbps": 10}
            if shape == "flexible"
            else None
        ),
        "isPrivate": fields.flag("isPrivate", default=False),
        "isDeleteProtectionEnabled": fields.flag("isDeleteProtectionEnabled", default=False),
        "isRequestIdEnabled": fields.flag("isRequestIdEnabled", default=False),
        "requestIdHeader": fields.text("requestIdHeader"),
        "subnetIds": _default(fields.texts("subnetIds"), []),
        "networkSecurityGroupIds": _default(fields.texts("networkSecurityGroupIds"), []),
        "freeformTags": _default(fields.raw("freeformTags"), {}),
        "definedTags": _default(fields.raw("definedTags"), {}),
        "securityAttributes": _default(fields.raw("securityAttributes"), {}),
        "systemTags": _default(fields.raw("systemTags"), {}),
        "ipMode": _default(fields.choice("ipMode", ("IPV4", "IPV6")), "IPV4"),
    }
    for collection, name_key, normalize in FIXTURE_MAPS:
        config[collection] = _seed_map(fields, collection, name_key, normalize)
    keys = fields.child("privateKeys")
    private_keys = {name: keys.text(name) or "" for name in keys.data} if keys else {}
    for name in private_keys:
        if name not in config["certificates"]:
            raise invalid(f"{where}.privateKeys.{name}: no certificate of that name.")
    seconds = fields.raw("workRequestSeconds")  # None: the timing profile decides
    if seconds is not None and (
        isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0
    ):
        raise invalid(f"{where}.workRequestSeconds must be a number >= 0.")
    problems = _violations(config, lambda _: True)
    if problems:
        raise invalid(f"{where}: " + "; ".join(sorted(problems)) + ".")
    return config, private_keys, None if seconds is None else float(seconds)


def _seed_knobs(entry: object, where: str) -> JSON:
    """The emulator-only behaviour knobs of a fixture load balancer (module docstring)."""
    fields = _Fields(entry, where)
    reuse = _default(
        fields.choice("retryTokenAfterDelete", RETRY_TOKEN_AFTER_DELETE),
        RETRY_TOKEN_AFTER_DELETE[0],
    )
    sparse: JSON = {}
    if fields.flag("legacyListeners", default=False):
        for name, listener in (fields.child("listeners") or _Fields({}, "")).data.items():
            sparse[name] = _absent_paths(listener)
    return {
        "busyConflict": fields.flag("busyConflict", default=False),
        "retryTokenAfterDelete": _default(reuse, RETRY_TOKEN_AFTER_DELETE[0]),
        "sparseListeners": sparse,
    }


# Optional listener fields OCI fills with a default when a listener is written (create or
# update); a listener that has never been written since a field was added reads without it.
SPARSE_LISTENER_PATHS = (
    ("hostnameNames",),
    ("ruleSetNames",),
    ("routingPolicyName",),
    ("pathRouteSetName",),
    ("connectionConfiguration",),
    ("sslConfiguration", "protocols"),
    ("sslConfiguration", "cipherSuiteName"),
    ("sslConfiguration", "serverOrderPreference"),
    ("sslConfiguration", "hasSessionResumption"),
    ("sslConfiguration", "verifyPeerCertificate"),
    ("sslConfiguration", "verifyDepth"),
    ("sslConfiguration", "trustedCertificateAuthorityIds"),
    ("sslConfiguration", "certificateIds"),
)


def _absent_paths(listener: object) -> list[list[str]]:
    """The :data:`SPARSE_LISTENER_PATHS` a fixture listener leaves out (or sets to null)."""
    absent: list[list[str]] = []
    for path in SPARSE_LISTENER_PATHS:
        node: object = listener
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        parent_present = len(path) == 1 or (
            isinstance(listener, dict) and isinstance(listener.get(path[0]), dict)
        )
        if node is None and parent_present:
            absent.append(list(path))
    return absent


def _sparse_view(listener: JSON, absent: list[list[str]]) -> JSON:
    """``listener`` as a never-rewritten one reads: each path in ``absent`` null."""
    view = copy.deepcopy(listener)
    for path in absent:
        node = view
        for key in path[:-1]:
            node = node.get(key) or {}
        if isinstance(node, dict) and path[-1] in node:
            node[path[-1]] = None
    return view


def _seed_map(fields: _Fields, collection: str, name_key: str, normalize: Normalizer) -> JSON:
    items = fields.child(collection)
    if items is None:
        return {}
    result: JSON = {}
    for name, value in items.data.items():
        item = _Fields(value, items.path(name))
        given = item.text(name_key)
        if given is not None and given != name:
            raise invalid(f"{item.path(name_key)} {given!r} differs from its key {name!r}.")
        result[name] = normalize(name, item, from_fixture=True)
    return result
