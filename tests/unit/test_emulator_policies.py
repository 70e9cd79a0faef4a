"""The emulator's IAM policy engine: OCI's statement grammar and permission model, table-driven.

Every decision is asserted with ``PolicyEngine.explain`` as the failure message, so a failing case
says which statement granted what, or why none did.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sandbox.oci_emulator.app import Tenancy, _policy_engine
from sandbox.oci_emulator.core import Principal
from sandbox.oci_emulator.policies import (
    AMBIGUOUS_OPERATIONS,
    FAMILIES,
    OPERATIONS,
    PERMISSIONS,
    PRIVATE_KEY_BUNDLE,
    RESOURCE_TYPES,
    VERBS,
    PolicyEngine,
    PolicyError,
    minimum_grant,
    parse_statement,
)

pytestmark = pytest.mark.unit

TENANCY = "ocid1.tenancy.oc1..tenancy"
APPS = "ocid1.compartment.oc1..apps"
TEAM = "ocid1.compartment.oc1..team"  # apps:team
DEEP = "ocid1.compartment.oc1..deep"  # apps:team:deep
OTHER = "ocid1.compartment.oc1..other"
UNDECLARED = "ocid1.compartment.oc1..undeclared"
COMPARTMENTS = [
    {"name": "apps", "id": APPS},
    {"name": "team", "id": TEAM, "parent": "apps"},
    {"name": "deep", "id": DEEP, "parent": TEAM},
    {"name": "other", "id": OTHER},
]
LB = "ocid1.loadbalancer.oc1.phx.lb"
OTHER_LB = "ocid1.loadbalancer.oc1.phx.other"
VAULT = "ocid1.vault.oc1.phx.vault"

RENEWER = Principal(
    kind="resource",
    id="ocid1.fnfunc.oc1.phx.renewer",
    tenancy=TENANCY,
    compartment=APPS,
    groups=frozenset({"renewer-dg"}),
)
TOKEN_SERVER = Principal(
    kind="resource",
    id="ocid1.computecontainerinstance.oc1.phx.tokens",
    tenancy=TENANCY,
    compartment=APPS,
    groups=frozenset({"token-server-dg"}),
)
OPERATOR = Principal(
    kind="user",
    id="ocid1.user.oc1..operator",
    tenancy=TENANCY,
    groups=frozenset({"Admins", "ocid1.group.oc1..admins"}),
)
NOBODY = Principal(kind="user", id="ocid1.user.oc1..nobody", tenancy=TENANCY)
STRANGER = Principal(
    kind="user", id="ocid1.user.oc1..stranger", tenancy="ocid1.tenancy.oc1..elsewhere"
)

# The statements the product's Terraform writes (issue #7).
PRODUCT_STATEMENTS = [
    "Allow dynamic-group renewer-dg to manage objects in compartment apps "
    "where target.bucket.name = 'acme-challenges'",
    "Allow dynamic-group renewer-dg to manage secret-family in compartment apps",
    "Allow dynamic-group renewer-dg to use load-balancers in compartment apps",
    "Allow dynamic-group token-server-dg to read objects in compartment apps "
    "where target.bucket.name = 'acme-challenges'",
]

# How to call each "[variant]" key of OPERATIONS: the operation name and the target it needs.
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "PutObject[overwrite]": ("PutObject", {"object_exists": "true"}),
    "CreateCertificate[load-balancer]": ("CreateCertificate", {"load_balancer_id": LB}),
    "ListCertificates[load-balancer]": ("ListCertificates", {"load_balancer_id": LB}),
    "CreateCertificate[certificates]": (
        "CreateCertificate",
        {"certificate_service": "certificates"},
    ),
    "ListCertificates[certificates]": ("ListCertificates", {"certificate_service": "certificates"}),
    "GetCertificateBundle[private-key]": (
        "GetCertificateBundle",
        {"certificate_service": "certificates", "certificate_bundle_type": PRIVATE_KEY_BUNDLE},
    ),
}


def fixture_with(*statements: str, compartment: str | None = None) -> dict[str, Any]:
    return {
        "tenancy": TENANCY,
        "compartments": COMPARTMENTS,
        "policies": [{"name": "p", "compartment": compartment, "statements": list(statements)}],
    }


def engine_for(*statements: str, compartment: str | None = None) -> PolicyEngine:
    fixture = fixture_with(*statements, compartment=compartment)
    return PolicyEngine.from_fixture(fixture, Tenancy.from_fixture(fixture))


def call(operation_key: str) -> tuple[str, dict[str, str]]:
    """An OPERATIONS key as the emulator would ask it: operation name plus target."""
    return VARIANTS.get(operation_key, (operation_key, {}))


def assert_decision(
    engine: PolicyEngine,
    principal: Principal,
    operation: str,
    expected: bool,
    *,
    compartment: str = APPS,
    target: dict[str, str] | None = None,
) -> None:
    target = target or {}
    allowed = engine.allows(principal, operation, compartment, target)
    assert allowed is expected, engine.explain(principal, operation, compartment, target)


# ------------------------------------------------------------------------------------ parsing

READ = "Allow group A to read objects in tenancy"


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            "Allow group Admins to manage all-resources in tenancy",
            "Allow group Admins to manage all-resources in tenancy",
        ),
        (
            "allow GROUP Admins TO Manage OBJECTS IN Tenancy",
            "Allow group Admins to manage objects in tenancy",
        ),
        (
            "Allow group id ocid1.group.oc1..aaa to read buckets in compartment apps",
            "Allow group id ocid1.group.oc1..aaa to read buckets in compartment apps",
        ),
        (
            f"Allow dynamic-group renewer-dg to use load-balancers in compartment id {APPS}",
            f"Allow dynamic-group renewer-dg to use load-balancers in compartment id {APPS}",
        ),
        (
            "Allow dynamic-group id ocid1.dynamicgroup.oc1..dg to read secret-bundles in tenancy",
            "Allow dynamic-group id ocid1.dynamicgroup.oc1..dg to read secret-bundles in tenancy",
        ),
        (
            "Allow any-user to inspect buckets in tenancy",
            "Allow any-user to inspect buckets in tenancy",
        ),
        (
            "Allow any-group to read objects in tenancy",
            "Allow any-group to read objects in tenancy",
        ),
        (
            "Allow group A, group B to read objects in tenancy",
            "Allow group A, B to read objects in tenancy",
        ),
        (
            "Allow group A,B to read objects in tenancy",
            "Allow group A, B to read objects in tenancy",
        ),
        (
            "Allow dynamic-group a-dg, dynamic-group b-dg to use keys in tenancy",
            "Allow dynamic-group a-dg, b-dg to use keys in tenancy",
        ),
        (
            "Allow group id ocid1.group.oc1..a, id ocid1.group.oc1..b to read objects in tenancy",
            "Allow group id ocid1.group.oc1..a, id ocid1.group.oc1..b to read objects in tenancy",
        ),
        (
            "Allow group 'Cert Admins' to manage leaf-certificate-family in tenancy",
            "Allow group 'Cert Admins' to manage leaf-certificate-family in tenancy",
        ),
        (
            "Allow group Default/Admins to manage secret-family in tenancy",
            "Allow group Default/Admins to manage secret-family in tenancy",
        ),
        (
            "Allow group 'Default'/'Admins' to manage secret-family in tenancy",
            "Allow group Default/Admins to manage secret-family in tenancy",
        ),
        (
            "Allow service objectstorage-us-phoenix-1 to manage object-family in tenancy",
            "Allow service objectstorage-us-phoenix-1 to manage object-family in tenancy",
        ),
        (
            "Allow group A to {object_read, OBJECT_INSPECT} in tenancy",
            "Allow group A to {OBJECT_INSPECT, OBJECT_READ} in tenancy",
        ),
        (
            "Allow group A to manage objects in compartment apps:team",
            "Allow group A to manage objects in compartment apps:team",
        ),
        (
            "Allow group A to manage objects in compartment 'my apps'",
            "Allow group A to manage objects in compartment 'my apps'",
        ),
        (
            "Allow dynamic-group d to use fn-invocation in compartment apps",
            "Allow dynamic-group d to use fn-invocation in compartment apps",
        ),
        (
            "Allow group A to manage objects in tenancy where target.bucket.name='acme'",
            "Allow group A to manage objects in tenancy where target.bucket.name = 'acme'",
        ),
        (
            'Allow group A to manage objects in tenancy where TARGET.Bucket.Name != "acme"',
            "Allow group A to manage objects in tenancy where target.bucket.name != 'acme'",
        ),
        (
            "Allow group A to manage objects in tenancy where target.bucket.name = /acme-*/",
            "Allow group A to manage objects in tenancy where target.bucket.name = /acme-*/",
        ),
        (
            "Allow group A to read objects in tenancy where request.principal.type = fnfunc",
            "Allow group A to read objects in tenancy where request.principal.type = 'fnfunc'",
        ),
        (
            "Allow group A to manage objects in tenancy where any "
            "{request.permission='OBJECT_CREATE', request.permission='OBJECT_INSPECT'}",
            "Allow group A to manage objects in tenancy where any "
            "{request.permission = 'OBJECT_CREATE', request.permission = 'OBJECT_INSPECT'}",
        ),
        (
            "Allow group A to read secret-bundles in tenancy\n  where ALL {\n"
            f"    target.secret.name = 'acme-site',\n    target.vault.id = '{VAULT}'\n  }}",
            "Allow group A to read secret-bundles in tenancy where all "
            f"{{target.secret.name = 'acme-site', target.vault.id = '{VAULT}'}}",
        ),
        (
            f"{READ} where any {{all {{a.b = '1', c.d = '2'}}, e.f = '3'}}",
            f"{READ} where any {{all {{a.b = '1', c.d = '2'}}, e.f = '3'}}",
        ),
    ],
)
def test_statements_parse_to_their_canonical_form(text: str, canonical: str) -> None:
    statement = parse_statement(text)
    assert str(statement) == canonical
    assert str(parse_statement(canonical)) == canonical  # the canonical form parses back


@pytest.mark.parametrize(
    ("text", "reason", "position"),
    [
        ("", "a statement must start with 'Allow', found the end of the statement", 0),
        ("Permit group A to read objects in tenancy", "must start with 'Allow'", 0),
        ("Deny group A to read objects in tenancy", "'Deny' statements are not supported", 0),
        ("Define tenancy Acceptor as ocid1.tenancy.oc1..x", "not supported", 0),
        ("Allow group A read objects in tenancy", "expected 'to' after the subject", 14),
        ("Allow groups A to read objects in tenancy", "expected a subject", 6),
        ("Allow group to read objects in tenancy", "expected a group name, found 'to'", 12),
        (
            "Allow group A, dynamic-group B to read objects in tenancy",
            "a statement names one kind of subject",
            15,
        ),
        ("Allow group id admins to read objects in tenancy", "expected a group OCID", 15),
        ("Allow group A to write objects in tenancy", "expected a verb", 17),
        ("Allow group A to read object in tenancy", "unknown resource-type", 22),
        ("Allow group A to read in tenancy", "expected a resource-type after the verb", 22),
        ("Allow group A to read objects on tenancy", "expected 'in' after the resource-type", 30),
        ("Allow group A to read objects in", "expected 'tenancy' or 'compartment", 32),
        ("Allow group A to read objects in compartment", "expected a compartment name", 44),
        ("Allow group A to read objects in compartment id apps", "expected a compartment OCID", 48),
        (f"{READ} where", "expected a condition", 46),
        (f"{READ} where bucket = 'x'", "expected a condition", 47),
        (f"{READ} where target.bucket.name 'x'", "expected '=' or '!='", 66),
        (f"{READ} where target.bucket.name > 'x'", "expected '=' or '!='", 66),
        (f"{READ} where target.bucket.name = 'x", "unterminated quoted string", 68),
        (f"{READ} where target.bucket.name = /x", "unterminated /pattern/", 68),
        (
            f"{READ} where target.bucket.name = request.principal.id",
            "comparing two variables is not supported",
            68,
        ),
        (
            f"{READ} where any {{target.bucket.name = 'x' target.bucket.name = 'y'}}",
            "expected ',' or '}' in the condition list",
            77,
        ),
        (f"{READ} extra", "expected 'where' or the end of the statement", 41),
        (
            "Allow group A to {OBJECT_READ OBJECT_INSPECT} in tenancy",
            "expected ',' or '}' in the permission list",
            30,
        ),
        ("Allow group A to {} in tenancy", "expected a permission name", 18),
        ("Allow group A to read objects in tenancy; drop", "unexpected character ';'", 40),
    ],
)
def test_unparseable_statements_say_where_and_why(text: str, reason: str, position: int) -> None:
    with pytest.raises(ValueError, match="position") as caught:
        parse_statement(text)
    message = str(caught.value)
    assert reason in message
    assert f"(position {position})" in message
    *_, shown, caret = message.splitlines()  # the statement, then a caret under the position
    assert shown == f"    {text}"
    assert caret == " " * (4 + position) + "^"


# ------------------------------------------------------------------------------ fixture errors


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        (
            fixture_with(READ, "Allow group A to read objects"),
            "policy 'p', statement 2: expected 'in' after the resource-type",
        ),
        (
            fixture_with("Allow group A to read objects in compartment nope"),
            "policy 'p', statement 1: compartment 'nope' not found in tenancy",
        ),
        (
            fixture_with("Allow group A to read objects in compartment team"),
            "compartment 'team' not found in tenancy (ocid1.tenancy.oc1..tenancy) "
            "(its compartments: apps, other)",
        ),
        (
            fixture_with("Allow group A to read objects in compartment apps", compartment="apps"),
            "compartment 'apps' not found in apps",
        ),
        (
            fixture_with(READ, compartment="apps"),
            "'in tenancy' is only valid in a policy attached to the tenancy",
        ),
        (
            fixture_with(
                f"Allow group A to read objects in compartment id {OTHER}", compartment=APPS
            ),
            "is not part of the policy's compartment subtree",
        ),
        (
            fixture_with(f"Allow group A to read objects in compartment id {TENANCY}"),
            "write 'in tenancy'",
        ),
        (
            fixture_with(
                f"Allow group A to read objects in compartment id {UNDECLARED}", compartment="apps"
            ),
            f"unknown compartment id {UNDECLARED}",
        ),
        (fixture_with(READ, compartment="nowhere"), "policy 'p': unknown compartment 'nowhere'"),
        (
            {"policies": [{"name": "p", "statements": READ}]},
            "policy 'p': 'statements' must be a list of strings",
        ),
        ({"policies": [READ]}, "policies[0] must be an object"),
        ({"compartments": [{"name": "apps"}]}, "compartments[0]: an object with 'name' and 'id'"),
        (
            {"compartments": [{"name": "apps", "id": APPS, "parent": "ghost"}]},
            "compartment 'apps': unknown parent 'ghost'",
        ),
        (
            {
                "compartments": [
                    {"name": "a", "id": "ocid1.compartment.oc1..a", "parent": "b"},
                    {"name": "b", "id": "ocid1.compartment.oc1..b", "parent": "a"},
                ]
            },
            "is its own ancestor",
        ),
    ],
)
def test_broken_fixtures_fail_loudly(fixture: dict[str, Any], message: str) -> None:
    tenancy = Tenancy(tenancy=TENANCY, region="us-phoenix-1", compartments={}, principals={})
    with pytest.raises(PolicyError) as caught:
        PolicyEngine.from_fixture(fixture, tenancy)
    assert message in str(caught.value)


def test_unknown_and_undocumented_variables_are_reported_when_loaded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sandbox.oci_emulator.policies"):
        engine_for(
            f"{READ} where target.bukket.name = 'x'",
            f"Allow group A to use load-balancers in tenancy where target.loadbalancer.id = '{LB}'",
        )
    assert "policy 'p' statement 1: variable target.bukket.name is unknown" in caplog.text
    assert "policy 'p' statement 2: target.loadbalancer.id is not in OCI's" in caplog.text


def test_app_builds_this_engine_from_the_fixture() -> None:
    fixture = fixture_with("Allow group Admins to read objects in compartment apps")
    engine = _policy_engine(fixture, Tenancy.from_fixture(fixture))
    assert isinstance(engine, PolicyEngine)
    assert engine.allows(OPERATOR, "GetObject", APPS, {"bucket_name": "b"})


# ---------------------------------------------------------------------------------------- verbs

OBJECT_LEVELS = [  # (operation, target, least verb on objects)
    ("ListObjects", {}, "inspect"),
    ("HeadObject", {}, "inspect"),
    ("GetObject", {}, "read"),
    ("PutObject", {"object_exists": "true"}, "use"),
    ("PutObject", {"object_exists": "false"}, "manage"),
    ("PutObject", {}, "manage"),
    ("DeleteObject", {}, "manage"),
]


@pytest.mark.parametrize("verb", VERBS)
@pytest.mark.parametrize(("operation", "target", "least"), OBJECT_LEVELS)
def test_each_verb_includes_the_ones_below_it(
    verb: str, operation: str, target: dict[str, str], least: str
) -> None:
    engine = engine_for(f"Allow group Admins to {verb} objects in compartment apps")
    expected = VERBS.index(verb) >= VERBS.index(least)
    assert_decision(engine, OPERATOR, operation, expected, target={"bucket_name": "b", **target})


# ------------------------------------------------------------------------- families and table


@pytest.mark.parametrize(
    ("grant", "operation", "target", "expected"),
    [
        ("manage object-family", "GetBucket", {}, True),
        ("manage object-family", "DeleteObject", {}, True),
        ("manage object-family", "CreatePreauthenticatedRequest", {}, True),
        ("manage object-family", "GetSecretBundle", {}, False),
        ("manage secret-family", "UpdateSecret", {}, True),
        ("manage secret-family", "GetSecretBundle", {}, True),
        ("manage secret-family", "ListSecretVersions", {}, True),
        ("manage secret-family", "ScheduleSecretVersionDeletion", {}, True),
        ("manage secret-family", "CreateSecret", {}, False),  # also needs use vaults + use keys
        ("manage secret-family", "GetVault", {}, False),  # vaults are not in secret-family
        ("manage leaf-certificate-family", "CreateCertificate[certificates]", {}, True),
        ("manage leaf-certificate-family", "UpdateCertificate", {}, True),
        ("manage leaf-certificate-family", "GetCertificateBundle", {}, True),
        ("manage leaf-certificate-family", "ScheduleCertificateVersionDeletion", {}, True),
        ("manage leaf-certificate-family", "CreateCertificate[load-balancer]", {}, False),
        ("manage leaf-certificate-family", "GetCertificateAuthority", {}, False),
        ("read certificate-authority-family", "GetCertificateAuthority", {}, True),
        ("read certificate-authority-family", "GetCertificate", {}, True),
        ("read certificate-authority-family", "UpdateCertificate", {}, False),
        ("manage all-resources", "CreateSecret", {}, True),
        ("manage all-resources", "CreateLoadBalancer", {}, True),
        ("manage all-resources", "DeleteObject", {}, True),
        ("inspect all-resources", "ListBuckets", {}, True),
        ("inspect all-resources", "GetObject", {}, False),
        ("manage functions-family", "GetObject", {}, False),  # another service's type
    ],
)
def test_families_expand_to_their_member_types(
    grant: str, operation: str, target: dict[str, str], expected: bool
) -> None:
    engine = engine_for(f"Allow group Admins to {grant} in tenancy")
    name, variant_target = call(operation)
    assert_decision(engine, OPERATOR, name, expected, target={**variant_target, **target})


@pytest.mark.parametrize(
    ("grants", "operation", "target", "expected"),
    [
        # Object Storage: use overwrites but does not create; inspect suffices for HEAD.
        (["use objects"], "GetObject", {}, True),
        (["use objects"], "PutObject", {"object_exists": "true"}, True),
        (["use objects"], "PutObject", {"object_exists": "false"}, False),
        (["use objects"], "DeleteObject", {}, False),
        (["use objects"], "RenameObject", {}, False),
        (["manage objects"], "RenameObject", {}, True),
        (["inspect objects"], "HeadObject", {}, True),
        (["inspect objects"], "GetObject", {}, False),
        (["inspect buckets"], "HeadBucket", {}, True),
        (["inspect buckets"], "GetBucket", {}, False),
        (["read buckets"], "GetPreauthenticatedRequest", {}, True),
        (["read buckets"], "ListPreauthenticatedRequests", {}, True),
        (["read buckets"], "CreatePreauthenticatedRequest", {}, False),
        (["use buckets"], "DeletePreauthenticatedRequest", {}, False),
        (["manage buckets"], "DeletePreauthenticatedRequest", {}, True),
        (["manage buckets"], "GetObject", {}, False),
        # Vault: UpdateSecret is "use"; CreateSecret needs three resource-types.
        (["read secret-bundles"], "GetSecretBundle", {}, True),
        (["read secret-bundles"], "GetSecretBundleByName", {}, True),
        (["read secret-bundles"], "ListSecretBundleVersions", {}, True),
        (["read secret-bundles"], "CreateSecret", {}, False),
        (["read secret-bundles"], "GetSecret", {}, False),
        (["use secrets"], "UpdateSecret", {}, True),
        (["use secrets"], "GetSecret", {}, True),
        (["use secrets"], "ScheduleSecretVersionDeletion", {}, False),
        (["use secrets", "manage secret-versions"], "ScheduleSecretVersionDeletion", {}, True),
        (["manage secrets", "use vaults", "use keys"], "CreateSecret", {}, True),
        (["manage secret-family", "use vaults"], "CreateSecret", {}, False),
        (["manage secret-family", "use keys"], "CreateSecret", {}, False),
        (["manage secret-family", "use vaults", "use keys"], "CreateSecret", {}, True),
        # Load Balancer: listener, certificate, rule-set and routing changes are "use".
        (["use load-balancers"], "UpdateListener", {}, True),
        (["use load-balancers"], "CreateCertificate[load-balancer]", {}, True),
        (["use load-balancers"], "DeleteCertificate", {}, True),
        (["use load-balancers"], "CreateRoutingPolicy", {}, True),
        (["use load-balancers"], "UpdateRuleSet", {}, True),
        (["use load-balancers"], "CreateBackend", {}, True),
        (["use load-balancers"], "GetWorkRequest", {}, True),
        (["use load-balancers"], "ListCertificates[load-balancer]", {}, True),
        (["use load-balancers"], "CreateLoadBalancer", {}, False),
        (["use load-balancers"], "DeleteLoadBalancer", {}, False),
        (["read load-balancers"], "GetLoadBalancer", {}, True),
        (["read load-balancers"], "UpdateListener", {}, False),
        (["inspect load-balancers"], "ListLoadBalancers", {}, True),
        (["inspect load-balancers"], "GetLoadBalancer", {}, False),
        # Certificates: the two meanings of CreateCertificate / ListCertificates.
        (["manage leaf-certificates"], "CreateCertificate[certificates]", {}, True),
        (["use leaf-certificates"], "UpdateCertificate", {}, True),
        (["use leaf-certificates"], "CreateCertificate[certificates]", {}, False),
        (["inspect leaf-certificates"], "ListCertificates[certificates]", {}, True),
        (["use load-balancers"], "ListCertificates[certificates]", {}, False),
        (["manage leaf-certificates"], "ListCertificates[load-balancer]", {}, False),
        (["read leaf-certificate-bundles"], "GetCertificateBundle", {}, True),
        (["read leaf-certificate-bundles"], "GetCertificateBundle[private-key]", {}, False),
        (["manage all-resources"], "GetCertificateBundle[private-key]", {}, False),
        # Explicit permission lists.
        (["{SECRET_BUNDLE_READ}"], "GetSecretBundle", {}, True),
        (["{SECRET_BUNDLE_READ}"], "GetSecret", {}, False),
        (["{OBJECT_CREATE, OBJECT_OVERWRITE}"], "RenameObject", {}, True),
        (["{OBJECT_CREATE}"], "RenameObject", {}, False),
    ],
)
def test_operation_table(
    grants: list[str], operation: str, target: dict[str, str], expected: bool
) -> None:
    engine = engine_for(*(f"Allow group Admins to {grant} in compartment apps" for grant in grants))
    name, variant_target = call(operation)
    assert_decision(engine, OPERATOR, name, expected, target={**variant_target, **target})


def test_private_key_bundles_need_a_statement_that_tests_the_bundle_type() -> None:
    engine = engine_for(
        "Allow group Admins to read leaf-certificate-bundles in tenancy "
        f"where target.leaf-certificate.bundle-type = '{PRIVATE_KEY_BUNDLE}'"
    )
    name, target = call("GetCertificateBundle[private-key]")
    assert_decision(engine, OPERATOR, name, True, target=target)
    public_only = {**target, "certificate_bundle_type": "CERTIFICATE_CONTENT_PUBLIC_ONLY"}
    assert_decision(engine, OPERATOR, name, False, target=public_only)


def least_grants(operation_key: str) -> dict[str, str]:
    """resource-type -> the least verb on it that lets ``operation_key`` through."""
    grants: dict[str, str] = {}
    for need in OPERATIONS[operation_key]:
        cheapest = min(
            (minimum_grant(p) for p in need.permissions), key=lambda g: VERBS.index(g.verb)
        )
        held = grants.get(cheapest.resource_type, VERBS[0])
        grants[cheapest.resource_type] = max(held, cheapest.verb, key=VERBS.index)
    return grants


def grant_statements(operation_key: str, grants: dict[str, str]) -> list[str]:
    condition = next(
        (n.condition_variable for n in OPERATIONS[operation_key] if n.condition_variable), None
    )
    where = f" where {condition} = '{PRIVATE_KEY_BUNDLE}'" if condition else ""
    return [
        f"Allow group Admins to {verb} {resource_type} in tenancy{where}"
        for resource_type, verb in grants.items()
    ]


@pytest.mark.parametrize("operation_key", sorted(OPERATIONS))
def test_every_operation_is_allowed_by_its_least_grants_and_no_less(operation_key: str) -> None:
    name, target = call(operation_key)
    grants = least_grants(operation_key)
    engine = engine_for(*grant_statements(operation_key, grants))
    assert_decision(engine, OPERATOR, name, True, target=target)
    for resource_type, verb in grants.items():
        if verb == VERBS[0]:
            continue  # inspect is the lowest verb
        weaker = {**grants, resource_type: VERBS[VERBS.index(verb) - 1]}
        engine = engine_for(*grant_statements(operation_key, weaker))
        assert_decision(engine, OPERATOR, name, False, target=target)


def test_the_table_only_names_known_permissions_and_types() -> None:
    for key, needs in OPERATIONS.items():
        for need in needs:
            for permission in need.permissions:
                assert permission in PERMISSIONS, f"{key}: unknown permission {permission}"
    for family, members in FAMILIES.items():
        assert set(members) <= set(RESOURCE_TYPES), family
    for operation in AMBIGUOUS_OPERATIONS:
        assert f"{operation}[load-balancer]" in OPERATIONS
        assert f"{operation}[certificates]" in OPERATIONS
        assert operation not in OPERATIONS
    assert set(VARIANTS) == {key for key in OPERATIONS if "[" in key}


@pytest.mark.parametrize("operation", ["FrobnicateBucket", "PutObject[overwrite]"])
def test_unknown_operations_are_denied(operation: str) -> None:
    engine = engine_for("Allow group Admins to manage all-resources in tenancy")
    assert not engine.allows(OPERATOR, operation, APPS, {})
    assert "not in the emulator's permission table" in engine.explain(OPERATOR, operation, APPS, {})


@pytest.mark.parametrize(
    ("grant", "target", "expected", "meaning"),
    [
        ("use load-balancers", {}, True, "Load Balancer"),  # the LB service's own call
        ("use load-balancers", {"load_balancer_id": LB}, True, "Load Balancer"),
        ("use load-balancers", {"certificate_service": "certificates"}, False, "Certificates"),
        ("manage leaf-certificates", {}, False, "Load Balancer"),
        ("manage leaf-certificates", {"certificate_service": "certificates"}, True, "Certificates"),
    ],
)
def test_create_certificate_means_the_certificates_service_only_when_it_says_so(
    grant: str, target: dict[str, str], expected: bool, meaning: str
) -> None:
    engine = engine_for(f"Allow group Admins to {grant} in tenancy")
    assert_decision(engine, OPERATOR, "CreateCertificate", expected, target=target)
    explanation = engine.explain(OPERATOR, "CreateCertificate", APPS, target)
    assert f"CreateCertificate evaluated as the {meaning} operation" in explanation


def test_get_namespace_needs_no_permission() -> None:
    engine = engine_for()
    assert_decision(engine, NOBODY, "GetNamespace", True)
    assert "needs no permission" in engine.explain(NOBODY, "GetNamespace", APPS, {})


# ----------------------------------------------------------------------------------- locations


@pytest.mark.parametrize(
    ("location", "attached", "compartment", "expected"),
    [
        ("compartment apps", None, APPS, True),
        ("compartment apps", None, TEAM, True),  # sub-compartment
        ("compartment apps", None, DEEP, True),  # sub-sub-compartment
        ("compartment apps", None, OTHER, False),
        ("compartment apps", None, TENANCY, False),
        ("compartment apps", None, UNDECLARED, False),
        ("compartment APPS", None, APPS, True),
        (f"compartment id {APPS}", None, TEAM, True),
        (f"compartment id {APPS}", None, OTHER, False),
        ("compartment apps:team", None, TEAM, True),
        ("compartment apps:team", None, DEEP, True),
        ("compartment apps:team", None, APPS, False),
        ("compartment team", "apps", TEAM, True),  # relative to the policy's compartment
        ("compartment team", "apps", APPS, False),
        (f"compartment id {DEEP}", APPS, DEEP, True),
        ("tenancy", None, APPS, True),
        ("tenancy", None, DEEP, True),
        ("tenancy", None, TENANCY, True),
        ("tenancy", None, UNDECLARED, True),
        (f"compartment id {UNDECLARED}", None, UNDECLARED, True),
        (f"compartment id {UNDECLARED}", None, APPS, False),
    ],
)
def test_a_statement_applies_to_its_compartment_and_below(
    location: str, attached: str | None, compartment: str, expected: bool
) -> None:
    engine = engine_for(f"Allow group Admins to read objects in {location}", compartment=attached)
    assert_decision(engine, OPERATOR, "GetObject", expected, compartment=compartment)


# ---------------------------------------------------------------------------------- conditions

CHALLENGES = {"bucket_name": "acme-challenges"}
STATE = {"bucket_name": "acme-state"}
TOKEN = {"bucket_name": "acme-challenges", "object_name": ".well-known/acme-challenge/tok"}


@pytest.mark.parametrize(
    ("condition", "target", "expected"),
    [
        ("target.bucket.name = 'acme-challenges'", CHALLENGES, True),
        ("target.bucket.name = 'acme-challenges'", STATE, False),
        ("target.bucket.name = 'acme-challenges'", {}, False),  # not applicable
        ("target.bucket.name = 'acme-challenges'", {"bucket_name": "ACME-Challenges"}, True),
        ("target.bucket.name != 'acme-state'", CHALLENGES, True),
        ("target.bucket.name != 'acme-state'", STATE, False),
        ("target.bucket.name != 'acme-state'", {}, False),  # not applicable: false for != too
        ("target.bucket.name = /acme-*/", STATE, True),
        ("target.bucket.name = /acme-*/", {"bucket_name": "logs"}, False),
        ("target.bucket.name = /*-state/", STATE, True),
        ("target.bucket.name = /*cme-ch*/", CHALLENGES, True),
        ("target.bucket.name != /acme-*/", {"bucket_name": "logs"}, True),
        ("target.object.name = /.well-known/acme-challenge/*/", TOKEN, True),
        ("any {target.bucket.name = 'acme-state', target.bucket.name = 'logs'}", STATE, True),
        ("any {target.bucket.name = 'acme-state', target.bucket.name = 'logs'}", CHALLENGES, False),
        (
            "all {target.bucket.name = /acme-*/, target.bucket.name != 'acme-state'}",
            CHALLENGES,
            True,
        ),
        ("all {target.bucket.name = /acme-*/, target.bucket.name != 'acme-state'}", STATE, False),
        ("request.permission = 'OBJECT_READ'", CHALLENGES, True),
        ("request.permission = 'OBJECT_DELETE'", CHALLENGES, False),
        ("request.operation = 'GetObject'", CHALLENGES, True),
        ("request.operation = 'ListObjects'", CHALLENGES, False),
        ("target.compartment.name = 'apps'", CHALLENGES, True),
        (f"target.compartment.id = '{APPS}'", CHALLENGES, True),
        (f"target.compartment.id != '{APPS}'", CHALLENGES, False),
        ("request.principal.type = 'user'", CHALLENGES, True),
        ("request.user.id = 'ocid1.user.oc1..operator'", CHALLENGES, True),
        ("target.unknown.variable = 'x'", CHALLENGES, False),
        ("target.unknown.variable != 'x'", CHALLENGES, False),
    ],
)
def test_conditions(condition: str, target: dict[str, str], expected: bool) -> None:
    engine = engine_for(
        f"Allow group Admins to manage objects in compartment apps where {condition}"
    )
    assert_decision(engine, OPERATOR, "GetObject", expected, target=target)


@pytest.mark.parametrize(
    ("statement", "operation", "target", "expected"),
    [
        (
            "read secret-bundles in compartment apps where target.secret.name = 'acme-site'",
            "GetSecretBundleByName",
            {"secret_name": "acme-site", "vault_id": VAULT},
            True,
        ),
        (
            "read secret-bundles in compartment apps where target.secret.name = 'acme-site'",
            "GetSecretBundleByName",
            {"secret_name": "db-password", "vault_id": VAULT},
            False,
        ),
        (
            f"use secrets in compartment apps where target.vault.id = '{VAULT}'",
            "UpdateSecret",
            {"secret_name": "acme-site", "vault_id": VAULT},
            True,
        ),
        (
            f"use secrets in compartment apps where target.vault.id = '{VAULT}'",
            "UpdateSecret",
            {"secret_name": "acme-site", "vault_id": "ocid1.vault.oc1.phx.other"},
            False,
        ),
        (
            f"use load-balancers in compartment apps where target.loadbalancer.id = '{LB}'",
            "UpdateListener",
            {"load_balancer_id": LB},
            True,
        ),
        (
            f"use load-balancers in compartment apps where target.loadbalancer.id = '{LB}'",
            "UpdateListener",
            {"load_balancer_id": OTHER_LB},
            False,
        ),
        (
            "manage leaf-certificates in compartment apps "
            "where target.leaf-certificate.name = 'site'",
            "UpdateCertificate",
            {"certificate_service": "certificates", "certificate_name": "site"},
            True,
        ),
    ],
)
def test_service_specific_conditions(
    statement: str, operation: str, target: dict[str, str], expected: bool
) -> None:
    engine = engine_for(f"Allow group Admins to {statement}")
    assert_decision(engine, OPERATOR, operation, expected, target=target)


WRITE_ONLY = (
    "Allow group Admins to manage objects in compartment apps "
    "where any {request.permission = 'OBJECT_CREATE', request.permission = 'OBJECT_INSPECT'}"
)


@pytest.mark.parametrize(
    ("operation", "target", "expected"),
    [
        ("PutObject", {"object_exists": "false"}, True),
        ("ListObjects", {}, True),
        ("HeadObject", {}, True),  # OBJECT_INSPECT is one of HeadObject's alternatives
        ("GetObject", {}, False),
        ("PutObject", {"object_exists": "true"}, False),  # overwriting needs OBJECT_OVERWRITE
        ("DeleteObject", {}, False),
    ],
)
def test_request_permission_conditions_narrow_a_verb_to_single_permissions(
    operation: str, target: dict[str, str], expected: bool
) -> None:
    # OCI's documented "let users write objects" policy: create new objects, nothing else.
    assert_decision(engine_for(WRITE_ONLY), OPERATOR, operation, expected, target=target)


# ------------------------------------------------------------------------------------ subjects


@pytest.mark.parametrize(
    ("subject", "principal", "expected"),
    [
        ("group Admins", OPERATOR, True),
        ("group admins", OPERATOR, True),
        ("group Default/Admins", OPERATOR, True),
        ("group 'Default'/'Admins'", OPERATOR, True),
        ("group OtherDomain/Admins", OPERATOR, False),
        ("group id ocid1.group.oc1..admins", OPERATOR, True),
        ("group id ocid1.group.oc1..others", OPERATOR, False),
        ("group Ops, Admins", OPERATOR, True),
        ("group Ops", OPERATOR, False),
        ("group renewer-dg", RENEWER, False),  # a dynamic group is not an IAM group
        ("dynamic-group renewer-dg", RENEWER, True),
        ("dynamic-group Renewer-DG", RENEWER, True),
        ("dynamic-group token-server-dg, renewer-dg", RENEWER, True),
        ("dynamic-group renewer-dg", TOKEN_SERVER, False),
        ("dynamic-group Admins", OPERATOR, False),  # users are not in dynamic groups
        ("any-user", NOBODY, True),
        ("any-user", RENEWER, True),
        ("any-user", STRANGER, False),  # another tenancy
        ("any-group", NOBODY, False),
        ("any-group", OPERATOR, True),
        ("any-group", RENEWER, True),
        ("service objectstorage-us-phoenix-1", OPERATOR, False),
    ],
)
def test_subjects(subject: str, principal: Principal, expected: bool) -> None:
    engine = engine_for(f"Allow {subject} to read objects in tenancy")
    assert_decision(engine, principal, "GetObject", expected)


def test_principal_type_comes_from_the_principal_ocid() -> None:
    engine = engine_for(
        "Allow any-user to read objects in tenancy where request.principal.type = 'fnfunc'"
    )
    assert_decision(engine, RENEWER, "GetObject", True)
    assert_decision(engine, TOKEN_SERVER, "GetObject", False)


# -------------------------------------------------------------------- the product's statements


@pytest.mark.parametrize(
    ("principal", "operation", "target", "expected"),
    [
        # The renewer: challenge objects, its secrets, its load balancer's listeners.
        (RENEWER, "PutObject", {**CHALLENGES, "object_exists": "false"}, True),
        (RENEWER, "PutObject", {**CHALLENGES, "object_exists": "true"}, True),
        (RENEWER, "GetObject", CHALLENGES, True),
        (RENEWER, "ListObjects", CHALLENGES, True),
        (RENEWER, "DeleteObject", CHALLENGES, True),
        (RENEWER, "PutObject", {**STATE, "object_exists": "false"}, False),
        (RENEWER, "GetBucket", CHALLENGES, False),  # buckets are not objects
        (RENEWER, "UpdateSecret", {"secret_name": "acme-site"}, True),
        (RENEWER, "GetSecretBundleByName", {"secret_name": "acme-site"}, True),
        (RENEWER, "ListSecretVersions", {"secret_name": "acme-site"}, True),
        (RENEWER, "ScheduleSecretVersionDeletion", {"secret_name": "acme-site"}, True),
        (RENEWER, "CreateSecret", {"secret_name": "acme-new"}, False),  # needs vaults + keys
        (RENEWER, "UpdateListener", {"load_balancer_id": LB}, True),
        (RENEWER, "CreateCertificate", {"load_balancer_id": LB}, True),
        (RENEWER, "DeleteCertificate", {"load_balancer_id": LB}, True),
        (RENEWER, "GetWorkRequest", {"load_balancer_id": LB}, True),
        (RENEWER, "CreateLoadBalancer", {"load_balancer_id": LB}, False),
        # The token server: reads challenge objects, nothing else.
        (TOKEN_SERVER, "GetObject", TOKEN, True),
        (TOKEN_SERVER, "HeadObject", TOKEN, True),
        (TOKEN_SERVER, "ListObjects", CHALLENGES, True),
        (TOKEN_SERVER, "GetObject", STATE, False),
        (TOKEN_SERVER, "PutObject", {**TOKEN, "object_exists": "false"}, False),
        (TOKEN_SERVER, "PutObject", {**TOKEN, "object_exists": "true"}, False),
        (TOKEN_SERVER, "DeleteObject", TOKEN, False),
        (TOKEN_SERVER, "GetSecretBundleByName", {"secret_name": "acme-site"}, False),
        (TOKEN_SERVER, "UpdateListener", {"load_balancer_id": LB}, False),
        # Nobody else gets anything.
        (OPERATOR, "GetObject", CHALLENGES, False),
    ],
)
def test_the_products_terraform_statements(
    principal: Principal, operation: str, target: dict[str, str], expected: bool
) -> None:
    assert_decision(engine_for(*PRODUCT_STATEMENTS), principal, operation, expected, target=target)


def test_the_products_statements_do_not_reach_other_compartments() -> None:
    engine = engine_for(*PRODUCT_STATEMENTS)
    assert_decision(
        engine, RENEWER, "UpdateListener", False, compartment=OTHER, target={"load_balancer_id": LB}
    )
    assert_decision(engine, RENEWER, "GetObject", True, compartment=TEAM, target=CHALLENGES)


# ------------------------------------------------------------------------------------- explain


def test_explain_names_the_granting_statement() -> None:
    engine = engine_for(*PRODUCT_STATEMENTS)
    text = engine.explain(TOKEN_SERVER, "GetObject", APPS, CHALLENGES)
    assert text.startswith("ALLOWED: GetObject by resource ocid1.computecontainerinstance")
    assert "read objects (OBJECT_READ): granted by policy 'p' statement 4" in text


def test_explain_says_which_grant_is_missing_and_why_near_misses_missed() -> None:
    engine = engine_for(*PRODUCT_STATEMENTS)
    text = engine.explain(TOKEN_SERVER, "GetObject", APPS, STATE)
    assert text.startswith("DENIED: GetObject")
    assert "no statement grants read objects to this principal in apps" in text
    assert "where-clause is false (target.bucket.name='acme-state')" in text

    text = engine.explain(TOKEN_SERVER, "DeleteObject", APPS, CHALLENGES)
    assert "statement 4 (Allow dynamic-group token-server-dg to read objects" in text
    assert "grants only read objects" in text

    text = engine.explain(RENEWER, "CreateSecret", APPS, {})
    assert "manage secrets (SECRET_CREATE): granted by policy 'p' statement 2" in text
    assert "no statement grants use vaults" in text
    assert "no statement grants use keys" in text
    assert "other statements grant manage objects, manage secret-family, use load-balancers" in text

    text = engine.explain(NOBODY, "GetObject", APPS, CHALLENGES)
    assert "no statement names this principal" in text


def test_explain_for_a_foreign_tenancy() -> None:
    engine = engine_for("Allow any-user to read objects in tenancy")
    assert "cross-tenancy" in engine.explain(STRANGER, "GetObject", APPS, {})


def test_decisions_log_no_target_values(caplog: pytest.LogCaptureFixture) -> None:
    engine = engine_for(*PRODUCT_STATEMENTS)
    with caplog.at_level(logging.DEBUG, logger="sandbox.oci_emulator.policies"):
        engine.allows(
            RENEWER,
            "GetObject",
            APPS,
            {"bucket_name": "acme-challenges", "object_name": "s3cr3t-token"},
        )
    assert "allow GetObject by ocid1.fnfunc.oc1.phx.renewer" in caplog.text
    assert "s3cr3t-token" not in caplog.text
    assert "acme-challenges" not in caplog.text
