"""``renewal.rateLimits`` in the configuration (renewer.settings -> renewer.rate_limits)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import pytest

from renewer.errors import ConfigError
from renewer.rate_limits import Limits
from renewer.settings import parse_config
from tests.unit.test_settings import GOOD


def _with(value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    document.setdefault("renewal", {})["rateLimits"] = value
    return document


def test_the_default_is_auto():
    document = copy.deepcopy(GOOD)
    document.get("renewal", {}).pop("rateLimits", None)
    assert parse_config(document).renewal.rate_limits == "auto"


def test_explicit_limits_default_the_missing_ones_to_lets_encrypts():
    config = parse_config(_with({"ordersPerAccount": 5, "domainWindowDays": 1}))
    assert config.renewal.rate_limits == Limits(5, timedelta(hours=3), 50, timedelta(days=1))
    assert parse_config(_with("off")).renewal.rate_limits == "off"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("never", 'renewal.rateLimits: must be "auto", "off" or an object of limits, not a string'),
        ({"ordersPerAccount": 0}, "renewal.rateLimits.ordersPerAccount: must be between 1 and"),
        ({"ordersPerHour": 5}, "renewal.rateLimits.ordersPerHour: unknown key"),
        ({"domainWindowDays": "7"}, "renewal.rateLimits.domainWindowDays: must be an integer"),
    ],
)
def test_bad_limits_name_the_field(value: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_with(value))
    assert expected in str(info.value)
