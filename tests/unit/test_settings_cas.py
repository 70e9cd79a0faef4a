"""The CA list in the configuration (issue 17): ``acme.cas`` and a certificate's ``cas``."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from renewer.errors import ConfigError
from renewer.model import CaSpec
from renewer.settings import parse_config
from tests.unit.test_settings import GOOD

pytestmark = pytest.mark.unit

LE = "https://acme-v02.api.letsencrypt.org/directory"
ZEROSSL = "https://acme.zerossl.com/v2/DV90"
GTS = "https://dv.acme-v02.api.pki.goog/directory"
EAB = {"keyId": "kid-z", "hmacKeySecretId": "ocid1.vaultsecret.oc1.phx.aaaazerossl"}


def document(**acme: Any) -> dict[str, Any]:
    changed = copy.deepcopy(GOOD)
    changed["acme"] = {"contact": ["ops@example.com"], **acme}
    return changed


def problems(doc: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    return str(info.value)


def test_todays_single_ca_is_the_list_of_one_for_every_certificate() -> None:
    config = parse_config(GOOD)
    first = CaSpec(
        "https://acme-staging-v02.api.letsencrypt.org/directory",
        "kid-1",
        "ocid1.vaultsecret.oc1.phx.aaaaeab",
    )
    assert config.acme.all_cas() == (first,)
    assert [m.spec.cas for m in config.certificates] == [(first,), (first,)]


def test_a_global_ca_list_in_order_with_eab_profile_and_chain_per_ca() -> None:
    config = parse_config(
        document(
            cas=[
                LE,
                {"directoryUrl": ZEROSSL, "eab": EAB, "profile": "dv90", "preferredChain": "X"},
            ]
        )
    )
    expected = (
        CaSpec(LE),
        CaSpec(ZEROSSL, "kid-z", EAB["hmacKeySecretId"], "dv90", "X"),
    )
    assert config.acme.cas == expected
    assert config.acme.directory_url == LE  # the first CA, as code reading one CA expects
    assert config.acme.eab is None
    assert all(m.spec.cas == expected for m in config.certificates)


def test_a_certificate_list_replaces_the_global_one_for_that_certificate() -> None:
    doc = document(cas=[LE, {"directoryUrl": ZEROSSL, "eab": EAB}])
    doc["certificates"][1]["cas"] = [GTS, LE]
    config = parse_config(doc)
    assert [c.directory_url for c in config.certificates[0].spec.cas] == [LE, ZEROSSL]
    assert config.certificates[1].spec.cas == (CaSpec(GTS), CaSpec(LE))


@pytest.mark.parametrize(
    ("acme", "path", "fix"),
    [
        (
            {"cas": [LE], "directoryUrl": LE},
            "acme.directoryUrl",
            "cannot be combined with acme.cas",
        ),
        ({"cas": [LE], "eab": EAB}, "acme.eab", "with its own eab"),
        ({}, "acme.directoryUrl", "is required (or acme.cas"),
        ({"cas": []}, "acme.cas", "at least 1 item"),
        ({"cas": [LE, LE]}, "acme.cas[1].directoryUrl", "is the same CA as acme.cas[0]"),
        ({"cas": ["http://ca.test/dir"]}, "acme.cas[0]", "must be an https:// ACME directory URL"),
        ({"cas": [{"url": LE}]}, "acme.cas[0].url", "unknown key"),
        ({"cas": [{"directoryUrl": LE, "profile": "Bad Name"}]}, "acme.cas[0].profile", "profile"),
        (
            {"cas": [{"directoryUrl": LE, "eab": {"keyId": "k", "hmacKey": "c2VjcmV0"}}]},
            "acme.cas[0].eab",
            "hmacKeySecretId",
        ),
        ({"cas": [LE] * 6}, "acme.cas", "at most 5"),
        ({"cas": "https://x.test/dir"}, "acme.cas", "must be a list"),
    ],
)
def test_a_bad_ca_list_names_the_field_and_the_fix(
    acme: dict[str, Any], path: str, fix: str
) -> None:
    message = problems(document(**acme))
    assert path in message, message
    assert fix in message, message


def test_one_ca_with_two_eab_bindings_is_refused() -> None:
    doc = document(cas=[{"directoryUrl": ZEROSSL, "eab": EAB}])
    doc["certificates"][1]["cas"] = [{"directoryUrl": ZEROSSL, "eab": {**EAB, "keyId": "another"}}]
    message = problems(doc)
    assert "certificates[1].cas[0].eab: differs from acme.cas[0].eab" in message
    assert "one ACME account is kept per CA" in message


def test_a_pasted_hmac_key_is_never_repeated() -> None:
    secret = "c2VjcmV0LWhtYWMta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr"  # noqa: S105 - a fake key
    message = problems(document(cas=[secret]))
    assert secret not in message
    assert "acme.cas[0]" in message
