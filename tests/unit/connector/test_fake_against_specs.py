"""The fake ZGW APIs answer as the real specifications say (checked only where the specs are
beside the repository, ../shared/specs; a user's clone skips this)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import httpx
import jwt
import pytest

from tests.support.zgw import (
    CATALOGI,
    JWT_SECRET,
    KLANT_TOKEN,
    KLANTINTERACTIES,
    NOTIFICATIES,
    NRC_SECRET,
    ZAKEN,
    FakeZgw,
    spec_check,
)

needs_specs = pytest.mark.skipif(
    spec_check() is None, reason="the ZGW specifications (../shared/specs) are not here"
)
AT = datetime(2026, 11, 2, 10, tzinfo=UTC)


def _bearer(secret: str) -> dict[str, str]:
    token = jwt.encode({"iss": "servicepuls", "client_id": "servicepuls"}, secret, "HS256")
    return {"Authorization": f"Bearer {token}"}


@needs_specs
async def test_every_kind_of_answer_the_connector_reads_is_valid_by_the_specs() -> None:
    fake = FakeZgw()
    zaaktype = fake.zaaktype(
        "ZT-KLACHT",
        "Klacht",
        servicenorm="P4W",
        statustypen=[("Ontvangen", False, True), ("Afgehandeld", True, False)],
        resultaattypen=[("Gegrond", "gegrond")],
    )
    zaak = fake.zaak(zaaktype, registratiedatum=date(2026, 11, 2), bsn="111222333", email="a@b.nl")
    zaak["opschorting"] = {"indicatie": True, "eerdereOpschorting": False, "reden": "advies"}
    zaak["verlenging"] = {"reden": "complex", "duur": "P4W"}
    fake.set_status(zaak, fake.statustype(zaaktype, "Ontvangen"), AT)
    fake.set_resultaat(zaak, fake.resultaattype(zaaktype, "Gegrond"))
    partij = fake.partij(bsn="111222333", email="a@b.nl", phone="0612345678")
    contact = fake.klantcontact(
        kanaal="telefoon",
        onderwerp="afval",
        plaatsgevonden=AT,
        zaak_uuid=zaak["uuid"],
        email="a@b.nl",
        partij=partij,
    )
    taak = fake.internetaak(contact, handeling="terugbellen", toegewezen=AT)
    taak["status"] = "verwerkt"
    taak["afgehandeldOp"] = AT.isoformat()
    oz, ok = _bearer(JWT_SECRET), {"Authorization": f"Token {KLANT_TOKEN}"}
    expand = "hadBetrokkenen,hadBetrokkenen.digitaleAdressen,gingOverOnderwerpobjecten"
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        for url, headers, params in [
            (zaak["url"], oz, {}),
            (f"{ZAKEN}/statussen", oz, {"zaak": zaak["url"]}),
            (f"{ZAKEN}/rollen", oz, {"zaak": zaak["url"], "omschrijvingGeneriek": "initiator"}),
            (zaak["resultaat"], oz, {}),
            (zaaktype["url"], oz, {}),
            (f"{CATALOGI}/zaaktypen", oz, {"identificatie": "ZT-KLACHT"}),
            (zaaktype["statustypen"][0], oz, {}),
            (zaaktype["resultaattypen"][0], oz, {}),
            (contact["url"], ok, {"expand": expand}),
            (taak["url"], ok, {}),
            (partij["url"], ok, {"expand": "digitaleAdressen"}),
            (
                f"{KLANTINTERACTIES}/partijen",
                ok,
                {
                    "partijIdentificator__codeSoortObjectId": "bsn",
                    "partijIdentificator__objectId": "111222333",
                    "expand": "digitaleAdressen",
                },
            ),
        ]:
            response = await http.get(url, headers=headers, params=params)
            assert response.status_code == 200, url
        nrc = _bearer(NRC_SECRET)
        body = {
            "callbackUrl": "https://servicepuls.example/v1/notificaties/GM0383",
            "auth": "Bearer x",
            "kanalen": [{"naam": "zaken", "filters": {}}],
        }
        created = await http.post(f"{NOTIFICATIES}/abonnement", json=body, headers=nrc)
        assert created.status_code == 201
        assert (await http.get(f"{NOTIFICATIES}/abonnement", headers=nrc)).status_code == 200
    assert fake.validated == 14


@needs_specs
async def test_the_check_refuses_an_answer_the_spec_does_not_allow() -> None:
    fake = FakeZgw()
    zaaktype = fake.zaaktype("ZT-KLACHT", "Klacht")
    zaaktype["doorlooptijd"] = 42  # a duration is a string
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        with pytest.raises(AssertionError, match="doorlooptijd"):
            await http.get(zaaktype["url"], headers=_bearer(JWT_SECRET))


async def test_the_fake_refuses_callers_without_the_right_credentials() -> None:
    fake = FakeZgw()
    zaaktype = fake.zaaktype("ZT-KLACHT", "Klacht")
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        assert (
            await http.get(zaaktype["url"], headers=_bearer("wrong-secret-" * 3))
        ).status_code == 403
        assert (await http.get(zaaktype["url"])).status_code == 403


@needs_specs
def test_requests_and_messages_are_checked_too() -> None:
    check = spec_check()
    assert check is not None
    with pytest.raises(AssertionError, match="auth"):
        check.validate_request(NOTIFICATIES, "/abonnement", "POST", {"callbackUrl": "https://x"})
    with pytest.raises(AssertionError, match="aanmaakdatum"):
        check.validate_message({"kanaal": "zaken"})
