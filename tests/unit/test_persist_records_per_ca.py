"""dns-persist-01 with a CA list (issue 17): ``plan`` names one record per CA of the certificate.

Each record names its CA's issuer domain and this renewer's account at that CA; a CA whose
account does not exist yet, or that cannot say, is named in the message while the others'
records are still listed. In-memory fakes: the CA list issuer over fake issuers that plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from renewer import dns_names
from renewer.ca_issuers import CaListIssuer
from renewer.dns_names import DnsRecord
from renewer.errors import CaAnswerInvalid
from renewer.model import CaSpec
from renewer.settings import parse_config
from tests.support.fakes_issuer import FakeIssuer
from tests.unit.test_renewal import cert_doc, config_document, new_world, only

pytestmark = pytest.mark.unit

FIRST = "https://acme.first.test/directory"
SECOND = "https://acme.second.test/directory"
THIRD = "https://acme.third.test/directory"


class PlanningIssuer(FakeIssuer):
    """A fake issuer that plans dns-persist-01 records like the ACME adapter.

    ``issuer_domain`` stands for the directory's first ``caaIdentities`` entry; ``registered``
    False: no account yet (None); ``caa`` False: the directory names none (CaAnswerInvalid).
    """

    def __init__(self, *, issuer_domain: str, registered: bool = True, caa: bool = True, **kw: Any):
        super().__init__(**kw)
        self.issuer_domain, self.registered, self.caa = issuer_domain, registered, caa

    def persist_records(
        self, names: Sequence[str], *, deadline: float | None = None
    ) -> tuple[DnsRecord, ...] | None:
        assert deadline is None or deadline > 0
        if not self.registered:
            return None
        if not self.caa:
            raise CaAnswerInvalid("the CA names no caaIdentities in its directory")
        return dns_names.persist_records(names, self.issuer_domain, self.account_url)


def _world(global_cas: list[str], issuers: dict[str, PlanningIssuer], **cert: Any) -> Any:
    world = new_world()
    document = config_document(cert_doc("shop", challenge="dns-persist-01", **cert))
    document["acme"] = {"cas": global_cas}
    world.config = parse_config(document)
    world.options["issuer"] = CaListIssuer(issuers, default=global_cas[0])
    return world


def _issuers(clock: Any, **flags: dict[str, bool]) -> dict[str, PlanningIssuer]:
    made = {}
    for url, domain in ((FIRST, "first.test"), (SECOND, "second.test"), (THIRD, "third.test")):
        host = url.split("/")[2]
        made[url] = PlanningIssuer(
            clock=clock,
            account_url=f"https://{host}/acct/1",
            issuer_domain=domain,
            **flags.get(domain.split(".")[0], {}),
        )
    return made


def test_plan_prints_one_record_per_ca_each_naming_its_ca_and_its_account():
    world = new_world()
    world = _world([FIRST, SECOND], _issuers(world.clock))

    report = only(world.service().plan())

    values = [(r.name, r.value) for r in report.dns_records]
    names = {r.name for r in report.dns_records}
    assert names == {
        "_validation-persist.shop.example.com",
        "_validation-persist.www.shop.example.com",
    }
    for name in names:
        at_name = sorted(value for n, value in values if n == name)
        assert at_name == [
            "first.test; accounturi=https://acme.first.test/acct/1",
            "second.test; accounturi=https://acme.second.test/acct/1",
        ]
    assert "no ACME account" not in report.message


def test_a_ca_without_an_account_is_named_and_the_others_records_still_listed():
    world = new_world()
    world = _world(
        [FIRST, SECOND, THIRD],
        _issuers(world.clock, second={"registered": False}, third={"caa": False}),
    )

    report = only(world.service().plan())

    assert {r.value.split(";")[0] for r in report.dns_records} == {"first.test"}
    assert "no ACME account exists yet at acme.second.test" in report.message
    assert "records for acme.third.test unknown: CaAnswerInvalid" in report.message


def test_a_certificates_own_ca_list_decides_which_records_it_needs():
    world = new_world()
    issuers = _issuers(world.clock)
    world = _world([FIRST, SECOND], issuers, cas=[THIRD])

    report = only(world.service().plan())

    assert {r.value.split(";")[0] for r in report.dns_records} == {"third.test"}


def test_the_ca_list_issuer_answers_per_ca_in_order_and_the_default_without_a_list():
    world = new_world()
    issuer = CaListIssuer(_issuers(world.clock, second={"registered": False}), default=FIRST)

    entries = issuer.persist_records_per_ca(["a.example"], [CaSpec(SECOND), CaSpec(FIRST)])
    default = issuer.persist_records_per_ca(["a.example"], [])

    assert [(e.directory_url, e.records is None) for e in entries] == [
        (SECOND, True),
        (FIRST, False),
    ]
    assert [e.directory_url for e in default] == [FIRST]
