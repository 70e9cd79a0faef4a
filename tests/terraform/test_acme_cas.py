"""``acme_cas`` (issue 17): the CA list reaches the configuration document as ``acme.cas``.

The stack's generated document is validated by the renewer's own validator: with a CA list it
holds ``cas`` and neither ``directoryUrl`` nor ``eab`` (the renewer refuses both together, even
null); without one it is today's single CA. The variable's validations reject what the renewer
would, with their message.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from renewer.settings import parse_config
from tests.terraform.hcl_eval import ValidationFailed
from tests.terraform.stack import evaluate_root, example_inputs

pytestmark = pytest.mark.unit

LE = "https://acme-v02.api.letsencrypt.org/directory"
ZEROSSL = "https://acme.zerossl.com/v2/DV90"
ZEROSSL_EAB_REF = "ocid1.vaultsecret.oc1.phx.aaaazerossl"


def _documents(cas: list[dict[str, Any]]) -> dict[str, Any]:
    inputs = {**example_inputs("basic"), "acme_cas": cas}
    config = evaluate_root(inputs).config
    return json.loads(json.dumps(config))  # what jsonencode writes to the object


def test_a_ca_list_becomes_acme_cas_and_passes_the_renewers_validator() -> None:
    document = _documents(
        [
            {"directory_url": LE, "profile": "tlsserver"},
            {
                "directory_url": ZEROSSL,
                "eab_key_id": "kid-1",
                "eab_hmac_key_secret_id": ZEROSSL_EAB_REF,
                "preferred_chain": "USERTrust RSA Certification Authority",
            },
        ]
    )

    assert "directoryUrl" not in document["acme"]
    assert "eab" not in document["acme"]
    config = parse_config(document)
    cas = config.acme.cas
    assert [ca.directory_url for ca in cas] == [LE, ZEROSSL]
    assert (cas[0].profile, cas[0].eab_key_id) == ("tlsserver", None)
    assert (cas[1].eab_key_id, cas[1].eab_hmac_key_secret_id) == ("kid-1", ZEROSSL_EAB_REF)
    assert cas[1].preferred_chain == "USERTrust RSA Certification Authority"
    assert config.acme.directory_url == LE  # the first CA is the primary
    assert all(m.spec.cas == cas for m in config.certificates)  # the global default


def test_without_a_ca_list_the_document_keeps_the_single_ca() -> None:
    document = json.loads(json.dumps(evaluate_root(example_inputs("basic")).config))

    assert "cas" not in document["acme"]
    assert document["acme"]["directoryUrl"].startswith("https://")
    config = parse_config(document)
    assert [ca.directory_url for ca in config.acme.cas] == [document["acme"]["directoryUrl"]]


INVALID: list[tuple[str, list[dict[str, Any]], str]] = [
    ("http", [{"directory_url": "http://ca.example/dir"}], "https:// ACME directory URL"),
    ("repeated", [{"directory_url": LE}, {"directory_url": LE}], "list each directory_url once"),
    ("half-eab", [{"directory_url": ZEROSSL, "eab_key_id": "kid"}], "both eab_key_id and"),
    (
        "pasted-key",
        [{"directory_url": ZEROSSL, "eab_key_id": "kid", "eab_hmac_key_secret_id": "c2VjcmV0"}],
        "never put the key itself",
    ),
    ("too-many", [{"directory_url": f"https://ca{i}.example/dir"} for i in range(6)], "at most 5"),
]


@pytest.mark.parametrize(
    ("cas", "message"), [(c, m) for _, c, m in INVALID], ids=[i for i, _, _ in INVALID]
)
def test_acme_cas_validation_rejects_with_an_actionable_message(
    cas: list[dict[str, Any]], message: str
) -> None:
    inputs = {**example_inputs("basic"), "acme_cas": cas}
    with pytest.raises(ValidationFailed, match=f"var.acme_cas: .*{re.escape(message)}"):
        evaluate_root(inputs)
