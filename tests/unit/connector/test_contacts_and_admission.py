"""Klantcontacten and internetaken to contact events, and every draft through intake's own
admission: valid, the resident sealed, no personal data left in the clear."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from services.common.config import load_yaml_model
from services.common.sealing import generate_keys
from services.connector.config import Source
from services.connector.domain.drafts import Draft
from services.connector.domain.klantcontacten import UnmappedChannel, callback, contact_completed
from services.connector.domain.mapping import Mapping
from services.connector.domain.resources import InterneTaak, Klantcontact, Partij
from services.intake.domain.admission import admit
from tests.support.zgw import FakeZgw
from tests.unit.connector.test_zaken import World

REPO = Path(__file__).resolve().parents[3]
MAPPING = load_yaml_model(REPO / "deploy/config/connector/mappings/GM0383.yaml", Mapping)
AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
KEYS = generate_keys()
SOURCE = Source.model_validate(
    {
        "municipality": "GM0383",
        "source": "/buch/open-zaak",
        "callback_auth_sha256": "0" * 64,
        "callback_auth_env": "CALLBACK",
        "callback_url": "http://127.0.0.1:8084/v1/notificaties/GM0383",
        "mapping": "GM0383",
    }
)


def _expanded(contact: dict[str, object]) -> Klantcontact:
    return Klantcontact.model_validate(contact)


def test_a_klantcontact_is_a_completed_contact_about_its_zaak() -> None:
    fake = FakeZgw(validate=False)
    contact = fake.klantcontact(
        kanaal="Telefoon",
        onderwerp="Afval",
        plaatsgevonden=AT,
        gelukt=False,
        zaak_uuid="8c5f5a3e-0c4e-4a5b-9a43-2f4f1c0d9e11",
        email="inwoner@example.nl",
    )
    draft = contact_completed(_expanded(contact), MAPPING)
    assert draft.type == "contact.completed"
    assert draft.time == AT
    assert draft.data["channel"] == "phone"
    assert draft.data["topic"] == "afval"
    assert draft.data["answered"] is False
    assert draft.data["case_id"] == "8c5f5a3e-0c4e-4a5b-9a43-2f4f1c0d9e11"
    assert draft.data["resident"] == {"email": "inwoner@example.nl", "survey_consent": True}


def test_addresses_without_consent_are_left_out_and_free_text_onderwerp_is_not_copied() -> None:
    fake = FakeZgw(validate=False)
    contact = fake.klantcontact(
        kanaal="e-mail",
        onderwerp="Vraag van J. Jansen over zijn aanslag",
        plaatsgevonden=AT,
        email="inwoner@example.nl",
        consent=False,
    )
    draft = contact_completed(_expanded(contact), MAPPING)
    assert "resident" not in draft.data
    assert draft.data["topic"] == "overig"


def test_consent_is_read_from_the_partij_the_resident_was() -> None:
    """Open Klant keeps a resident's addresses for future contact on their partij
    (`verstrektDoorPartij`), not on the betrokkene of one contact: the agreed address is
    found there (before this, a resident who agreed in their profile was never asked)."""
    fake = FakeZgw(validate=False)
    partij = fake.partij(bsn="111222333", email="profiel@example.nl", phone="0612345678")
    contact = fake.klantcontact(
        kanaal="Telefoon", onderwerp="Afval", plaatsgevonden=AT, partij=partij
    )
    draft = contact_completed(_expanded(contact), MAPPING, Partij.model_validate(partij))
    assert draft.data["resident"] == {
        "email": "profiel@example.nl",
        "phone": "0612345678",
        "survey_consent": True,
    }


@pytest.mark.parametrize(
    ("consent", "actief"),
    [(False, True), (True, False)],
    ids=["address-without-the-consent-marker", "partij-not-active"],
)
def test_no_address_of_a_partij_without_consent_or_not_active(consent: bool, actief: bool) -> None:
    fake = FakeZgw(validate=False)
    partij = fake.partij(
        bsn="111222333", email="profiel@example.nl", consent=consent, actief=actief
    )
    contact = fake.klantcontact(
        kanaal="Telefoon", onderwerp="Afval", plaatsgevonden=AT, partij=partij
    )
    draft = contact_completed(_expanded(contact), MAPPING, Partij.model_validate(partij))
    assert "resident" not in draft.data


def test_an_address_given_in_the_contact_comes_before_the_partijs() -> None:
    fake = FakeZgw(validate=False)
    partij = fake.partij(bsn="111222333", email="profiel@example.nl")
    contact = fake.klantcontact(
        kanaal="Telefoon",
        onderwerp="Afval",
        plaatsgevonden=AT,
        email="nu@example.nl",
        partij=partij,
    )
    draft = contact_completed(_expanded(contact), MAPPING, Partij.model_validate(partij))
    assert draft.data["resident"]["email"] == "nu@example.nl"


def test_an_unmapped_kanaal_is_refused_for_review() -> None:
    fake = FakeZgw(validate=False)
    contact = fake.klantcontact(kanaal="postduif", onderwerp="afval", plaatsgevonden=AT)
    with pytest.raises(UnmappedChannel):
        contact_completed(_expanded(contact), MAPPING)


def test_an_internetaak_to_call_back_starts_and_its_verwerkt_ends_the_callback() -> None:
    fake = FakeZgw(validate=False)
    contact = fake.klantcontact(kanaal="telefoon", onderwerp="afval", plaatsgevonden=AT)
    taak = fake.internetaak(contact, handeling="Terugbellen inwoner", toegewezen=AT)
    [request] = callback(InterneTaak.model_validate(taak), MAPPING, changed_at=AT)
    assert request.data["callback_requested"] is True
    assert request.data["channel"] == "phone"
    done_at = datetime(2026, 11, 3, 9, tzinfo=UTC)
    taak["status"] = "verwerkt"
    taak["afgehandeldOp"] = done_at.isoformat()
    again, answer = callback(InterneTaak.model_validate(taak), MAPPING, changed_at=AT)
    assert again.id == request.id
    assert answer.data["in_reply_to"] == request.data["contact_id"]
    assert answer.data["direction"] == "outbound"
    assert answer.time == done_at


def test_other_internetaken_are_no_callbacks() -> None:
    fake = FakeZgw(validate=False)
    contact = fake.klantcontact(kanaal="telefoon", onderwerp="afval", plaatsgevonden=AT)
    taak = fake.internetaak(contact, handeling="Stuur formulier op", toegewezen=AT)
    assert callback(InterneTaak.model_validate(taak), MAPPING, changed_at=AT) == []


def _lifecycle_drafts() -> list[Draft]:
    world = World()
    drafts = []
    world.status("Ontvangen", AT)
    drafts += _reconcile(world, AT)
    world.zaak["opschorting"] = {"indicatie": True, "eerdereOpschorting": False, "reden": "advies"}
    drafts += _reconcile(world, datetime(2026, 11, 5, tzinfo=UTC))
    world.zaak["opschorting"] = {"indicatie": False, "eerdereOpschorting": True, "reden": ""}
    world.zaak["verlenging"] = {"reden": "complex", "duur": "P6W"}
    drafts += _reconcile(world, datetime(2026, 11, 9, tzinfo=UTC))
    world.fake.set_resultaat(world.zaak, world.fake.resultaattype(world.zaaktype, "Verleend"))
    world.status("Afgehandeld", datetime(2026, 11, 20, tzinfo=UTC))
    drafts += _reconcile(world, datetime(2026, 11, 20, tzinfo=UTC))
    contact = world.fake.klantcontact(
        kanaal="telefoon",
        onderwerp="afval",
        plaatsgevonden=AT,
        zaak_uuid=world.zaak["uuid"],
        email="inwoner@example.nl",
    )
    drafts.append(contact_completed(_expanded(contact), MAPPING))
    taak = world.fake.internetaak(contact, handeling="terugbellen", toegewezen=AT)
    taak["status"] = "verwerkt"
    drafts += callback(InterneTaak.model_validate(taak), MAPPING, changed_at=AT)
    return drafts


def _reconcile(world: World, at: datetime) -> list[Draft]:
    from services.connector.domain.zaken import reconcile
    from tests.unit.connector.test_zaken import ZONE

    done = reconcile(world.facts(), world.state, MAPPING, changed_at=at, zone=ZONE)
    world.state = done.state
    return done.drafts


def test_every_draft_passes_intakes_admission_with_the_resident_sealed() -> None:
    drafts = _lifecycle_drafts()
    types = [d.type for d in drafts]
    assert types[:2] == ["case.opened", "case.status_changed"]
    assert {"case.suspended", "case.resumed", "case.extended", "case.closed"} <= set(types)
    system = SOURCE.channel_system()
    for draft in drafts:
        admitted = admit(
            draft.document(source=SOURCE.source, municipality="GM0383"),
            system=system,
            keys=KEYS,
            now=datetime(2026, 12, 1, tzinfo=UTC),
        )
        assert admitted.id == draft.id
        assert b"a@b.nl" not in admitted.record.value
        assert b"inwoner@example.nl" not in admitted.record.value
        assert b"111222333" not in admitted.record.value
        envelope = admitted.envelope()
        assert envelope.time == draft.time
        resident = getattr(envelope.data, "resident", None)
        if draft.data.get("resident"):
            assert resident is not None and resident.sealed_contact
    assert date(2026, 11, 2) == drafts[0].time.date()


def test_the_connector_may_post_only_for_its_own_municipality_and_source() -> None:
    [draft, *_] = _lifecycle_drafts()
    from services.intake.domain.admission import NotAdmitted

    with pytest.raises(NotAdmitted) as refused:
        admit(
            draft.document(source="/buch/other", municipality="GM0383"),
            system=SOURCE.channel_system(),
            keys=KEYS,
        )
    assert refused.value.status == 403
