"""IAM policies for the emulator: OCI's policy language, parsed and evaluated like OCI does.

``PolicyEngine.from_fixture(fixture, tenancy)`` reads the fixture's ``compartments`` and
``policies`` and implements :class:`sandbox.oci_emulator.server.Authorizer`. A statement that does
not parse, or names a compartment that does not exist, raises ``ValueError`` naming the policy,
the statement and the position: a broken fixture fails at start, never as a mysterious 404 later.

Grammar (keywords, verbs, resource-types and variable names are case-insensitive)::

    Allow <subject> to <action> in <location> [where <condition>]

    subject   := any-user | any-group | service <name>[, <name>...]
               | group <member>[, [group] <member>...]
               | dynamic-group <member>[, [dynamic-group] <member>...]
    member    := <name> | '<name>' | <domain>/<name> | '<domain>'/'<name>' | id <ocid>
    action    := <verb> <resource-type> | {PERMISSION[, PERMISSION...]}
    verb      := inspect | read | use | manage           (each includes the ones before it)
    location  := tenancy | compartment <name>[:<name>...] | compartment id <ocid>
    condition := <variable> = <value> | <variable> != <value>
               | any {<condition>, ...} | all {<condition>, ...}
    value     := '<string>' | "<string>" | /<pattern>/ | <bare word>

A pattern's ``*`` matches anything (``/acme-*/``, ``/*-state/``, ``/*cme*/``); it may contain
``/`` (object names) and ends at a ``/`` followed by a space, ``,``, ``}`` or the end.

Semantics, as in OCI:

- A statement names one kind of principal. ``group`` matches users whose ``Principal.groups``
  holds the name (IAM groups); ``dynamic-group`` matches resource principals (functions,
  containers) by their dynamic-group names; ``group id <ocid>`` matches when the OCID is listed
  in ``groups``; ``Default/<name>`` equals ``<name>``; ``any-user`` matches every principal,
  ``any-group`` every principal in some group. ``service`` statements parse but never match: the
  emulator has no service principals. Group names compare case-insensitively.
- ``<verb> <family>`` equals one statement per member type (``object-family`` = buckets, objects,
  objectstorage-namespaces; ``secret-family`` = secrets, secret-versions, secret-bundles — *not*
  vaults or keys; ``leaf-certificate-family`` = leaf-certificates, -versions, -bundles, cabundles
  and their associations; ``certificate-authority-family`` adds the CA types; ``all-resources``
  = every type; ``functions-family`` = fn-app, fn-function, fn-invocation). Resource-types of
  services the emulator does not serve (``virtual-network-family``...) are accepted and grant
  nothing here; a name nobody knows is an error.
- A location names the compartment the *policy* is attached to (fixture ``compartment``; the
  tenancy by default) or one below it: ``compartment a:b`` is ``b`` inside ``a`` inside the
  policy's compartment. A statement applies to its compartment and every compartment below it
  (fixture compartments may name a ``parent``, by name or OCID). ``in tenancy`` is only valid in
  a policy attached to the tenancy, and applies everywhere.
- Conditions compare case-insensitively (OCI documents this for bucket names). A variable the
  request does not carry is *not applicable*: the comparison is false for ``=`` and ``!=`` alike,
  so the statement grants nothing to that request — OCI's "Variables Not Applicable to a Request
  Result in a Declined Request". Misspelt variable names behave the same way (with a warning).
- Besides the target variables below, conditions may test ``request.permission``,
  ``request.operation``, ``request.principal.id``, ``request.principal.type`` (the type in the
  principal's OCID: ``user``, ``fnfunc``...), ``request.principal.compartment.id``,
  ``request.user.id``, ``target.compartment.id`` and ``target.compartment.name``.
- Principals of another tenancy are denied. ``Deny``, ``Define``, ``Endorse`` and ``Admit``
  statements are rejected when parsed.

Permissions. OCI authorizes *permissions*: each verb + resource-type grants a set of them
(:data:`RESOURCE_TYPES`) and each API operation needs one or more (:data:`OPERATIONS`). The
engine works at that level, so ``request.permission`` conditions, operations needing permissions
of several types (``CreateSecret``) and operations that accept either of two permissions
(``HeadObject``) behave as documented. :func:`minimum_grant` turns a permission back into the
"<verb> <resource-type>" that first grants it.

Handler contract — what ``Emulator.authorize(request, compartment_id=..., **target)`` passes in
``target`` (all values strings; an absent key makes its variable not applicable):

- ``bucket_name`` -> ``target.bucket.name`` (bucket and object operations);
- ``object_name`` -> ``target.object.name``; ``object_exists`` (``"true"``/``"false"``, PutObject);
- ``secret_name``, ``secret_id``, ``vault_id``, ``key_id`` -> ``target.secret.name``,
  ``target.secret.id``, ``target.vault.id``, ``target.key.id`` (Vault and Secrets operations);
- ``load_balancer_id`` -> ``target.loadbalancer.id`` (optional: OCI's Load Balancing reference
  lists no such variable, so real OCI may never apply it; the engine warns when a policy uses it);
- ``certificate_service="certificates"`` (every Certificates operation), ``certificate_name``,
  ``certificate_id``, ``certificate_bundle_type`` -> ``target.leaf-certificate.name``, ``.id``,
  ``.bundle-type``;
- ``metrics_namespace`` -> ``target.metrics.namespace`` (PostMetricData, per metric object);
- ``dns_zone_id``, ``dns_zone_name`` -> ``target.dns-zone.id``, ``target.dns-zone.name`` (every
  DNS operation on a zone or its records; the DNS policy reference lists both variables for
  ``dns-zones`` and ``dns-records``).

- ``CreateCertificate`` and ``ListCertificates`` exist in both the Load Balancer and the
  Certificates-management APIs. The Certificates service must pass
  ``certificate_service="certificates"`` on every call; any other call is the Load Balancer's
  (which needs no extra key: OCI's Load Balancing reference supports only the general
  variables). :meth:`PolicyEngine.explain` says which meaning it used. ``DeleteCertificate`` is
  a Load Balancer operation only (the Certificates service schedules deletion instead).
- ``PutObject`` needs OBJECT_CREATE for a new object and OBJECT_OVERWRITE for an existing one
  (``use objects`` overwrites but does not create). The handler says which with
  ``object_exists``; without it the engine assumes a new object.
- ``GetCertificateBundle`` with ``certificate_bundle_type="CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"``
  needs a statement whose where-clause tests ``target.leaf-certificate.bundle-type``.
- ``GetNamespace`` needs no permission (its ``compartmentId`` variant is not modelled).

Sources: OCI's policy reference pages for Object Storage, Vault, Load Balancing and Certificates
(verb tables and "Permissions Required for Each API Operation"), and the Conditions, Subjects and
Locations pages. Where they are silent the table says so in a comment (``# assumed``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sandbox.oci_emulator.core import Principal

if TYPE_CHECKING:
    from sandbox.oci_emulator.app import Tenancy

logger = logging.getLogger(__name__)

VERBS = ("inspect", "read", "use", "manage")
_VERB_RANK = {verb: rank for rank, verb in enumerate(VERBS)}

# resource-type -> verb -> permissions that verb adds (cumulative: manage includes use, ...).
RESOURCE_TYPES: dict[str, dict[str, tuple[str, ...]]] = {
    # Object Storage
    "objectstorage-namespaces": {
        "read": (),  # GetNamespace needs no permission at all
        "manage": ("OBJECTSTORAGE_NAMESPACE_READ", "OBJECTSTORAGE_NAMESPACE_UPDATE"),
    },
    "buckets": {
        "inspect": ("BUCKET_INSPECT",),
        "read": ("BUCKET_READ",),
        "use": ("BUCKET_UPDATE",),
        "manage": (
            "BUCKET_CREATE", "BUCKET_DELETE", "PAR_MANAGE",
            "RETENTION_RULE_MANAGE", "RETENTION_RULE_LOCK",
        ),
    },
    "objects": {
        "inspect": ("OBJECT_INSPECT",),
        "read": ("OBJECT_READ",),
        "use": ("OBJECT_OVERWRITE",),
        "manage": (
            "OBJECT_CREATE", "OBJECT_DELETE", "OBJECT_VERSION_DELETE",
            "OBJECT_RESTORE", "OBJECT_UPDATE_TIER",
        ),
    },
    # Vault service, KMS and secrets
    "vaults": {
        "inspect": ("VAULT_INSPECT",),
        "read": ("VAULT_READ",),
        "use": ("VAULT_CREATE_KEY", "VAULT_IMPORT_KEY", "VAULT_CREATE_SECRET"),
        "manage": (
            "VAULT_CREATE", "VAULT_UPDATE", "VAULT_DELETE", "VAULT_MOVE",
            "VAULT_BACKUP", "VAULT_RESTORE", "VAULT_REPLICATE",
        ),
    },
    "keys": {
        "inspect": ("KEY_INSPECT",),
        "read": ("KEY_READ",),
        "use": ("KEY_ENCRYPT", "KEY_DECRYPT", "KEY_EXPORT", "KEY_SIGN", "KEY_VERIFY"),
        "manage": (
            "KEY_CREATE", "KEY_UPDATE", "KEY_ROTATE", "KEY_DELETE",
            "KEY_MOVE", "KEY_IMPORT", "KEY_BACKUP", "KEY_RESTORE",
        ),
    },
    "key-delegate": {"use": ("KEY_ASSOCIATE", "KEY_DISASSOCIATE")},
    "secrets": {
        "inspect": ("SECRET_INSPECT",),
        "read": ("SECRET_READ",),
        "use": ("SECRET_UPDATE", "SECRET_ROTATE"),
        "manage": ("SECRET_CREATE", "SECRET_DELETE", "SECRET_MOVE", "SECRET_REPLICATE_CONFIGURE"),
    },
    "secret-versions": {
        "inspect": ("SECRET_VERSION_INSPECT",),
        "read": ("SECRET_VERSION_READ",),
        "manage": ("SECRET_VERSION_DELETE",),
    },
    "secret-bundles": {
        "inspect": ("SECRET_BUNDLE_INSPECT",),
        "read": ("SECRET_BUNDLE_READ",),
    },
    # Load Balancer
    "load-balancers": {
        "inspect": ("LOAD_BALANCER_INSPECT",),
        "read": ("LOAD_BALANCER_READ",),
        "use": ("LOAD_BALANCER_UPDATE", "LOAD_BALANCER_MOVE"),
        "manage": ("LOAD_BALANCER_CREATE", "LOAD_BALANCER_DELETE"),
    },
    # Certificates
    "leaf-certificates": {
        "inspect": ("CERTIFICATE_INSPECT",),
        "read": ("CERTIFICATE_READ",),
        "use": ("CERTIFICATE_UPDATE",),
        "manage": ("CERTIFICATE_CREATE", "CERTIFICATE_DELETE", "CERTIFICATE_MOVE"),
    },
    "leaf-certificate-versions": {
        "inspect": ("CERTIFICATE_VERSION_INSPECT",),
        "read": ("CERTIFICATE_VERSION_READ",),
        "manage": ("CERTIFICATE_VERSION_REVOKE", "CERTIFICATE_VERSION_DELETE"),
    },
    "leaf-certificate-bundles": {
        "inspect": ("CERTIFICATE_BUNDLE_INSPECT",),
        "read": ("CERTIFICATE_BUNDLE_READ",),
    },
    "certificate-authorities": {
        "inspect": ("CERTIFICATE_AUTHORITY_INSPECT",),
        "read": ("CERTIFICATE_AUTHORITY_READ",),
        "use": ("CERTIFICATE_AUTHORITY_UPDATE",),
        "manage": (
            "CERTIFICATE_AUTHORITY_CREATE", "CERTIFICATE_AUTHORITY_DELETE",
            "CERTIFICATE_AUTHORITY_MOVE",
        ),
    },
    "certificate-authority-versions": {
        "inspect": ("CERTIFICATE_AUTHORITY_VERSION_INSPECT",),
        "read": ("CERTIFICATE_AUTHORITY_VERSION_READ",),
        "manage": (
            "CERTIFICATE_AUTHORITY_VERSION_DELETE", "CERTIFICATE_AUTHORITY_VERSION_REVOKE",
        ),
    },
    "certificate-authority-bundles": {
        "inspect": ("CERTIFICATE_AUTHORITY_BUNDLE_INSPECT",),
        "read": ("CERTIFICATE_AUTHORITY_BUNDLE_READ",),
    },
    "certificate-authority-delegates": {"use": ("CERTIFICATE_AUTHORITY_APPLY",)},
    "cabundles": {
        "inspect": ("CABUNDLE_INSPECT",),
        "read": ("CABUNDLE_READ",),
        "use": ("CABUNDLE_UPDATE",),
        "manage": ("CABUNDLE_CREATE", "CABUNDLE_DELETE", "CABUNDLE_MOVE"),
    },
    "certificate-associations": {
        "inspect": ("CERTIFICATE_ASSOCIATION_INSPECT",),
        "read": ("CERTIFICATE_ASSOCIATION_READ",),
        "manage": ("CERTIFICATE_ASSOCIATION_CREATE", "CERTIFICATE_ASSOCIATION_DELETE"),
    },
    "certificate-authority-associations": {
        "inspect": ("CERTIFICATE_AUTHORITY_ASSOCIATION_INSPECT",),
        "read": ("CERTIFICATE_AUTHORITY_ASSOCIATION_READ",),
        "manage": (
            "CERTIFICATE_AUTHORITY_ASSOCIATION_CREATE",
            "CERTIFICATE_AUTHORITY_ASSOCIATION_DELETE",
        ),
    },
    "cabundle-associations": {
        "inspect": ("CABUNDLE_ASSOCIATION_INSPECT",),
        "read": ("CABUNDLE_ASSOCIATION_READ",),
        "manage": ("CABUNDLE_ASSOCIATION_CREATE", "CABUNDLE_ASSOCIATION_DELETE"),
    },
    # Monitoring ("Details for Monitoring": manage adds nothing to use)
    "metrics": {
        "inspect": ("METRIC_INSPECT",),
        "read": ("METRIC_READ",),
        "use": ("METRIC_WRITE",),
    },
    # Notifications: the "Details for Notifications" verb table
    "ons-topics": {
        "inspect": ("ONS_TOPIC_INSPECT",),
        "read": ("ONS_TOPIC_READ",),
        "use": ("ONS_TOPIC_PUBLISH", "ONS_TOPIC_SUBSCRIBE"),
        "manage": ("ONS_TOPIC_CREATE", "ONS_TOPIC_MOVE", "ONS_TOPIC_UPDATE", "ONS_TOPIC_DELETE"),
    },
    "ons-subscriptions": {
        "inspect": ("ONS_SUBSCRIPTION_INSPECT",),
        "manage": ("ONS_SUBSCRIPTION_MOVE",),
    },
    # DNS: the "Details for the DNS Service" verb tables (zones and records; the other DNS
    # types -- steering policies, TSIG keys, views, resolvers -- are not served here)
    "dns-zones": {
        "inspect": ("DNS_ZONE_INSPECT",),
        "read": ("DNS_ZONE_READ",),
        "use": ("DNS_ZONE_UPDATE",),
        "manage": ("DNS_ZONE_CREATE", "DNS_ZONE_DELETE", "DNS_ZONE_MOVE"),
    },
    "dns-records": {
        "inspect": ("DNS_RECORD_INSPECT",),
        "read": ("DNS_RECORD_READ",),
        "use": ("DNS_RECORD_UPDATE",),
        "manage": ("DNS_RECORD_CREATE", "DNS_RECORD_DELETE"),
    },
    # Functions: the "Details for Functions" verb tables (use fn-app / fn-function add nothing)
    "fn-app": {
        "inspect": ("FN_APP_LIST",),
        "read": ("FN_APP_READ",),
        "manage": ("FN_APP_CREATE", "FN_APP_DELETE", "FN_APP_UPDATE"),
    },
    "fn-function": {
        "inspect": ("FN_FUNCTION_LIST",),
        "read": ("FN_FUNCTION_READ",),
        "manage": ("FN_FUNCTION_CREATE", "FN_FUNCTION_DELETE", "FN_FUNCTION_UPDATE"),
    },
    "fn-invocation": {
        "use": ("FN_INVOCATION",),
    },
}  # fmt: skip

_LEAF_CERTIFICATE_FAMILY = (
    "leaf-certificates", "leaf-certificate-versions", "leaf-certificate-bundles",
    "cabundles", "certificate-associations", "cabundle-associations",
)  # fmt: skip

# Aggregate resource-types: "<verb> <family>" is one statement per member.
FAMILIES: dict[str, tuple[str, ...]] = {
    "object-family": ("objectstorage-namespaces", "buckets", "objects"),
    "secret-family": ("secrets", "secret-versions", "secret-bundles"),
    "leaf-certificate-family": _LEAF_CERTIFICATE_FAMILY,
    "certificate-authority-family": (
        "certificate-authorities", "certificate-authority-versions",
        "certificate-authority-bundles", "certificate-authority-delegates",
        "certificate-authority-associations", *_LEAF_CERTIFICATE_FAMILY,
    ),
    "ons-family": ("ons-topics", "ons-subscriptions"),
    "dns": ("dns-zones", "dns-records"),  # + the DNS types not served here (grant nothing)
    "functions-family": ("fn-app", "fn-function", "fn-invocation"),
    "all-resources": tuple(RESOURCE_TYPES),
}  # fmt: skip

# Resource-types of services the emulator does not serve: accepted (the product's Terraform
# writes them next to ours), granting nothing here. Any other unknown name is a fixture error.
OTHER_RESOURCE_TYPES = frozenset({
    "repos",
    "virtual-network-family", "vcns", "subnets", "network-security-groups", "vnics",
    "instance-family", "instances", "volume-family", "database-family", "cluster-family",
    "compute-container-family", "compute-container-instances",
    "dns-steering-policies", "dns-steering-policy-attachments", "dns-tsig-keys",
    "dns-views", "dns-resolvers", "logging-family", "log-groups", "log-content",
    "alarms",
    "resource-schedule-family", "resource-schedules", "tag-namespaces", "tag-defaults",
    "compartments", "policies", "groups", "dynamic-groups", "users", "hsm-cluster",
    "cloudevents-rules", "audit-events", "stream-family", "work-requests",
})  # fmt: skip


class Grant(NamedTuple):
    """The least ``<verb> <resource-type>`` that grants a permission."""

    verb: str
    resource_type: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource_type}"


def _index_permissions() -> dict[str, Grant]:
    index: dict[str, Grant] = {}
    for resource_type, by_verb in RESOURCE_TYPES.items():
        for verb in VERBS:
            for permission in by_verb.get(verb, ()):
                index.setdefault(permission, Grant(verb, resource_type))
    return index


PERMISSIONS: dict[str, Grant] = _index_permissions()


def minimum_grant(permission: str) -> Grant:
    """The lowest verb + resource-type that grants ``permission`` (KeyError when unknown)."""
    return PERMISSIONS[permission]


@dataclass(frozen=True, slots=True)
class Need:
    """One permission an operation needs; any one of ``permissions`` satisfies it.

    ``condition_variable``: only a statement whose where-clause tests this variable may grant it
    (OCI's rule for reading a certificate bundle with its private key).
    """

    permissions: tuple[str, ...]
    condition_variable: str | None = None

    def describe(self) -> str:
        """``manage objects (OBJECT_CREATE)``, alternatives joined by ``or``."""
        return " or ".join(f"{minimum_grant(p)} ({p})" for p in self.permissions)


def _needs(*permissions: str) -> tuple[Need, ...]:
    """Every one of ``permissions`` is needed."""
    return tuple(Need((permission,)) for permission in permissions)


def _either(*permissions: str) -> tuple[Need, ...]:
    """Any one of ``permissions`` suffices."""
    return (Need(permissions),)


PRIVATE_KEY_BUNDLE = "CERTIFICATE_CONTENT_WITH_PRIVATE_KEY"

# Operation -> the permissions it needs (all of them; each Need may list alternatives).
# Keys are SDK operation names; a "[variant]" suffix marks operations whose needs depend on the
# target (see requirement_key). "# assumed": OCI's policy reference does not list the operation.
OPERATIONS: dict[str, tuple[Need, ...]] = {
    # ---- Object Storage
    "GetNamespace": (),
    "ListBuckets": _needs("BUCKET_INSPECT"),
    "HeadBucket": _needs("BUCKET_INSPECT"),
    "GetBucket": _needs("BUCKET_READ"),
    "CreateBucket": _needs("BUCKET_CREATE"),
    "UpdateBucket": _needs("BUCKET_UPDATE"),
    "DeleteBucket": _needs("BUCKET_DELETE"),
    "ListObjects": _needs("OBJECT_INSPECT"),
    "ListObjectVersions": _needs("OBJECT_INSPECT"),  # Object Storage policy reference
    "HeadObject": _either("OBJECT_READ", "OBJECT_INSPECT"),
    "GetObject": _needs("OBJECT_READ"),
    "PutObject": _needs("OBJECT_CREATE"),  # a new object
    "PutObject[overwrite]": _needs("OBJECT_OVERWRITE"),  # an existing object
    "RenameObject": _needs("OBJECT_CREATE", "OBJECT_OVERWRITE"),
    "DeleteObject": _needs("OBJECT_DELETE"),
    "CreateMultipartUpload": _needs("OBJECT_CREATE", "OBJECT_OVERWRITE"),
    "UploadPart": _needs("OBJECT_CREATE", "OBJECT_OVERWRITE"),
    "CommitMultipartUpload": _needs("OBJECT_CREATE", "OBJECT_OVERWRITE"),
    "AbortMultipartUpload": _needs("OBJECT_DELETE"),
    "ListMultipartUploads": _needs("BUCKET_READ"),
    "ListMultipartUploadParts": _needs("OBJECT_INSPECT"),
    "CreatePreauthenticatedRequest": _needs("PAR_MANAGE"),
    "GetPreauthenticatedRequest": _either("PAR_MANAGE", "BUCKET_READ"),
    "ListPreauthenticatedRequests": _either("PAR_MANAGE", "BUCKET_READ"),
    "DeletePreauthenticatedRequest": _needs("PAR_MANAGE"),
    # ---- Vault: KMS reads
    "ListVaults": _needs("VAULT_INSPECT"),
    "GetVault": _needs("VAULT_READ"),
    "ListKeys": _needs("KEY_INSPECT"),
    "GetKey": _needs("KEY_READ"),
    # ---- Vault: secrets management
    "CreateSecret": _needs("SECRET_CREATE", "VAULT_CREATE_SECRET", "KEY_ENCRYPT", "KEY_DECRYPT"),
    "UpdateSecret": _needs("SECRET_UPDATE"),
    "GetSecret": _needs("SECRET_READ"),
    "ListSecrets": _needs("SECRET_INSPECT"),
    "RotateSecret": _needs("SECRET_ROTATE"),
    "ScheduleSecretDeletion": _needs("SECRET_DELETE"),
    "CancelSecretDeletion": _needs("SECRET_DELETE"),
    "ListSecretVersions": _needs("SECRET_VERSION_INSPECT"),
    "GetSecretVersion": _needs("SECRET_VERSION_READ"),
    "ScheduleSecretVersionDeletion": _needs("SECRET_VERSION_DELETE", "SECRET_UPDATE"),
    "CancelSecretVersionDeletion": _needs("SECRET_VERSION_DELETE", "SECRET_UPDATE"),
    # ---- Vault: secret retrieval (the Secrets API)
    "GetSecretBundle": _needs("SECRET_BUNDLE_READ"),
    "GetSecretBundleByName": _needs("SECRET_BUNDLE_READ"),
    "ListSecretBundleVersions": _needs("SECRET_BUNDLE_INSPECT"),  # "ListSecretBundles" in docs
    # ---- Load Balancer
    "ListLoadBalancers": _needs("LOAD_BALANCER_INSPECT"),
    "ListShapes": _needs("LOAD_BALANCER_INSPECT"),
    "ListPolicies": _needs("LOAD_BALANCER_INSPECT"),
    "ListProtocols": _needs("LOAD_BALANCER_INSPECT"),
    "GetLoadBalancer": _needs("LOAD_BALANCER_READ"),
    "ListWorkRequests": _needs("LOAD_BALANCER_READ"),
    "GetWorkRequest": _needs("LOAD_BALANCER_READ"),
    "ListBackendSets": _needs("LOAD_BALANCER_READ"),
    "GetBackendSet": _needs("LOAD_BALANCER_READ"),
    "ListBackends": _needs("LOAD_BALANCER_READ"),
    "GetBackend": _needs("LOAD_BALANCER_READ"),
    "GetHealthChecker": _needs("LOAD_BALANCER_READ"),
    "ListCertificates[load-balancer]": _needs("LOAD_BALANCER_READ"),
    "GetLoadBalancerHealth": _needs("LOAD_BALANCER_READ"),  # assumed
    "GetBackendSetHealth": _needs("LOAD_BALANCER_READ"),  # assumed
    "GetBackendHealth": _needs("LOAD_BALANCER_READ"),  # assumed
    "ListRuleSets": _needs("LOAD_BALANCER_READ"),  # assumed
    "GetRuleSet": _needs("LOAD_BALANCER_READ"),  # assumed
    "ListRoutingPolicies": _needs("LOAD_BALANCER_READ"),  # assumed
    "GetRoutingPolicy": _needs("LOAD_BALANCER_READ"),  # assumed
    "ListPathRouteSets": _needs("LOAD_BALANCER_READ"),  # assumed
    "GetPathRouteSet": _needs("LOAD_BALANCER_READ"),  # assumed
    "ListHostnames": _needs("LOAD_BALANCER_READ"),  # assumed
    "GetHostname": _needs("LOAD_BALANCER_READ"),  # assumed
    "ListListenerRules": _needs("LOAD_BALANCER_READ"),  # assumed
    "UpdateLoadBalancer": _needs("LOAD_BALANCER_UPDATE"),
    "CreateBackendSet": _needs("LOAD_BALANCER_UPDATE"),
    "UpdateBackendSet": _needs("LOAD_BALANCER_UPDATE"),
    "DeleteBackendSet": _needs("LOAD_BALANCER_UPDATE"),
    "CreateBackend": _needs("LOAD_BALANCER_UPDATE"),
    "UpdateBackend": _needs("LOAD_BALANCER_UPDATE"),
    "DeleteBackend": _needs("LOAD_BALANCER_UPDATE"),
    "UpdateHealthChecker": _needs("LOAD_BALANCER_UPDATE"),
    "CreateCertificate[load-balancer]": _needs("LOAD_BALANCER_UPDATE"),
    "DeleteCertificate": _needs("LOAD_BALANCER_UPDATE"),
    "CreateListener": _needs("LOAD_BALANCER_UPDATE"),
    "UpdateListener": _needs("LOAD_BALANCER_UPDATE"),
    "DeleteListener": _needs("LOAD_BALANCER_UPDATE"),
    "CreateRuleSet": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "UpdateRuleSet": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "DeleteRuleSet": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "CreateRoutingPolicy": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "UpdateRoutingPolicy": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "DeleteRoutingPolicy": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "CreatePathRouteSet": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "UpdatePathRouteSet": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "DeletePathRouteSet": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "CreateHostname": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "UpdateHostname": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "DeleteHostname": _needs("LOAD_BALANCER_UPDATE"),  # assumed
    "ChangeLoadBalancerCompartment": _needs("LOAD_BALANCER_MOVE"),
    "CreateLoadBalancer": _needs("LOAD_BALANCER_CREATE"),
    "DeleteLoadBalancer": _needs("LOAD_BALANCER_DELETE"),
    # ---- Certificates management (imported certificates: no CA delegate needed)
    "CreateCertificate[certificates]": _needs("CERTIFICATE_CREATE"),
    "ListCertificates[certificates]": _needs("CERTIFICATE_INSPECT"),
    "GetCertificate": _needs("CERTIFICATE_READ"),
    "UpdateCertificate": _needs("CERTIFICATE_UPDATE"),
    "ScheduleCertificateDeletion": _needs("CERTIFICATE_DELETE"),
    "CancelCertificateDeletion": _needs("CERTIFICATE_DELETE"),
    "ListCertificateVersions": _needs("CERTIFICATE_VERSION_INSPECT"),
    "GetCertificateVersion": _needs("CERTIFICATE_VERSION_READ"),
    "ScheduleCertificateVersionDeletion": _needs(
        "CERTIFICATE_VERSION_DELETE", "CERTIFICATE_UPDATE"
    ),
    "CancelCertificateVersionDeletion": _needs("CERTIFICATE_VERSION_DELETE", "CERTIFICATE_UPDATE"),
    "ListCertificateAuthorities": _needs("CERTIFICATE_AUTHORITY_INSPECT"),
    "GetCertificateAuthority": _needs("CERTIFICATE_AUTHORITY_READ"),
    "ListCaBundles": _needs("CABUNDLE_INSPECT"),
    "GetCaBundle": _needs("CABUNDLE_READ"),
    # ---- Certificates retrieval
    "GetCertificateBundle": _needs("CERTIFICATE_BUNDLE_READ"),
    "GetCertificateBundle[private-key]": (
        Need(
            ("CERTIFICATE_BUNDLE_READ",), condition_variable="target.leaf-certificate.bundle-type"
        ),
    ),
    "ListCertificateBundleVersions": _needs("CERTIFICATE_BUNDLE_INSPECT"),
    "GetCertificateAuthorityBundle": _needs("CERTIFICATE_AUTHORITY_BUNDLE_READ"),
    "ListCertificateAuthorityBundleVersions": _needs("CERTIFICATE_AUTHORITY_BUNDLE_INSPECT"),
    # ---- Monitoring (target.metrics.namespace applies) and Notifications
    "PostMetricData": _needs("METRIC_WRITE"),
    "ListMetrics": _needs("METRIC_INSPECT"),
    "SummarizeMetricsData": _needs("METRIC_INSPECT", "METRIC_READ"),
    "ListTopics": _needs("ONS_TOPIC_INSPECT"),
    "GetTopic": _needs("ONS_TOPIC_READ"),
    "PublishMessage": _needs("ONS_TOPIC_PUBLISH"),
    # ---- DNS ("Permissions Required for Each API Operation", Details for the DNS Service)
    "ListZones": _needs("DNS_ZONE_INSPECT"),
    "GetZone": _needs("DNS_ZONE_READ"),
    "GetZoneRecords": _needs("DNS_ZONE_READ", "DNS_RECORD_READ"),
    "PatchZoneRecords": _needs("DNS_ZONE_UPDATE", "DNS_RECORD_UPDATE"),
    "UpdateZoneRecords": _needs("DNS_ZONE_UPDATE", "DNS_RECORD_UPDATE"),
    "GetDomainRecords": _needs("DNS_RECORD_READ"),
    "PatchDomainRecords": _needs("DNS_RECORD_UPDATE"),
    "UpdateDomainRecords": _needs("DNS_RECORD_UPDATE"),
    # ---- Functions ("Details for Functions": Permissions Required for Each API Operation)
    "GetFunction": _needs("FN_FUNCTION_READ"),
    "InvokeFunction": _needs("FN_INVOCATION"),
}

# Served under the same name by the Load Balancer and the Certificates-management APIs.
AMBIGUOUS_OPERATIONS = frozenset({"CreateCertificate", "ListCertificates"})


def requirement_key(operation: str, target: Mapping[str, str]) -> str:
    """The :data:`OPERATIONS` key for ``operation`` on ``target``.

    Reads the ``certificate_service``, ``object_exists`` and ``certificate_bundle_type`` keys
    described in the module docstring.
    """
    if operation in AMBIGUOUS_OPERATIONS:
        if target.get("certificate_service") == "certificates":
            return f"{operation}[certificates]"
        return f"{operation}[load-balancer]"
    if operation == "PutObject" and target.get("object_exists", "").lower() == "true":
        return "PutObject[overwrite]"
    if (
        operation == "GetCertificateBundle"
        and target.get("certificate_bundle_type", "").upper() == PRIVATE_KEY_BUNDLE
    ):
        return "GetCertificateBundle[private-key]"
    return operation


# Condition variables read from the handler's target dict: variable -> target key.
TARGET_VARIABLES: dict[str, str] = {
    "target.bucket.name": "bucket_name",
    "target.object.name": "object_name",
    "target.secret.name": "secret_name",
    "target.secret.id": "secret_id",
    "target.vault.id": "vault_id",
    "target.key.id": "key_id",
    "target.loadbalancer.id": "load_balancer_id",
    "target.leaf-certificate.name": "certificate_name",
    "target.leaf-certificate.id": "certificate_id",
    "target.leaf-certificate.bundle-type": "certificate_bundle_type",
    "target.metrics.namespace": "metrics_namespace",
    "target.dns-zone.id": "dns_zone_id",
    "target.dns-zone.name": "dns_zone_name",
}
# Variables the engine derives from the principal, the operation and the compartment.
REQUEST_VARIABLES = frozenset({
    "request.permission", "request.operation", "request.principal.id", "request.principal.type",
    "request.principal.compartment.id", "request.user.id",
    "target.compartment.id", "target.compartment.name",
})  # fmt: skip
KNOWN_VARIABLES = REQUEST_VARIABLES | frozenset(TARGET_VARIABLES)
# Supported for the product's Terraform, but absent from OCI's Load Balancing policy
# reference ("only the general variables are supported"): real OCI may never apply it.
UNDOCUMENTED_VARIABLES = frozenset({"target.loadbalancer.id"})


# ---------------------------------------------------------------------------------------- parsing


class PolicyError(ValueError):
    """A policy statement or policy fixture that cannot be used; the message says where and why."""


class _Token(NamedTuple):
    kind: str  # word, string, qname, pattern, lbrace, rbrace, comma, eq, ne, end
    text: str  # as written
    value: str  # quotes and slashes removed
    pos: int


_TOKEN_RE = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<qname>'[^']*'/'[^']*')      # 'Domain'/'Group Name'
    | (?P<string>'[^']*'|"[^"]*")
    | (?P<pattern>/[^\n]*?/(?=[\s,}]|\Z))  # may hold "/": object-name patterns
    | (?P<lbrace>\{) | (?P<rbrace>\}) | (?P<comma>,) | (?P<ne>!=) | (?P<eq>=)
    | (?P<word>[^\s{},='"!;/][^\s{},='"!;]*)
    """,
    re.VERBOSE,
)
_PERMISSION_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _located(text: str, pos: int, reason: str) -> str:
    """``reason`` plus the statement with a caret under ``pos``."""
    shown = re.sub(r"\s", " ", text)
    return f"{reason} (position {pos}):\n    {shown}\n    {' ' * pos}^"


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        found = _TOKEN_RE.match(text, pos)
        if found is None:
            char = text[pos]
            reason = {
                "'": "unterminated quoted string",
                '"': "unterminated quoted string",
                "/": "unterminated /pattern/",
            }.get(char, f"unexpected character {char!r}")
            raise PolicyError(_located(text, pos, reason))
        kind = found.lastgroup or "word"
        raw = found.group()
        if kind != "space":
            value = raw
            if kind in ("string", "pattern"):
                value = raw[1:-1]
            elif kind == "qname":
                value = raw.replace("'", "")
            tokens.append(_Token(kind, raw, value, pos))
        pos = found.end()
    tokens.append(_Token("end", "", "", len(text)))
    return tokens


SubjectKind = Literal["group", "dynamic-group", "any-user", "any-group", "service"]
_SUBJECT_KINDS: dict[str, SubjectKind] = {
    "group": "group",
    "dynamic-group": "dynamic-group",
    "any-user": "any-user",
    "any-group": "any-group",
    "service": "service",
}


@dataclass(frozen=True, slots=True)
class Subject:
    """Who a statement is for. ``members``: ``("name", <name>)`` or ``("id", <ocid>)`` pairs."""

    kind: SubjectKind
    members: tuple[tuple[str, str], ...] = ()

    def matches(self, principal: Principal) -> bool:
        """Whether ``principal`` is one of the statement's subjects."""
        if self.kind == "any-user":
            return True
        if self.kind == "any-group":
            return bool(principal.groups)
        wanted_kind = {"group": "user", "dynamic-group": "resource"}.get(self.kind)
        if principal.kind != wanted_kind:
            return False  # service statements and the wrong kind of principal
        groups = {_group_key(g) for g in principal.groups}
        return any(_group_key(value) in groups for _, value in self.members)

    def __str__(self) -> str:
        if not self.members:
            return self.kind
        names = ", ".join(f"id {v}" if k == "id" else _quote_name(v) for k, v in self.members)
        return f"{self.kind} {names}"


def _group_key(name: str) -> str:
    """Groups compare case-insensitively; the Default identity domain may be named or not."""
    key = name.strip().lower()
    return key.removeprefix("default/")


def _quote_name(name: str) -> str:
    return name if re.fullmatch(r"[^\s{},='\"!/]+(/[^\s{},='\"!/]+)?", name) else f"'{name}'"


@dataclass(frozen=True, slots=True)
class Action:
    """What a statement grants: ``verb`` + ``resource_type``, or an explicit permission list."""

    verb: str | None
    resource_type: str | None
    resource_types: frozenset[str]
    permissions: frozenset[str] | None = None

    def grants(self, permission: str) -> bool:
        """Whether this action includes ``permission``."""
        if self.permissions is not None:
            return permission in self.permissions
        grant = PERMISSIONS.get(permission)
        if grant is None or self.verb is None:
            return False
        return (
            grant.resource_type in self.resource_types
            and _VERB_RANK[self.verb] >= _VERB_RANK[grant.verb]
        )

    def __str__(self) -> str:
        if self.permissions is not None:
            return "{" + ", ".join(sorted(self.permissions)) + "}"
        return f"{self.verb} {self.resource_type}"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a statement applies, as written: ``tenancy``, a compartment path or an OCID."""

    kind: Literal["tenancy", "name", "id"]
    value: str = ""

    def __str__(self) -> str:
        if self.kind == "tenancy":
            return "tenancy"
        if self.kind == "id":
            return f"compartment id {self.value}"
        return f"compartment {_quote_name(self.value)}"


@dataclass(frozen=True, slots=True)
class Comparison:
    """``variable = value`` (``negate``: ``!=``); ``pattern`` values use ``*`` wildcards."""

    variable: str
    value: str
    negate: bool = False
    pattern: bool = False

    def evaluate(self, values: Mapping[str, str]) -> bool:
        """False whenever the variable is not applicable, for ``=`` and ``!=`` alike."""
        actual = values.get(self.variable)
        if actual is None:
            return False
        if self.pattern:
            regex = ".*".join(re.escape(part) for part in self.value.split("*"))
            matched = re.fullmatch(regex, actual, re.IGNORECASE | re.DOTALL) is not None
        else:
            matched = actual.casefold() == self.value.casefold()
        return matched != self.negate

    def variables(self) -> frozenset[str]:
        """The variables this condition reads."""
        return frozenset({self.variable})

    def __str__(self) -> str:
        value = f"/{self.value}/" if self.pattern else f"'{self.value}'"
        return f"{self.variable} {'!=' if self.negate else '='} {value}"


@dataclass(frozen=True, slots=True)
class Combination:
    """``all {...}`` (``require_all``) or ``any {...}``."""

    require_all: bool
    items: tuple[Condition, ...]

    def evaluate(self, values: Mapping[str, str]) -> bool:
        """AND / OR of the items."""
        results = (item.evaluate(values) for item in self.items)
        return all(results) if self.require_all else any(results)

    def variables(self) -> frozenset[str]:
        """The variables this condition reads."""
        return frozenset(name for item in self.items for name in item.variables())

    def __str__(self) -> str:
        inner = ", ".join(str(item) for item in self.items)
        return f"{'all' if self.require_all else 'any'} {{{inner}}}"


Condition = Comparison | Combination


@dataclass(frozen=True, slots=True)
class Statement:
    """One parsed ``Allow`` statement; ``str()`` gives its canonical spelling."""

    text: str
    subject: Subject
    action: Action
    location: Location
    condition: Condition | None = None

    def __str__(self) -> str:
        where = f" where {self.condition}" if self.condition is not None else ""
        return f"Allow {self.subject} to {self.action} in {self.location}{where}"


def parse_statement(text: str) -> Statement:
    """Parse one policy statement; :class:`PolicyError` (a ValueError) says where and why."""
    return _Parser(text).statement()


def _resource_types(name: str) -> frozenset[str]:
    if name in FAMILIES:
        return frozenset(FAMILIES[name])
    if name in RESOURCE_TYPES:
        return frozenset({name})
    if name in OTHER_RESOURCE_TYPES:
        return frozenset()
    raise KeyError(name)


class _Parser:
    """Recursive descent over the tokens of one statement."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    # -------------------------------------------------------------- token helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def error(self, reason: str, token: _Token) -> PolicyError:
        found = "the end of the statement" if token.kind == "end" else repr(token.text)
        return PolicyError(_located(self.text, token.pos, f"{reason}, found {found}"))

    @staticmethod
    def is_word(token: _Token, *words: str) -> bool:
        return token.kind == "word" and token.text.lower() in words

    def keyword(self, word: str, context: str) -> None:
        token = self.take()
        if not self.is_word(token, word):
            raise self.error(f"expected '{word}' {context}", token)

    # -------------------------------------------------------------- grammar

    def statement(self) -> Statement:
        first = self.take()
        if self.is_word(first, "deny", "define", "endorse", "admit"):
            reason = f"'{first.text}' statements are not supported by the emulator (only Allow)"
            raise PolicyError(_located(self.text, first.pos, reason))
        if not self.is_word(first, "allow"):
            raise self.error("a statement must start with 'Allow'", first)
        subject = self.subject()
        self.keyword("to", "after the subject")
        action = self.action()
        self.keyword("in", "after the resource-type")
        location = self.location()
        condition = None
        if self.is_word(self.peek(), "where"):
            self.take()
            condition = self.condition()
        if self.peek().kind != "end":
            raise self.error("expected 'where' or the end of the statement", self.peek())
        return Statement(self.text, subject, action, location, condition)

    def subject(self) -> Subject:
        token = self.take()
        kind = _SUBJECT_KINDS.get(token.text.lower()) if token.kind == "word" else None
        if kind in ("any-user", "any-group"):
            return Subject(kind)
        if kind is not None:
            return Subject(kind, tuple(self.members(kind)))
        raise self.error(
            "expected a subject (group, dynamic-group, any-user, any-group or service)", token
        )

    def members(self, kind: str) -> list[tuple[str, str]]:
        members = [self.member(kind)]
        while self.peek().kind == "comma":
            self.take()
            following = self.peek()
            if self.is_word(following, kind):
                self.take()
            elif self.is_word(following, "group", "dynamic-group", "any-user", "any-group"):
                raise self.error(
                    f"a statement names one kind of subject ({kind}); write another statement",
                    following,
                )
            members.append(self.member(kind))
        return members

    def member(self, kind: str) -> tuple[str, str]:
        token = self.take()
        if self.is_word(token, "id") and kind != "service":
            ocid = self.take()
            if ocid.kind not in ("word", "string") or not ocid.value.startswith("ocid1."):
                raise self.error(f"expected a {kind} OCID after 'id'", ocid)
            return ("id", ocid.value)
        if token.kind in ("string", "qname") or (
            token.kind == "word" and not self.is_word(token, "to")
        ):
            return ("name", token.value)
        raise self.error(f"expected a {kind} name", token)

    def action(self) -> Action:
        token = self.take()
        if token.kind == "lbrace":
            permissions: set[str] = set()
            while True:
                permission = self.take()
                if permission.kind != "word" or not _PERMISSION_RE.fullmatch(permission.text):
                    raise self.error("expected a permission name such as OBJECT_READ", permission)
                permissions.add(permission.text.upper())
                separator = self.take()
                if separator.kind == "rbrace":
                    return Action(None, None, frozenset(), frozenset(permissions))
                if separator.kind != "comma":
                    raise self.error("expected ',' or '}' in the permission list", separator)
        if not self.is_word(token, *VERBS):
            raise self.error(
                "expected a verb (inspect, read, use, manage) or a {PERMISSION, ...} list", token
            )
        type_token = self.take()
        name = type_token.text.lower()
        if type_token.kind != "word" or name == "in":
            raise self.error("expected a resource-type after the verb", type_token)
        try:
            types = _resource_types(name)
        except KeyError:
            raise self.error(
                "unknown resource-type (the emulator knows "
                + ", ".join(sorted({*RESOURCE_TYPES, *FAMILIES}))
                + " and ignores other services' types)",
                type_token,
            ) from None
        return Action(token.text.lower(), name, types)

    def location(self) -> Location:
        token = self.take()
        if self.is_word(token, "tenancy"):
            return Location("tenancy")
        if not self.is_word(token, "compartment"):
            raise self.error("expected 'tenancy' or 'compartment ...' after 'in'", token)
        if self.is_word(self.peek(), "id"):
            self.take()
            ocid = self.take()
            if ocid.kind not in ("word", "string") or not ocid.value.startswith("ocid1."):
                raise self.error("expected a compartment OCID after 'compartment id'", ocid)
            return Location("id", ocid.value)
        name = self.take()
        if name.kind not in ("word", "string") or self.is_word(name, "where"):
            raise self.error("expected a compartment name or 'id <ocid>'", name)
        return Location("name", name.value)

    def condition(self) -> Condition:
        token = self.peek()
        if self.is_word(token, "any", "all") and self.peek(1).kind == "lbrace":
            self.take()
            self.take()
            items = [self.condition()]
            while True:
                separator = self.take()
                if separator.kind == "rbrace":
                    return Combination(token.text.lower() == "all", tuple(items))
                if separator.kind != "comma":
                    raise self.error("expected ',' or '}' in the condition list", separator)
                items.append(self.condition())
        variable = self.take()
        if variable.kind != "word" or "." not in variable.text:
            raise self.error(
                "expected a condition: <variable> = <value>, any {...} or all {...}", variable
            )
        operator = self.take()
        if operator.kind not in ("eq", "ne"):
            raise self.error(
                f"expected '=' or '!=' after {variable.text} (the emulator supports only those)",
                operator,
            )
        value = self.take()
        if value.kind == "word" and value.text.lower().startswith(("request.", "target.")):
            raise self.error("comparing two variables is not supported by the emulator", value)
        if value.kind not in ("string", "pattern", "word"):
            raise self.error("expected a value: 'string' or /pattern/", value)
        return Comparison(
            variable.text.lower(),
            value.value,
            negate=operator.kind == "ne",
            pattern=value.kind == "pattern",
        )


# ---------------------------------------------------------------------------------- compartments


class CompartmentTree:
    """The fixture's compartments: names, OCIDs and parents (the tenancy when not given)."""

    def __init__(self, tenancy_id: str, compartments: Mapping[str, tuple[str, str]]) -> None:
        """``compartments``: OCID -> (name, parent OCID)."""
        self.tenancy_id = tenancy_id
        self._names = {cid: name for cid, (name, _) in compartments.items()}
        self._parents = {cid: parent for cid, (_, parent) in compartments.items()}
        self._children = {
            (parent, name.casefold()): cid for cid, (name, parent) in compartments.items()
        }
        for cid in self._parents:
            self.ancestors(cid)  # raises on a cycle or a dangling parent

    @classmethod
    def from_fixture(cls, entries: Iterable[Mapping[str, Any]], tenancy_id: str) -> CompartmentTree:
        """Read ``[{"name", "id", "parent"?}]``; ``parent`` is a name or an OCID."""
        listed = list(entries)
        by_name: dict[str, str] = {}
        for position, entry in enumerate(listed):
            if not isinstance(entry, Mapping) or not entry.get("name") or not entry.get("id"):
                msg = f"compartments[{position}]: an object with 'name' and 'id' is required"
                raise PolicyError(msg)
            by_name[str(entry["name"])] = str(entry["id"])
        ids = set(by_name.values())
        compartments: dict[str, tuple[str, str]] = {}
        for entry in listed:
            name, cid, parent = str(entry["name"]), str(entry["id"]), entry.get("parent")
            if parent is None or parent in (tenancy_id, "tenancy"):
                parent_id = tenancy_id
            elif parent in by_name:
                parent_id = by_name[parent]
            elif parent in ids:
                parent_id = str(parent)
            else:
                msg = f"compartment {name!r}: unknown parent {parent!r} (a compartment or tenancy)"
                raise PolicyError(msg)
            compartments[cid] = (name, parent_id)
        return cls(tenancy_id, compartments)

    def ancestors(self, compartment_id: str) -> list[str]:
        """``compartment_id``, its parent, ... up to the tenancy (unknown OCIDs: under the root)."""
        chain = [compartment_id]
        current = compartment_id
        while current != self.tenancy_id:
            current = self._parents.get(current, self.tenancy_id)
            if current in chain:
                msg = f"compartment {self.label(current)} is its own ancestor"
                raise PolicyError(msg)
            chain.append(current)
        return chain

    def name_of(self, compartment_id: str) -> str | None:
        """The compartment's name (None for the tenancy and unknown OCIDs)."""
        return self._names.get(compartment_id)

    def knows(self, compartment_id: str) -> bool:
        """Whether the fixture declares this compartment."""
        return compartment_id in self._names

    def label(self, compartment_id: str) -> str:
        """``apps (ocid1...)`` for messages."""
        if compartment_id == self.tenancy_id:
            return f"tenancy ({compartment_id})"
        name = self._names.get(compartment_id)
        return f"{name} ({compartment_id})" if name else compartment_id

    def resolve(self, path: str, base: str) -> str:
        """The OCID of ``a:b:c`` below ``base``; PolicyError names the missing step."""
        current = base
        for step in path.split(":"):
            found = self._children.get((current, step.strip().casefold()))
            if found is None:
                children = sorted(
                    self._names[cid] for (parent, _), cid in self._children.items()
                    if parent == current
                )  # fmt: skip
                known = ", ".join(children) or "none"
                msg = (
                    f"compartment {step!r} not found in {self.label(current)} "
                    f"(its compartments: {known}); names are relative to the compartment the "
                    "policy is attached to"
                )
                raise PolicyError(msg)
            current = found
        return current

    def policy_compartment(self, reference: object) -> str:
        """Where a fixture policy is attached: None / "tenancy" / a name / an OCID."""
        if reference in (None, "", "tenancy", self.tenancy_id):
            return self.tenancy_id
        text = str(reference)
        if text in self._names:
            return text
        for cid, name in self._names.items():
            if name == text:
                return cid
        msg = f"unknown compartment {text!r} (neither the tenancy nor a fixture compartment)"
        raise PolicyError(msg)


# ---------------------------------------------------------------------------------------- engine


@dataclass(frozen=True, slots=True)
class BoundStatement:
    """A statement of a fixture policy, its location resolved (``compartment_id`` None: tenancy)."""

    policy: str
    number: int  # 1-based, within the policy
    statement: Statement
    compartment_id: str | None

    @property
    def ref(self) -> str:
        """``policy 'renewer' statement 2``."""
        return f"policy {self.policy!r} statement {self.number}"

    def covers(self, ancestors: Sequence[str]) -> bool:
        """Whether the statement applies to a compartment with these ancestors."""
        return self.compartment_id is None or self.compartment_id in ancestors


@dataclass(frozen=True, slots=True)
class _Verdict:
    """One need's outcome: the granting statement, or why each candidate did not grant."""

    need: Need
    granted_by: BoundStatement | None
    misses: tuple[str, ...]


class PolicyEngine:
    """Evaluates fixture policies; implements ``server.Authorizer``.

    Build it with :meth:`from_fixture`. :meth:`allows` answers the emulator; :meth:`explain`
    says why, for test failure messages.
    """

    def __init__(
        self,
        *,
        tenancy_id: str,
        compartments: CompartmentTree,
        statements: Sequence[BoundStatement],
    ) -> None:
        self.tenancy_id = tenancy_id
        self.compartments = compartments
        self.statements = tuple(statements)

    @classmethod
    def from_fixture(cls, fixture: Mapping[str, Any], tenancy: Tenancy) -> PolicyEngine:
        """Read ``compartments`` and ``policies``; PolicyError (ValueError) names a bad entry."""
        tree = CompartmentTree.from_fixture(fixture.get("compartments") or [], tenancy.tenancy)
        bound: list[BoundStatement] = []
        for position, policy in enumerate(fixture.get("policies") or []):
            if not isinstance(policy, Mapping):
                msg = f"policies[{position}] must be an object"
                raise PolicyError(msg)
            name = str(policy.get("name") or f"policies[{position}]")
            statements = policy.get("statements")
            if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
                msg = f"policy {name!r}: 'statements' must be a list of strings"
                raise PolicyError(msg)
            try:
                attached = tree.policy_compartment(policy.get("compartment"))
            except PolicyError as exc:
                msg = f"policy {name!r}: {exc}"
                raise PolicyError(msg) from exc
            for number, text in enumerate(statements, start=1):
                try:
                    statement = parse_statement(text)
                    compartment_id = _bind_location(statement.location, attached, tree)
                except PolicyError as exc:
                    msg = f"policy {name!r}, statement {number}: {exc}"
                    raise PolicyError(msg) from exc
                entry = BoundStatement(name, number, statement, compartment_id)
                _warn_about_variables(entry)
                bound.append(entry)
        return cls(tenancy_id=tenancy.tenancy, compartments=tree, statements=bound)

    # ------------------------------------------------------------------ the Authorizer protocol

    def allows(
        self,
        principal: Principal,
        operation: str,
        compartment_id: str,
        target: Mapping[str, str],
    ) -> bool:
        """True when policies grant every permission ``operation`` needs on ``target``."""
        allowed, _ = self._decide(principal, operation, compartment_id, target)
        # Operation, principal OCID and compartment only: never target values or credentials.
        logger.debug(
            "policy decision: %s %s by %s in %s",
            "allow" if allowed else "deny",
            operation,
            principal.id,
            compartment_id,
        )
        return allowed

    def explain(
        self,
        principal: Principal,
        operation: str,
        compartment_id: str,
        target: Mapping[str, str],
    ) -> str:
        """Which statements granted the operation, or why none did (multi-line text)."""
        allowed, lines = self._decide(principal, operation, compartment_id, target)
        groups = ", ".join(sorted(principal.groups)) or "none"
        header = (
            f"{'ALLOWED' if allowed else 'DENIED'}: {operation} by {principal.kind} "
            f"{principal.id} (groups: {groups}) in {self.compartments.label(compartment_id)}"
        )
        return "\n".join([header, *lines])

    # ------------------------------------------------------------------ evaluation

    def _decide(
        self,
        principal: Principal,
        operation: str,
        compartment_id: str,
        target: Mapping[str, str],
    ) -> tuple[bool, list[str]]:
        if principal.tenancy != self.tenancy_id:
            return False, [
                f"  the principal belongs to tenancy {principal.tenancy}, not {self.tenancy_id}; "
                "cross-tenancy (Endorse/Admit) statements are not supported"
            ]
        # A "[variant]" is chosen from the target, never named by the caller.
        key = None if "[" in operation else requirement_key(operation, target)
        needs = OPERATIONS.get(key) if key else None
        if needs is None:
            return False, [
                f"  {operation!r} is not in the emulator's permission table (policies.OPERATIONS);"
                " unknown operations are denied"
            ]
        lines: list[str] = []
        if operation in AMBIGUOUS_OPERATIONS:
            service = "Certificates" if key and key.endswith("[certificates]") else "Load Balancer"
            lines.append(f"  {operation} evaluated as the {service} operation")
        if not needs:
            return True, [*lines, f"  {operation} needs no permission"]
        verdicts = [
            self._check(need, principal, operation, compartment_id, target) for need in needs
        ]
        for verdict in verdicts:
            if verdict.granted_by is not None:
                lines.append(
                    f"  {verdict.need.describe()}: granted by {verdict.granted_by.ref}: "
                    f"{verdict.granted_by.statement.text.strip()}"
                )
                continue
            wanted = " or ".join(str(minimum_grant(p)) for p in verdict.need.permissions)
            lines.append(
                f"  {verdict.need.describe()}: no statement grants {wanted} to this principal "
                f"in {self.compartments.label(compartment_id)}"
            )
            lines.extend(f"    - {miss}" for miss in verdict.misses)
        return all(v.granted_by is not None for v in verdicts), lines

    def _check(
        self,
        need: Need,
        principal: Principal,
        operation: str,
        compartment_id: str,
        target: Mapping[str, str],
    ) -> _Verdict:
        """Find a statement granting ``need``; otherwise collect the near misses."""
        misses: list[str] = []  # near misses only: statements about the needed resource-type
        others: set[str] = set()  # what the principal's other statements grant
        for bound in self.statements:
            if not bound.statement.subject.matches(principal):
                continue
            reason = self._why_not(bound, need, principal, operation, compartment_id, target)
            if reason is None:
                return _Verdict(need, bound, ())
            if reason:
                misses.append(f"{bound.ref} ({bound.statement.text.strip()}): {reason}")
            else:
                others.add(str(bound.statement.action))
        if others:
            misses.append(f"this principal's other statements grant {', '.join(sorted(others))}")
        elif not misses:
            misses.append("no statement names this principal")
        return _Verdict(need, None, tuple(misses))

    def _why_not(
        self,
        bound: BoundStatement,
        need: Need,
        principal: Principal,
        operation: str,
        compartment_id: str,
        target: Mapping[str, str],
    ) -> str | None:
        """None when ``bound`` grants ``need``; else why not ("" when it is about another type)."""
        statement = bound.statement
        permissions = [p for p in need.permissions if statement.action.grants(p)]
        if not permissions:
            return f"grants only {statement.action}" if _about(statement.action, need) else ""
        if not bound.covers(self.compartments.ancestors(compartment_id)):
            place = self.compartments.label(bound.compartment_id or self.tenancy_id)
            return f"applies in {place} and below"
        condition = statement.condition
        if need.condition_variable and (
            condition is None or need.condition_variable not in condition.variables()
        ):
            return f"its where-clause must test {need.condition_variable}"
        if condition is None:
            return None
        values: dict[str, str] = {}
        for permission in permissions:
            values = self._variables(principal, operation, compartment_id, target, permission)
            if condition.evaluate(values):
                return None
        return f"where-clause is false ({_show(condition, values)})"

    def _variables(
        self,
        principal: Principal,
        operation: str,
        compartment_id: str,
        target: Mapping[str, str],
        permission: str,
    ) -> dict[str, str]:
        values = {
            "request.permission": permission,
            "request.operation": operation,
            "request.principal.id": principal.id,
            "request.principal.type": _principal_type(principal),
            "target.compartment.id": compartment_id,
        }
        if principal.kind == "user":
            values["request.user.id"] = principal.id
        if principal.compartment:
            values["request.principal.compartment.id"] = principal.compartment
        name = self.compartments.name_of(compartment_id)
        if name is not None:
            values["target.compartment.name"] = name
        for variable, key in TARGET_VARIABLES.items():
            value = target.get(key)
            if value is not None:
                values[variable] = str(value)
        return values


def _principal_type(principal: Principal) -> str:
    """The resource type in the principal's OCID (``user``, ``fnfunc``...), else its kind."""
    parts = principal.id.split(".")
    if len(parts) > 1 and parts[0] == "ocid1" and parts[1]:
        return parts[1]
    return principal.kind


def _about(action: Action, need: Need) -> bool:
    """Whether ``action`` concerns the resource-type of ``need`` (a near miss worth showing)."""
    if action.permissions is not None:
        return True
    return any(minimum_grant(p).resource_type in action.resource_types for p in need.permissions)


def _show(condition: Condition, values: Mapping[str, str]) -> str:
    shown = [
        f"{name}={values[name]!r}" if name in values else f"{name} not applicable"
        for name in sorted(condition.variables())
    ]
    return ", ".join(shown)


def _bind_location(location: Location, attached: str, tree: CompartmentTree) -> str | None:
    """The OCID a statement's location names (None: tenancy), checked against the policy's."""
    if location.kind == "tenancy":
        if attached != tree.tenancy_id:
            msg = (
                "'in tenancy' is only valid in a policy attached to the tenancy; this policy is "
                f"attached to {tree.label(attached)}"
            )
            raise PolicyError(msg)
        return None
    if location.kind == "name":
        return tree.resolve(location.value, attached)
    ocid = location.value
    if ocid == tree.tenancy_id:
        msg = "write 'in tenancy' rather than 'in compartment id <tenancy OCID>'"
        raise PolicyError(msg)
    if tree.knows(ocid):
        if attached not in tree.ancestors(ocid):
            msg = (
                f"compartment {tree.label(ocid)} is not part of the policy's compartment subtree "
                f"({tree.label(attached)})"
            )
            raise PolicyError(msg)
    elif attached != tree.tenancy_id:
        msg = f"unknown compartment id {ocid} (not in the fixture's compartments)"
        raise PolicyError(msg)
    return ocid


def _warn_about_variables(entry: BoundStatement) -> None:
    condition = entry.statement.condition
    if condition is None:
        return
    for variable in sorted(condition.variables()):
        if variable not in KNOWN_VARIABLES:
            logger.warning(
                "%s: variable %s is unknown to the emulator; comparisons with it are false",
                entry.ref,
                variable,
            )
        elif variable in UNDOCUMENTED_VARIABLES:
            logger.warning(
                "%s: %s is not in OCI's policy reference; real OCI may never apply it",
                entry.ref,
                variable,
            )
