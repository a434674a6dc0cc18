from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.common import DurationUnit
from services.connector.domain.catalogue_norms import norms_for
from services.connector.domain.mapping import NotADuration, iso_duration
from services.connector.domain.notification import Feed, Notification, feed_for
from services.connector.domain.resources import ZaakType
from services.norms.domain.catalog import NormDefinition


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [
        ("P8W", 8, DurationUnit.WEEKS),
        ("P42D", 42, DurationUnit.WORKING_DAYS),
        ("P1M", 30, DurationUnit.CALENDAR_DAYS),
        ("P1Y", 365, DurationUnit.CALENDAR_DAYS),
        ("P1W3D", 10, DurationUnit.CALENDAR_DAYS),
        ("PT4H", 240, DurationUnit.MINUTES),
        ("PT90S", 90, DurationUnit.SECONDS),
    ],
)
def test_iso_durations_in_the_units_norms_count_in(
    text: str, amount: float, unit: DurationUnit
) -> None:
    duration = iso_duration(text)
    assert (duration.amount, duration.unit) == (amount, unit)


@pytest.mark.parametrize("text", ["", "P", "8W", "P-1D", "PT", "P1DT1H", "P0D"])
def test_what_is_not_a_duration_says_so(text: str) -> None:
    with pytest.raises(NotADuration):
        iso_duration(text)


def _message(**changes: str) -> Notification:
    body = {
        "kanaal": "zaken",
        "hoofdObject": "http://oz/zaken/api/v1/zaken/1",
        "resource": "zaak",
        "resourceUrl": "http://oz/zaken/api/v1/zaken/1",
        "actie": "create",
        "aanmaakdatum": "2026-11-02T10:00:00Z",
        "kenmerken": {"bronorganisatie": "002564440"},
    }
    return Notification.model_validate(body | changes)


def test_the_same_message_has_the_same_dedupe_key_and_another_another() -> None:
    assert _message().dedupe_key() == _message().dedupe_key()
    assert _message().dedupe_key() != _message(actie="update").dedupe_key()
    assert _message().aanmaakdatum == datetime(2026, 11, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kanaal", "resource", "actie", "feed"),
    [
        ("zaken", "zaak", "create", Feed.ZAAK),
        ("zaken", "status", "create", Feed.ZAAK),
        ("zaken", "zaak", "destroy", None),
        ("zaken", "zaakinformatieobject", "create", None),
        ("documenten", "enkelvoudiginformatieobject", "create", None),
        ("klantcontacten", "klantcontact", "create", Feed.KLANTCONTACT),
        ("internetaken", "internetaak", "update", Feed.INTERNETAAK),
        ("test", "test", "create", None),
    ],
)
def test_which_notifications_are_queued(
    kanaal: str, resource: str, actie: str, feed: Feed | None
) -> None:
    assert feed_for(_message(kanaal=kanaal, resource=resource, actie=actie)) is feed


def test_norms_from_a_zaaktype_are_valid_norm_definitions() -> None:
    zaaktype = ZaakType(
        url="http://cat/zaaktypen/1",
        identificatie="ZT-OMGEVINGSVERGUNNING",
        omschrijving="Omgevingsvergunning",
        doorlooptijd="P8W",
        servicenorm="P4W",
        opschortingEnAanhoudingMogelijk=True,
        verlengingMogelijk=True,
        verlengingstermijn="P6W",
    )
    legal, service = (
        NormDefinition.model_validate(n) for n in norms_for(zaaktype, "omgevingsvergunning")
    )
    assert legal.legal_term and legal.target.amount == 8 and legal.target.unit is DurationUnit.WEEKS
    assert legal.max_extension is not None and legal.max_extension.amount == 6
    assert legal.pause and legal.resume and legal.extend
    assert not service.legal_term and service.target.amount == 4


def test_a_zaaktype_without_opschorting_or_verlenging_gets_no_such_rules() -> None:
    zaaktype = ZaakType(url="http://cat/zaaktypen/2", doorlooptijd="P10D")
    [only] = norms_for(zaaktype, "melding-openbare-ruimte")
    definition = NormDefinition.model_validate(only)
    assert not definition.pause and not definition.extend
