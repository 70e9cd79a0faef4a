"""DNS names: the configuration refuses what public CAs refuse, before any order is placed.

The classes: IP addresses in any notation a resolver accepts (inet_aton reads ``127.1``,
``0x7f.0.0.1``, ``0177.0.0.1``), names whose top label is no public TLD (``shop.example.123``,
which Pebble even issued for), and internationalized names, which are refused with their ``xn--``
form in the hint (docs/configuration.md says why they are not converted).
"""

from __future__ import annotations

import copy
import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renewer import hostnames
from renewer.errors import ConfigError
from renewer.settings import parse_config
from tests.unit.test_settings import GOOD

PATH = "certificates[0].dnsNames[0]"


def refusal(name: str) -> str:
    """The configuration's problem line for ``name`` as the first DNS name of a certificate."""
    document = copy.deepcopy(GOOD)
    document["certificates"][0]["dnsNames"][0] = name
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    (line,) = [line for line in str(info.value).splitlines() if PATH in line]
    return line


@pytest.mark.parametrize(
    "name",
    [
        "127.1",
        "0x7f.0.0.1",
        "0177.0.0.1",
        "1.2.3.256",
        "1.2.3.4.5",
        "1.0x7f",
        "0x7f000001.0",
        "shop.example.123",
        "shop.example.0x1f",
        "shop.example.c0m",
        "www.example.1com",
    ],
)
def test_ip_like_names_and_numeric_top_labels_are_refused(name: str):
    line = refusal(name)
    assert "is not a valid DNS name" in line
    assert name not in line.split(": ", 1)[1].split("(")[0]  # the value is not echoed


@pytest.mark.parametrize("name", ["192.0.2.1", "::1", "[2001:db8::1]", "::ffff:127.0.0.1"])
def test_ip_literals_are_refused_as_ip_addresses(name: str):
    assert "is an IP address" in refusal(name)


OCTET_FORMS = st.sampled_from(["{:d}", "{:o}", "0{:o}", "0x{:x}", "0X{:X}"])


@st.composite
def inet_aton_forms(draw: st.DrawFn) -> str:
    """An IPv4 address the way resolvers accept it: 1 to 4 parts, each decimal, octal or hex."""
    parts = draw(st.integers(1, 4))
    values = [draw(st.integers(0, 255)) for _ in range(parts - 1)]
    values.append(draw(st.integers(0, 256 ** (5 - parts) - 1)))
    return ".".join(draw(OCTET_FORMS).format(value) for value in values)


@given(inet_aton_forms())
def test_every_inet_aton_form_of_an_address_is_refused(name: str):
    with pytest.raises(ConfigError, match=r"numbers only|IP address|single label"):
        hostnames.check_dns_name(name)


def test_the_forms_generated_above_really_are_addresses():
    # The property above is only as good as its generator: the resolver agrees they are IPs.
    for name in ("127.1", "0x7f.0.0.1", "0177.0.0.1", "10.0x10.1"):
        assert ipaddress.ip_address(socket.inet_aton(name))


@given(
    st.lists(st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True), min_size=1, max_size=3),
    st.from_regex(r"[0-9][a-z0-9]{0,5}|[a-z]{0,3}[0-9][a-z0-9]{0,3}", fullmatch=True),
)
def test_a_top_label_holding_a_digit_is_refused(labels: list[str], top: str):
    with pytest.raises(ConfigError, match=r"top-level label|numbers only|positions 3 and 4"):
        hostnames.check_dns_name(".".join([*labels, top]))


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("shop.example.com", "shop.example.com"),
        ("Shop.Example.COM.", "shop.example.com"),
        ("a-b.example.co.uk", "a-b.example.co.uk"),
        ("1password.example.com", "1password.example.com"),  # digits fine below the top
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),  # bücher.example
        ("xn--e1afmkfd.xn--p1ai", "xn--e1afmkfd.xn--p1ai"),  # пример.рф
        ("a" * 63 + ".example.com", "a" * 63 + ".example.com"),
    ],
)
def test_names_a_public_ca_issues_for_are_accepted(name: str, normalized: str):
    assert hostnames.check_dns_name(name) == normalized


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("localhost", "single label"),
        ("a..example.com", "label 2 is empty"),
        ("-a.example.com", "hyphen"),
        ("a" * 64 + ".example.com", "64 characters long"),
        (("a" * 60 + ".") * 5 + "com", "at most 253"),
        ("shop_1.example.com", "other than letters, digits and hyphens"),
        ("ab--cd.example.com", "positions 3 and 4"),
        ("xn--zz9.example.com", "not valid Punycode"),  # not decodable
        ("xn--abc.example.com", "not valid Punycode"),  # decodes to a non-letter
        ("*.example.com", "wildcard"),
    ],
)
def test_malformed_names_say_what_is_wrong(name: str, reason: str):
    with pytest.raises(ConfigError, match=reason):
        hostnames.check_dns_name(name)


@pytest.mark.parametrize(
    ("name", "a_label"),
    [
        ("bücher.example", "xn--bcher-kva.example"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("straße.de", "xn--strae-oqa.de"),  # IDNA 2008; IDNA 2003 would say strasse.de
        ("Bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_an_internationalized_name_is_refused_with_its_a_label_in_the_hint(name: str, a_label: str):
    line = refusal(name)
    assert "internationalized names are not converted" in line
    assert f'"{a_label}"' in line
    # The hint names a valid name: pasting it in is accepted.
    assert hostnames.check_dns_name(a_label) == a_label


def test_a_non_ascii_value_that_is_not_a_host_name_gets_no_hint():
    line = refusal("ключ: секрет/+=")
    assert "not converted" in line
    assert "xn--" not in line.split("form", 1)[1]
