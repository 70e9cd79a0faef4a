"""Hostile input never escapes as an untyped exception, never forges a line, never costs more than
its size: the payload (``parse_payload``), the configuration (``load_config``/``parse_config``) and
the environment (``Environment.from_env``) all answer a typed error naming what is wrong.

Classes covered: nesting deep enough to exhaust the parser's recursion, integers past Python's
4,300-digit conversion limit, JSON that parsers disagree on (``NaN``, a key twice), keys holding
control characters, and lists far over their limits.
"""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renewer import hostnames
from renewer.environment import Environment
from renewer.errors import ConfigError
from renewer.invocation import InvalidRequest, Invocation, parse_payload
from renewer.settings import MAX_NAMES, MAX_PROBLEMS, load_config, parse_config
from renewer.untrusted import MAX_DEPTH, UnreadableJson, decode_json
from tests.unit.test_settings import GOOD

DEEP = "[" * 100_000 + "]" * 100_000  # far past the C scanner's recursion limit
DEEP_OBJECTS = '{"a":' * 5_000 + "1" + "}" * 5_000
LONG_INT = "9" * 5_000  # int() refuses more than 4,300 digits
HOSTILE_JSON = {
    "deep-lists": DEEP,
    "deep-objects": DEEP_OBJECTS,
    "nested-just-over-the-limit": "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
    "long-integer": LONG_INT,
    "long-negative-integer": "-" + LONG_INT,
    "long-integer-in-a-field": '{"version": ' + LONG_INT + "}",
    "long-integer-deep-in-a-list": '{"certificates": [[[' + LONG_INT + "]]]}",
    "nan": '{"version": NaN}',
    "infinity": '{"version": -Infinity}',
    "repeated-key": '{"action": "plan", "action": "renew"}',
}
ENVIRONMENT = {"RENEWER_CONFIG": json.dumps(GOOD), "OCI_AUTH": "config_file"}


@pytest.mark.parametrize("text", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_the_payload_refuses_hostile_json_with_a_typed_error(text: str):
    with pytest.raises(InvalidRequest, match="the payload") as info:
        parse_payload(text.encode())
    assert "Traceback" not in str(info.value)


@pytest.mark.parametrize("text", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
def test_the_configuration_refuses_hostile_json_with_a_typed_error(text: str):
    with pytest.raises(ConfigError, match="the configuration is not valid JSON: it "):
        load_config(text)


@pytest.mark.parametrize("text", HOSTILE_JSON.values(), ids=HOSTILE_JSON.keys())
@pytest.mark.parametrize("variable", ["RENEWER_OCI_ENDPOINTS", "RENEWER_LOOPBACK"])
def test_the_environment_refuses_hostile_json_naming_the_variable(variable: str, text: str):
    with pytest.raises(ConfigError, match=variable):
        Environment.from_env({**ENVIRONMENT, variable: text})


def test_the_configuration_inline_in_the_environment_names_the_variable():
    environment = Environment.from_env({**ENVIRONMENT, "RENEWER_CONFIG": DEEP})
    from renewer.environment import load_configuration  # noqa: PLC0415

    with pytest.raises(ConfigError, match=r"^RENEWER_CONFIG: .*too deeply"):
        load_configuration(environment, clients=None)


def test_the_messages_say_what_is_wrong():
    def reason(text: str) -> str:
        with pytest.raises(UnreadableJson) as info:
            decode_json(text)
        return str(info.value)

    assert "too deeply" in reason(DEEP)
    assert f"at most {MAX_DEPTH}" in reason(HOSTILE_JSON["nested-just-over-the-limit"])
    assert "5,000 digits" in reason(LONG_INT)
    assert "NaN" in reason(HOSTILE_JSON["nan"])
    assert "repeats the key 'action'" in reason(HOSTILE_JSON["repeated-key"])
    assert "line 1 column 2" in reason("{x")


def test_a_long_string_of_digits_in_the_loopback_ports_is_a_config_error():
    loopback = json.dumps({"listenerPorts": {"ocid1.loadbalancer.oc1..a": {LONG_INT: 1}}})
    with pytest.raises(ConfigError, match="RENEWER_LOOPBACK"):
        Environment.from_env({**ENVIRONMENT, "RENEWER_LOOPBACK": loopback})


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_payload_is_an_invocation_or_an_invalid_request(body: bytes):
    with contextlib.suppress(InvalidRequest):  # anything else (an untyped error) fails
        assert isinstance(parse_payload(body, config_object="acme-state/c.json"), Invocation)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["acme", "oci", "renewal", "operations", "certificates"]), data=st.data()
)
def test_any_value_anywhere_in_the_document_is_a_config_or_a_config_error(path: str, data):
    document: Any = copy.deepcopy(GOOD)
    node = document[path] if path in document else document.setdefault(path, {})
    if isinstance(node, list):
        node = node[0]
    key = data.draw(st.sampled_from([*node, "unknownKey"]))
    node[key] = data.draw(JSON_VALUES)
    with contextlib.suppress(ConfigError):  # the typed error, or a config: nothing else
        parse_config(document)


# --- unknown keys: quoted, escaped, cut; never a forged line --------------------------------


@settings(max_examples=300)
@given(st.text(min_size=1, max_size=200))
def test_an_unknown_key_is_one_escaped_problem_line(key: str):
    document = copy.deepcopy(GOOD)
    document["acme"][key] = 1
    if key in GOOD["acme"] or key in {"contact", "termsOfServiceAgreed", "eab", "selfCheck"}:
        return  # a known key: not this property
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    lines = str(info.value).split("\n")
    assert lines[0] == "the configuration has 1 problem:"
    (line,) = lines[1:]  # a newline (or \r, \u2028...) in the key never starts a second line
    assert line.startswith("- acme.")
    assert line.isascii() or key.isascii()  # escaped unless shown as a plain name
    assert len(line) < 300  # a long key is cut


def test_a_key_that_looks_like_a_problem_line_cannot_forge_one():
    document = copy.deepcopy(GOOD)
    document["oci"]["x\n- oci.vaultId: is fine, ignore the line above"] = 1
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    message = str(info.value)
    assert message.count("\n- ") == 1
    assert '"x\\n- oci.vaultId: is fine, ignore the li"... (47 characters)' in message


def test_unknown_payload_fields_are_escaped_cut_and_counted():
    body = json.dumps({f"k{i}\n- forged": 1 for i in range(1000)}).encode()
    with pytest.raises(InvalidRequest) as info:
        parse_payload(body)
    message = str(info.value)
    assert "\n" not in message
    assert "and 995 more" in message
    assert len(message) < 1000


# --- bounded work and bounded messages ------------------------------------------------------


def test_a_list_of_names_over_the_limit_is_refused_before_any_name_is_parsed(
    monkeypatch: pytest.MonkeyPatch,
):
    # The quadratic duplicate check made 20,000 names cost seconds; now the count alone decides.
    parsed: list[str] = []
    real = hostnames.check_dns_name
    monkeypatch.setattr(hostnames, "check_dns_name", lambda name: parsed.append(name) or real(name))
    document = copy.deepcopy(GOOD)
    document["certificates"][0]["dnsNames"] = [f"h{i}.example.com" for i in range(20_000)]

    with pytest.raises(ConfigError, match=f"holds 20,000 items; at most {MAX_NAMES}"):
        parse_config(document)
    assert parsed == ["blog.example.com"]  # the other certificate's one name


def test_duplicate_names_are_found_in_one_pass_and_named_by_path(monkeypatch: pytest.MonkeyPatch):
    parsed: list[str] = []
    real = hostnames.check_dns_name
    monkeypatch.setattr(hostnames, "check_dns_name", lambda name: parsed.append(name) or real(name))
    names = [f"h{i}.example.com" for i in range(MAX_NAMES - 1)] + ["H0.example.com."]
    document = copy.deepcopy(GOOD)
    document["certificates"][0]["dnsNames"] = names

    with pytest.raises(ConfigError) as info:
        parse_config(document)
    assert len(parsed) == len(names) + 1  # each name checked once (+ the other certificate's)
    assert (
        f"certificates[0].dnsNames[{MAX_NAMES - 1}]: is listed more than once: it is the same"
        " name as certificates[0].dnsNames[0]"
    ) in str(info.value)


def test_thousands_of_problems_make_one_bounded_message():
    document = copy.deepcopy(GOOD)
    document["certificates"] = [{"name": f"BAD {i}"} for i in range(5_000)]
    with pytest.raises(ConfigError) as info:
        parse_config(document)
    lines = str(info.value).splitlines()
    # 5 per certificate: the name, and dnsNames and targets both missing and not lists.
    assert lines[0] == "the configuration has 25,000 problems:"
    assert len(lines) == 1 + MAX_PROBLEMS + 1
    assert lines[-1] == f"- ... and {25_000 - MAX_PROBLEMS:,} more"


def test_a_document_over_the_size_limit_is_refused_unread():
    with pytest.raises(ConfigError, match="characters long; at most 1,000,000"):
        load_config(" " * 1_000_001)
