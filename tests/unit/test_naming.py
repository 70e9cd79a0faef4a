"""Deterministic names: what they look like, what they refuse, and ownership checks."""

from __future__ import annotations

import pytest

from renewer import naming
from renewer.errors import ConfigError


@pytest.mark.parametrize("name", ["a", "shop", "shop-www", "x1", "a" * 40])
def test_valid_certificate_names(name):
    assert naming.check_certificate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Shop", "-shop", "shop-", "shop_www", "shop.www", "a" * 41, "ünï", "a b"]
)
def test_invalid_certificate_names_say_what_is_allowed(name):
    with pytest.raises(ConfigError, match="lower-case letters, digits and hyphens"):
        naming.check_certificate_name(name)


def test_challenge_object_accepts_base64url_tokens_only():
    assert naming.challenge_object("abc_DEF-123") == ".well-known/acme-challenge/abc_DEF-123"
    for bad in ("", "../x", "a/b", "a b", "a%2F", "tok\n"):
        with pytest.raises(ConfigError, match="refusing to publish"):
            naming.challenge_object(bad)


def test_secret_and_bundle_names():
    assert naming.secret_name("shop") == "acme-shop"
    assert naming.secret_name("shop", prefix="prod") == "prod-shop"
    assert naming.bundle_name("shop", "00AB12cd34ef5678ffff") == "acme-shop-00ab12cd34ef5678"
    with pytest.raises(ConfigError, match="not hexadecimal"):
        naming.bundle_name("shop", "xyz")


def test_account_secret_name_is_per_directory():
    le = naming.account_secret_name("https://acme-v02.api.letsencrypt.org/directory")
    staging = naming.account_secret_name("https://acme-staging-v02.api.letsencrypt.org/directory")
    assert le == "acme-account-acme-v02-api-letsencrypt-org-directory"
    assert le != staging


def test_ownership_never_confuses_certificates_sharing_a_prefix():
    bundle = naming.bundle_name("shop-www", "ab12")
    assert naming.owns_bundle(bundle, "shop-www")
    assert not naming.owns_bundle(bundle, "shop")
    assert not naming.owns_bundle("acme-shop-ab12", "shop", prefix="prod")
    assert not naming.owns_bundle("manual-upload-2024", "shop")


def test_prefix_rules():
    assert naming.check_prefix("acme") == "acme"
    for bad in ("", "1acme", "ACME", "a" * 16, "a_b"):
        with pytest.raises(ConfigError, match="name prefix"):
            naming.check_prefix(bad)


def test_object_names():
    assert naming.lease_object("shop") == "leases/shop.json"
    assert naming.state_object("shop") == "state/shop.json"
