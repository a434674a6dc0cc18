"""Zaken to case events: each change of a zaak once, in order, with the right time and data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.common.config import load_yaml_model
from services.connector.domain.mapping import Mapping
from services.connector.domain.resources import (
    AuditTrail,
    Partij,
    Resultaat,
    ResultaatType,
    Rol,
    Status,
    StatusType,
    Zaak,
    ZaakType,
)
from services.connector.domain.zaken import (
    UnmappedCaseType,
    ZaakFacts,
    ZaakState,
    reconcile,
    status_code,
)
from tests.support.zgw import FakeZgw

REPO = Path(__file__).resolve().parents[3]
MAPPING = load_yaml_model(REPO / "deploy/config/connector/mappings/GM0383.yaml", Mapping)
ZONE = ZoneInfo("Europe/Amsterdam")
T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


class World:
    """A zaak in the fake Open Zaak, and its facts as the worker would fetch them."""

    def __init__(self, identificatie: str = "ZT-OMGEVINGSVERGUNNING") -> None:
        self.fake = FakeZgw(validate=False)
        self.zaaktype = self.fake.zaaktype(
            identificatie,
            "Omgevingsvergunning",
            statustypen=[
                ("Ontvangen", False, True),
                ("In behandeling", False, False),
                ("Afgehandeld", True, False),
            ],
            resultaattypen=[("Verleend", "toegekend"), ("Ingetrokken", "ingetrokken")],
        )
        self.zaak = self.fake.zaak(
            self.zaaktype, registratiedatum=date(2026, 11, 2), bsn="111222333", email="a@b.nl"
        )
        self.state: ZaakState | None = None
        self.partij: dict[str, object] | None = None  # the initiator in Open Klant

    def facts(self) -> ZaakFacts:
        r = self.fake.resources
        statuses = [
            (Status.model_validate(s), StatusType.model_validate(r[s["statustype"]]))
            for s in r.values()
            if s.get("zaak") == self.zaak["url"] and "datumStatusGezet" in s
        ]
        resultaat = None
        if self.zaak["resultaat"]:
            found = r[self.zaak["resultaat"]]
            resultaat = (
                Resultaat.model_validate(found),
                ResultaatType.model_validate(r[found["resultaattype"]]),
            )
        rollen = [v for v in r.values() if v.get("zaak") == self.zaak["url"] and "roltype" in v]
        return ZaakFacts(
            Zaak.model_validate(self.zaak),
            ZaakType.model_validate(self.zaaktype),
            statuses,
            resultaat,
            Rol.model_validate(rollen[0]) if rollen else None,
            [AuditTrail.model_validate(e) for e in self.fake.audit.get(self.zaak["url"], [])],
            partij=Partij.model_validate(self.partij) if self.partij else None,
        )

    def step(self, at: datetime = T0) -> list[tuple[str, datetime, dict[str, object]]]:
        done = reconcile(self.facts(), self.state, MAPPING, changed_at=at, zone=ZONE)
        self.state = done.state
        return [(d.type, d.time, d.data) for d in done.drafts]

    def status(self, name: str, at: datetime) -> None:
        self.fake.set_status(self.zaak, self.fake.statustype(self.zaaktype, name), at)


def test_a_new_zaak_opens_a_case_on_its_registration_day_with_the_initiator() -> None:
    world = World()
    [(kind, time, data)] = world.step()
    assert kind == "case.opened"
    assert time == datetime(2026, 11, 2, tzinfo=ZONE)
    assert data["case_id"] == world.zaak["uuid"]
    assert data["case_type"] == "omgevingsvergunning"
    assert data["channel"] == "email"  # communicatiekanaalNaam e-mail
    assert data["resident"] == {"bsn": "111222333", "email": "a@b.nl"}


def test_the_address_the_resident_agreed_to_in_open_klant_is_the_one_asked_on() -> None:
    world = World()
    world.partij = world.fake.partij(bsn="111222333", email="kto@example.nl")
    [(_, _, data)] = world.step()
    assert data["resident"] == {
        "bsn": "111222333",
        "email": "kto@example.nl",
        "survey_consent": True,
    }


@pytest.mark.parametrize(("consent", "actief"), [(False, True), (True, False)])
def test_without_consent_in_open_klant_the_zaaks_own_address_stays_and_consent_unknown(
    consent: bool, actief: bool
) -> None:
    world = World()
    world.partij = world.fake.partij(
        bsn="111222333", email="kto@example.nl", consent=consent, actief=actief
    )
    [(_, _, data)] = world.step()
    assert data["resident"] == {"bsn": "111222333", "email": "a@b.nl"}


def test_reconciling_again_without_a_change_gives_nothing() -> None:
    world = World()
    world.step()
    world.status("Ontvangen", T0)
    assert world.step()
    assert world.step() == []


def test_a_status_whose_type_informs_the_resident_is_the_first_reaction_once() -> None:
    world = World()
    world.step()
    world.status("Ontvangen", T0)
    assert [k for k, *_ in world.step()] == ["case.status_changed", "case.responded"]
    world.status("In behandeling", datetime(2026, 11, 3, 9, tzinfo=UTC))
    [(kind, time, data)] = world.step()
    assert kind == "case.status_changed"
    assert data["status"] == "in-behandeling"
    assert data["previous_status"] == "ontvangen"
    assert time == datetime(2026, 11, 3, 9, tzinfo=UTC)


def test_opschorting_suspends_and_its_end_resumes_at_the_notified_times() -> None:
    world = World()
    world.step()
    world.zaak["opschorting"] = {
        "indicatie": True,
        "eerdereOpschorting": False,
        "reden": "Wacht op aanvullende gegevens",
    }
    at = datetime(2026, 11, 5, 9, tzinfo=UTC)
    [(kind, time, data)] = world.step(at)
    assert (kind, time, data["reason"]) == ("case.suspended", at, "awaiting_information")
    assert world.step(at) == []  # still suspended: nothing new
    world.zaak["opschorting"] = {"indicatie": False, "eerdereOpschorting": True, "reden": ""}
    later = datetime(2026, 11, 12, 9, tzinfo=UTC)
    [(kind, time, _)] = world.step(later)
    assert (kind, time) == ("case.resumed", later)


def test_a_second_suspension_has_ids_of_its_own() -> None:
    world = World()
    world.step()
    ids = []
    for day in (5, 10):
        world.zaak["opschorting"] = {
            "indicatie": True,
            "eerdereOpschorting": False,
            "reden": "leges",
        }
        done = reconcile(
            world.facts(),
            world.state,
            MAPPING,
            changed_at=datetime(2026, 11, day, tzinfo=UTC),
            zone=ZONE,
        )
        world.state = done.state
        ids.append(done.drafts[0].id)
        world.zaak["opschorting"] = {"indicatie": False, "eerdereOpschorting": True, "reden": ""}
        world.state = reconcile(
            world.facts(),
            world.state,
            MAPPING,
            changed_at=datetime(2026, 11, day + 1, tzinfo=UTC),
            zone=ZONE,
        ).state
    assert len(set(ids)) == 2
    assert world.state is not None and world.state.suspensions == 2


def test_verlenging_extends_by_its_duur_and_a_longer_duur_by_the_difference() -> None:
    world = World()
    world.step()
    world.zaak["verlenging"] = {"reden": "complex", "duur": "P14D"}
    [(kind, _, data)] = world.step()
    assert kind == "case.extended"
    assert data["extension"] == {"amount": 14, "unit": "working_days"}
    assert world.step() == []
    world.zaak["verlenging"] = {"reden": "complex", "duur": "P21D"}
    [(_, _, data)] = world.step()
    assert data["extension"] == {"amount": 7, "unit": "working_days"}


def test_the_eindstatus_closes_the_case_with_the_resultaat() -> None:
    world = World()
    world.step()
    world.fake.set_resultaat(world.zaak, world.fake.resultaattype(world.zaaktype, "Verleend"))
    end = datetime(2026, 11, 20, 15, tzinfo=UTC)
    world.status("Afgehandeld", end)
    kinds = world.step()
    assert [k for k, *_ in kinds] == ["case.status_changed", "case.closed"]
    _, time, data = kinds[1]
    assert time == end
    assert data["outcome"] == "granted"
    assert data["resident"] == {"bsn": "111222333", "email": "a@b.nl"}


def test_a_status_after_the_eindstatus_reopens_the_case() -> None:
    world = World()
    world.step()
    world.status("Afgehandeld", T0)
    world.step()
    world.status("In behandeling", datetime(2026, 11, 25, tzinfo=UTC))
    assert [k for k, *_ in world.step()] == ["case.reopened", "case.status_changed"]


def test_statuses_heard_before_the_zaak_still_open_the_case_first() -> None:
    world = World()
    world.status("Ontvangen", T0)
    world.status("In behandeling", datetime(2026, 11, 3, tzinfo=UTC))
    kinds = [k for k, *_ in world.step()]
    assert kinds == [
        "case.opened",
        "case.status_changed",
        "case.responded",
        "case.status_changed",
    ]


def test_event_ids_are_the_same_when_the_same_history_is_replayed() -> None:
    world = World()
    world.status("Ontvangen", T0)
    first = reconcile(world.facts(), None, MAPPING, changed_at=T0, zone=ZONE).drafts
    again = reconcile(world.facts(), None, MAPPING, changed_at=T0, zone=ZONE).drafts
    assert [d.id for d in first] == [d.id for d in again]
    assert len({d.id for d in first}) == len(first)


def test_an_unmapped_zaaktype_is_refused_for_review() -> None:
    world = World("ZT-ONBEKEND")
    with pytest.raises(UnmappedCaseType, match="ZT-ONBEKEND"):
        world.step()


@pytest.mark.parametrize(
    ("omschrijving", "code"),
    [
        ("In behandeling", "in-behandeling"),
        ("Besluit genomen!", "besluit-genomen"),
        ("???", "status-1"),
    ],
)
def test_status_codes_from_omschrijving(omschrijving: str, code: str) -> None:
    statustype = StatusType(url="http://x/1", omschrijving=omschrijving, volgnummer=1)
    assert status_code(statustype) == code


def _opschorting(indicatie: bool, reden: str = "") -> dict[str, object]:
    return {"indicatie": indicatie, "eerdereOpschorting": not indicatie, "reden": reden}


def test_the_audit_trail_dates_each_suspension_even_one_already_over() -> None:
    world = World()
    world.step()
    begun, ended = datetime(2026, 11, 5, 10, tzinfo=UTC), datetime(2026, 11, 9, 16, tzinfo=UTC)
    world.fake.revise(world.zaak, begun, opschorting=_opschorting(True, "leges betalen"))
    world.fake.revise(world.zaak, ended, opschorting=_opschorting(False))
    drafts = world.step(datetime(2026, 11, 10, tzinfo=UTC))
    assert [(k, t) for k, t, _ in drafts] == [("case.suspended", begun), ("case.resumed", ended)]
    assert drafts[0][2]["reason"] == "awaiting_payment"
    assert world.step(datetime(2026, 11, 11, tzinfo=UTC)) == []


def test_a_refused_change_in_the_audit_trail_changed_nothing() -> None:
    world = World()
    world.step()
    world.fake.revise(world.zaak, T0, opschorting=_opschorting(True, "advies"))
    world.fake.audit[world.zaak["url"]][-1]["resultaat"] = 400
    world.zaak["opschorting"] = _opschorting(False)
    assert world.step() == []


def test_the_audit_trail_dates_the_verlenging() -> None:
    world = World()
    world.step()
    at = datetime(2026, 11, 13, 8, tzinfo=UTC)
    world.fake.revise(world.zaak, at, verlenging={"reden": "complex", "duur": "P6W"})
    [(kind, time, data)] = world.step(datetime(2026, 11, 14, tzinfo=UTC))
    assert (kind, time) == ("case.extended", at)
    assert data["extension"] == {"amount": 6, "unit": "weeks"}


def test_a_change_not_yet_in_the_audit_trail_is_dated_by_the_notification() -> None:
    world = World()
    world.step()
    world.zaak["opschorting"] = _opschorting(True, "advies")  # the trail lags behind
    noticed = datetime(2026, 11, 6, tzinfo=UTC)
    [(kind, time, _)] = world.step(noticed)
    assert (kind, time) == ("case.suspended", noticed)


def test_a_verlenging_heard_together_with_the_eindstatus_still_extends() -> None:
    """The worker may take the eindstatus' notification before the zaak's own update: the
    verlenging, given before the zaak was closed, must not be lost because the same pass closed
    the case first (found by the Open Zaak end-to-end test: case.extended went missing)."""
    world = World()
    world.step()
    extended = datetime(2026, 11, 13, 8, tzinfo=UTC)
    world.fake.revise(world.zaak, extended, verlenging={"reden": "complex", "duur": "P6W"})
    world.fake.set_resultaat(world.zaak, world.fake.resultaattype(world.zaaktype, "Verleend"))
    end = datetime(2026, 11, 20, 15, tzinfo=UTC)
    world.status("Afgehandeld", end)
    kinds = [(k, t) for k, t, _ in world.step(end)]
    assert kinds == [
        ("case.extended", extended),
        ("case.status_changed", end),
        ("case.closed", end),
    ]


def test_a_verlenging_after_the_case_closed_extends_nothing() -> None:
    world = World()
    world.step()
    end = datetime(2026, 11, 20, 15, tzinfo=UTC)
    world.status("Afgehandeld", end)
    world.step(end)
    later = datetime(2026, 11, 23, 8, tzinfo=UTC)
    world.fake.revise(world.zaak, later, verlenging={"reden": "te laat", "duur": "P6W"})
    assert world.step(later) == []
