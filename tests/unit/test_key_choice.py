"""keyType ``auto`` and the check of an explicit key type against the targets' TLS settings.

First the pure choice (:mod:`renewer.key_choice`), then the orchestrator with in-memory fakes:
what PLAN chooses is what the CSR carries, the report says which and why, an explicit key type
a listener cannot serve fails before any order, and a suite change that forces another key type
renews while ``auto`` resolving to the stored type does not churn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from renewer import key_choice, pki
from renewer.errors import ConfigError
from renewer.key_choice import choose_key_type, listener_tls, unserved_protocols
from renewer.model import KeyType, ListenerTarget, ListenerTls
from renewer.report import Outcome
from tests.unit.test_renewal import CS, LB, cert_doc, latest, make_config, new_world, only

pytestmark = pytest.mark.unit

DEFAULT = "oci-default-ssl-cipher-suite-v1"
MODERN = "oci-modern-ssl-cipher-suite-v1"


def tls(
    suite: str | None = None,
    protocols: Sequence[str] | None = None,
    custom: dict[str, Sequence[str]] | None = None,
    listener: str = "https",
) -> ListenerTls:
    return listener_tls(LB, listener, suite=suite, protocols=protocols, custom_suites=custom or {})


# ------------------------------------------------------------------------------------ the choice


def test_a_listener_at_oci_defaults_is_tls12_with_the_rsa_only_default_suite() -> None:
    settings = tls()
    assert settings.suite == DEFAULT
    assert settings.protocols == ("TLSv1.2",)
    assert tls(protocols=[]).protocols == ("TLSv1.2",)
    assert unserved_protocols(settings, KeyType.EC_P256) == ("TLSv1.2",)
    assert unserved_protocols(settings, KeyType.RSA_2048) == ()


def test_auto_chooses_rsa_2048_behind_the_default_suite_and_says_why() -> None:
    choice = choose_key_type("shop", None, [tls()], [])
    assert choice.key_type is KeyType.RSA_2048
    assert DEFAULT in choice.reason
    assert "no ECDSA cipher for TLSv1.2" in choice.reason


def test_auto_chooses_ecdsa_p256_where_every_listener_serves_it() -> None:
    listeners = [tls(MODERN), tls(MODERN, ["TLSv1.2", "TLSv1.3"], listener="other")]
    assert choose_key_type("shop", None, listeners, []).key_type is KeyType.EC_P256


def test_one_listener_that_cannot_serve_ecdsa_makes_it_rsa_for_all() -> None:
    listeners = [tls(MODERN), tls(listener="legacy")]
    choice = choose_key_type("shop", None, listeners, [])
    assert choice.key_type is KeyType.RSA_2048
    assert "'legacy'" in choice.reason


def test_a_tls13_only_listener_serves_any_key_whatever_its_tls12_ciphers() -> None:
    only13 = tls("oci-tls-13-recommended-ssl-cipher-suite-v1", ["TLSv1.3"])
    assert choose_key_type("shop", None, [only13], []).key_type is KeyType.EC_P256
    # TLSv1.3 beside TLSv1.2 does not help the TLS 1.2 clients of the default suite.
    both = tls(protocols=["TLSv1.2", "TLSv1.3"])
    assert choose_key_type("shop", None, [both], []).key_type is KeyType.RSA_2048


def test_each_enabled_protocol_needs_an_ecdsa_cipher_of_its_own() -> None:
    # Custom suite: ECDSA only in TLS 1.2-only ciphers, TLSv1.1 has RSA ciphers only.
    custom = {"mixed": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA"]}
    settings = tls("mixed", ["TLSv1.1", "TLSv1.2"], custom)
    assert unserved_protocols(settings, KeyType.EC_P256) == ("TLSv1.1",)
    assert choose_key_type("shop", None, [settings], []).key_type is KeyType.RSA_2048


def test_auto_keeps_the_stored_key_type_while_every_target_serves_it() -> None:
    # No churn: an RSA certificate behind a suite that also serves ECDSA stays RSA.
    choice = choose_key_type("shop", None, [tls(MODERN)], [], current=KeyType.RSA_4096)
    assert choice.key_type is KeyType.RSA_4096
    # A suite change that forces another type: the stored ECDSA key is no longer served.
    forced = choose_key_type("shop", None, [tls()], [], current=KeyType.EC_P256)
    assert forced.key_type is KeyType.RSA_2048


def test_auto_is_rsa_2048_for_a_certificates_service_target() -> None:
    choice = choose_key_type("shop", None, [], [CS])
    assert choice.key_type is KeyType.RSA_2048
    assert CS in choice.reason


def test_an_explicit_key_type_a_listener_cannot_serve_is_refused_naming_the_fix() -> None:
    with pytest.raises(ConfigError) as caught:
        choose_key_type("shop", KeyType.EC_P256, [tls()], [])
    message = str(caught.value)
    assert "keyType of certificate 'shop' is ecdsa-p256" in message
    assert f"listener 'https' of load balancer {LB}" in message
    assert DEFAULT in message
    assert "TLSv1.2" in message
    assert "'auto'" in message
    assert MODERN in message


def test_an_explicit_key_type_the_certificates_service_does_not_import_is_refused() -> None:
    with pytest.raises(ConfigError, match="rsa-3072, which the Certificates service"):
        choose_key_type("shop", KeyType.RSA_3072, [], [CS])
    for accepted in (KeyType.RSA_2048, KeyType.RSA_4096, KeyType.EC_P256, KeyType.EC_P384):
        assert choose_key_type("shop", accepted, [], [CS]).key_type is accepted


def test_an_unknown_suite_gets_rsa_and_does_not_refuse_an_explicit_type() -> None:
    unknown = tls("oci-customized-ssl-cipher-suite")
    assert unknown.ciphers is None
    assert choose_key_type("shop", None, [unknown], []).key_type is KeyType.RSA_2048
    assert choose_key_type("shop", KeyType.EC_P256, [unknown], []).key_type is KeyType.EC_P256


def test_every_predefined_suite_serves_rsa_on_tls12_or_speaks_only_tls13() -> None:
    # Why RSA 2048 is the safe fallback of ``auto``.
    for name in key_choice.PREDEFINED:
        settings = tls(name, ["TLSv1.2"])
        assert unserved_protocols(settings, KeyType.RSA_2048) == (), name


# ---------------------------------------------------------------------------- the orchestrator


def _reader(settings: dict[str, ListenerTls]) -> Any:
    def read(target: ListenerTarget) -> tuple[ListenerTls, ...]:
        return tuple(settings[name] for name in target.listener_names if name in settings)

    return read


def test_a_renewal_behind_the_default_suite_orders_an_rsa_key_and_reports_why() -> None:
    world = new_world(cert_doc("shop"))
    reader = _reader({"https-shop": tls(listener="https-shop")})
    report = only(world.service(tls_settings=reader).run(budget_s=300))
    assert report.outcome is Outcome.RENEWED
    stored = latest(world)
    assert stored.key_type is KeyType.RSA_2048
    assert pki.key_type_of(pki.load_private_key(stored.private_key_pem).public_key()) is (
        KeyType.RSA_2048
    )
    assert report.key_type == "rsa-2048"
    assert report.key_type_reason is not None
    assert DEFAULT in report.key_type_reason
    assert report.to_dict()["key_type"] == "rsa-2048"


def test_plan_says_which_key_type_and_why() -> None:
    world = new_world(cert_doc("shop"))
    reader = _reader({"https-shop": tls(MODERN, listener="https-shop")})
    report = only(world.service(tls_settings=reader).plan())
    assert report.due
    assert "key type ecdsa-p256 (auto: ecdsa-p256" in report.message
    assert report.key_type == "ecdsa-p256"


def test_an_explicit_ecdsa_key_behind_the_default_suite_fails_before_any_order() -> None:
    world = new_world(cert_doc("shop", keyType="ecdsa-p256"))
    reader = _reader({"https-shop": tls(listener="https-shop")})
    report = only(world.service(tls_settings=reader).run(budget_s=300))
    assert report.outcome is Outcome.FAILED
    assert report.error_type == "ConfigError"
    assert report.failed_step == "plan"
    assert "https-shop" in (report.error or "")
    assert world.issuer.orders == []
    assert world.deployer.calls == []
    assert world.store.latest("shop") is None


def test_a_suite_change_that_forces_another_key_type_renews_and_auto_does_not_churn() -> None:
    world = new_world(cert_doc("shop"))
    settings = {"https-shop": tls(MODERN, listener="https-shop")}
    first = only(world.service(tls_settings=_reader(settings)).run(budget_s=300))
    assert first.outcome is Outcome.RENEWED
    assert latest(world).key_type is KeyType.EC_P256
    again = only(world.service(tls_settings=_reader(settings)).run(budget_s=300))
    assert again.outcome is Outcome.SKIPPED
    assert again.reason == "NotDue"
    settings["https-shop"] = tls(listener="https-shop")  # the suite went back to OCI's default
    forced = only(world.service(tls_settings=_reader(settings)).run(budget_s=300))
    assert forced.outcome is Outcome.RENEWED
    assert forced.reason == "KeyTypeChanged"
    assert latest(world).key_type is KeyType.RSA_2048


def test_rsa_3072_with_a_certificates_service_target_fails_before_any_order() -> None:
    doc = cert_doc("shop", keyType="rsa-3072")
    doc["targets"] = [{"certificateId": CS}]
    world = new_world(doc)
    report = only(world.run())
    assert report.outcome is Outcome.FAILED
    assert "Certificates service does not import" in (report.error or "")
    assert world.issuer.orders == []
    assert make_config(doc).certificates[0].spec.key_type is KeyType.RSA_3072


def test_key_type_auto_is_the_default_and_may_be_written_out() -> None:
    assert make_config(cert_doc("shop")).certificates[0].spec.key_type is None
    assert make_config(cert_doc("shop", keyType="auto")).certificates[0].spec.key_type is None
    with pytest.raises(ConfigError, match="is not one of: auto, ecdsa-p256"):
        make_config(cert_doc("shop", keyType="Auto"))
