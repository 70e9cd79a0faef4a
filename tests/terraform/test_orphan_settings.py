"""Terraform's ``renewal.orphan_grace_days`` and ``revoke_on_removal`` reach the renewer.

The defaults (30 days, no revocation) are the renewer's own; a value outside 1-365 is refused
by the variable's validation with its message, before anything is applied.
"""

from __future__ import annotations

import pytest

from renewer.settings import parse_config
from tests.terraform.hcl_eval import ValidationFailed
from tests.terraform.stack import evaluate, evaluate_root, example_inputs

pytestmark = pytest.mark.unit


def test_defaults_are_a_thirty_day_grace_and_no_revocation() -> None:
    documents = evaluate("basic")
    assert documents.config["renewal"]["orphanGraceDays"] == 30
    assert documents.config["renewal"]["revokeOnRemoval"] is False
    renewal = parse_config(documents.config).renewal
    assert (renewal.orphan_grace_days, renewal.revoke_on_removal) == (30, False)


def test_the_variable_is_passed_through() -> None:
    inputs = {
        **example_inputs("basic"),
        "renewal": {"orphan_grace_days": 7, "revoke_on_removal": True},
    }
    documents = evaluate_root(inputs)
    renewal = parse_config(documents.config).renewal
    assert (renewal.orphan_grace_days, renewal.revoke_on_removal) == (7, True)
    assert renewal.retention == 10  # the other knobs keep their defaults


@pytest.mark.parametrize("days", [0, 366, 2.5])
def test_a_grace_outside_one_to_365_whole_days_is_refused(days: float) -> None:
    inputs = {**example_inputs("basic"), "renewal": {"orphan_grace_days": days}}
    with pytest.raises(ValidationFailed, match=r"var\.renewal: .*from 1 to 365"):
        evaluate_root(inputs)
