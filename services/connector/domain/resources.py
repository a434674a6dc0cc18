"""The resources the connector reads, in the fields it needs: derived from the Zaken API 1.5,
Catalogi API 1.3 and Klantinteracties API 0.9 specifications (names as the APIs spell them,
so a response validates straight into these models; every other field is ignored)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from schemas.common import AwareDatetime


class _Resource(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


# --- Zaken API ------------------------------------------------------------------------------


class Opschorting(_Resource):
    indicatie: bool = False
    reden: str = ""


class Verlenging(_Resource):
    reden: str = ""
    duur: str | None = None


class Zaak(_Resource):
    url: str
    uuid: str
    identificatie: str = ""
    zaaktype: str
    registratiedatum: date | None = None
    startdatum: date
    einddatum: date | None = None
    communicatiekanaal: str = ""
    communicatiekanaalNaam: str = ""
    opschorting: Opschorting | None = None
    verlenging: Verlenging | None = None
    status: str | None = None
    resultaat: str | None = None


class Status(_Resource):
    url: str
    zaak: str
    statustype: str
    datumStatusGezet: AwareDatetime


class Resultaat(_Resource):
    url: str
    resultaattype: str


class ContactPersoonRol(_Resource):
    emailadres: str = ""
    telefoonnummer: str = ""


class ZaakRevision(_Resource):
    """The zaak as one change left it (`wijzigingen.nieuw` of an audit trail entry); only the
    fields whose history the connector reads."""

    opschorting: Opschorting | None = None
    verlenging: Verlenging | None = None


class Wijzigingen(_Resource):
    nieuw: ZaakRevision | None = None


class AuditTrail(_Resource):
    """One entry of `/zaken/{uuid}/audittrail`: what changed, and when."""

    resource: str
    actie: str
    aanmaakdatum: AwareDatetime
    resultaat: int = 200
    wijzigingen: Wijzigingen = Field(default_factory=Wijzigingen)


class Rol(_Resource):
    betrokkeneType: str = ""
    omschrijvingGeneriek: str = ""
    betrokkeneIdentificatie: dict[str, object] | None = None
    contactpersoonRol: ContactPersoonRol | None = None


# --- Catalogi API ---------------------------------------------------------------------------


class ZaakType(_Resource):
    url: str
    identificatie: str = ""
    omschrijving: str = ""
    doorlooptijd: str
    servicenorm: str | None = None
    opschortingEnAanhoudingMogelijk: bool = False
    verlengingMogelijk: bool = False
    verlengingstermijn: str | None = None
    statustypen: list[str] = Field(default_factory=list)
    resultaattypen: list[str] = Field(default_factory=list)


class StatusType(_Resource):
    url: str
    omschrijving: str
    volgnummer: int
    isEindstatus: bool = False
    informeren: bool = False


class ResultaatType(_Resource):
    url: str
    omschrijving: str = ""
    omschrijvingGeneriek: str = ""


# --- Klantinteracties API -------------------------------------------------------------------


class ForeignKey(_Resource):
    url: str
    uuid: str


class DigitaalAdres(_Resource):
    adres: str
    soortDigitaalAdres: str  # email | telefoonnummer | overig
    referentie: str = ""


class BetrokkeneExpand(_Resource):
    digitaleAdressen: list[DigitaalAdres] = Field(default_factory=list)


class Betrokkene(_Resource):
    uuid: str
    rol: str  # klant | vertegenwoordiger
    initiator: bool = False
    # The partij (the resident as Open Klant knows them) this betrokkene was, if known.
    wasPartij: ForeignKey | None = None
    expand: BetrokkeneExpand = Field(default_factory=BetrokkeneExpand, alias="_expand")


class PartijExpand(_Resource):
    digitaleAdressen: list[DigitaalAdres] | None = None


class Partij(_Resource):
    """A resident or organisation as Open Klant keeps them. Their digitale adressen
    (`verstrektDoorPartij`) are given "for future contact with the municipality"; those of a
    partij that is not `indicatieActief` may not be used to contact them (the spec says so)."""

    url: str
    uuid: str
    indicatieActief: bool
    expand: PartijExpand = Field(default_factory=PartijExpand, alias="_expand")


class Onderwerpobjectidentificator(_Resource):
    objectId: str = ""
    codeObjecttype: str = ""
    codeRegister: str = ""


class Onderwerpobject(_Resource):
    onderwerpobjectidentificator: Onderwerpobjectidentificator | None = None


class KlantcontactExpand(_Resource):
    hadBetrokkenen: list[Betrokkene] = Field(default_factory=list)
    gingOverOnderwerpobjecten: list[Onderwerpobject] = Field(default_factory=list)


class Klantcontact(_Resource):
    url: str
    uuid: str
    kanaal: str
    onderwerp: str
    indicatieContactGelukt: bool | None = None
    plaatsgevondenOp: AwareDatetime
    expand: KlantcontactExpand = Field(default_factory=KlantcontactExpand, alias="_expand")


class InterneTaak(_Resource):
    url: str
    uuid: str
    gevraagdeHandeling: str
    aanleidinggevendKlantcontact: ForeignKey
    status: str  # te_verwerken | verwerkt
    toegewezenOp: AwareDatetime
    afgehandeldOp: AwareDatetime | None = None
