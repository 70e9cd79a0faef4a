"""``loadBalancerIds`` on a Certificates-service target: where VERIFY looks for its listeners."""

from __future__ import annotations

import pytest

from renewer.errors import ConfigError
from renewer.model import CertificateServiceTarget
from renewer.settings import MAX_SERVICE_LOAD_BALANCERS, parse_config
from tests.unit.test_settings import LB, changed

CERT = "ocid1.certificate.oc1.phx.aaaacert"
TARGET = "certificates.0.targets.1"


def test_load_balancer_ids_parse_in_order_without_repeats():
    other = "ocid1.loadbalancer.oc1.phx.aaaaother"
    document = changed(TARGET, {"certificateId": CERT, "loadBalancerIds": [other, LB, other]})

    shop = parse_config(document).certificate("shop")

    assert shop.targets[1] == CertificateServiceTarget(CERT, (other, LB))


def test_without_load_balancer_ids_the_target_has_none():
    shop = parse_config(changed(TARGET, {"certificateId": CERT})).certificate("shop")
    assert shop.targets[1] == CertificateServiceTarget(CERT, ())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["ocid1.certificate.oc1.phx.aaaacert"], "loadBalancerIds[0]"),
        ("ocid1.loadbalancer.oc1.phx.aaaalb", "loadBalancerIds: must be a list"),
        ([LB] * (MAX_SERVICE_LOAD_BALANCERS + 1), f"at most {MAX_SERVICE_LOAD_BALANCERS}"),
    ],
)
def test_bad_load_balancer_ids_name_the_field(value, expected):
    document = changed(TARGET, {"certificateId": CERT, "loadBalancerIds": value})
    with pytest.raises(ConfigError, match=expected.replace("[", r"\[").replace("]", r"\]")):
        parse_config(document)
