"""An in-process fake of Open Zaak (Zaken, Catalogi API), Open Klant (Klantinteracties API)
and Open Notificaties, for the connector's tests: served through `httpx.ASGITransport`, it
checks each caller's credentials, can fail on demand, and validates every response it gives
against the real OpenAPI specifications when they are present (../shared/specs), so the fake
cannot drift from what the real systems answer."""

from __future__ import annotations

import os
import re
import uuid
from copy import deepcopy
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import jwt
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

REPO_ROOT = Path(__file__).resolve().parents[2]
ZAKEN = "http://open-zaak.test/zaken/api/v1"
CATALOGI = "http://open-zaak.test/catalogi/api/v1"
KLANTINTERACTIES = "http://open-klant.test/klantinteracties/api/v1"
NOTIFICATIES = "http://open-notificaties.test/api/v1"
JWT_SECRET = "test-openzaak-secret-of-32-bytes-at-least"
KLANT_TOKEN = "test-openklant-token"
NRC_SECRET = "test-notificaties-secret-of-32-bytes-min"


def specs_dir() -> Path | None:
    """The specifications, when this checkout has them beside it (a user's clone may not)."""
    for candidate in (
        os.environ.get("SERVICEPULS_SPECS_DIR"),
        "/work/shared/specs",
        str(REPO_ROOT.parent / "shared" / "specs"),
    ):
        if candidate and (Path(candidate) / "zaken-openapi.yaml").exists():
            return Path(candidate)
    return None


SPEC_FILES = {
    ZAKEN: "zaken-openapi.yaml",
    CATALOGI: "catalogi-openapi.yaml",
    KLANTINTERACTIES: "klantinteracties-openapi.yaml",
    NOTIFICATIES: "notificaties-openapi.yaml",
}


def _as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema -> JSON Schema: `nullable` as a null alternative, a discriminated
    oneOf as anyOf (its members overlap), references outside the document as anything."""
    if isinstance(node, list):
        return [_as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {
        key: _as_json_schema(value)
        for key, value in node.items()
        if key not in ("discriminator", "example", "examples")
    }
    ref = node.get("$ref")
    if isinstance(ref, str) and not ref.startswith("#"):
        return {}
    if "oneOf" in node and any("$ref" in m for m in node["oneOf"]):
        node["anyOf"] = node.pop("oneOf")
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


class SpecCheck:
    """Validates a response body against the schema the spec gives for its operation."""

    def __init__(self, folder: Path) -> None:
        self.documents: dict[
            str, tuple[dict[str, Any], list[tuple[re.Pattern[str], dict[str, Any]]]]
        ] = {}
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for base, name in SPEC_FILES.items():
            document = yaml.load((folder / name).read_text(), Loader=loader)
            components = _as_json_schema(document["components"])
            operations = []
            for template, item in document["paths"].items():
                pattern = re.compile(
                    "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
                )
                operations.append((pattern, item))
            self.documents[base] = (components, operations)

    def _errors(self, base: str, schema: dict[str, Any], body: Any) -> list[str]:
        import jsonschema_rs

        components, _ = self.documents[base]
        root = {"components": components, **_as_json_schema(schema)}
        return [
            f"{'/'.join(str(p) for p in e.instance_path)}: {e.message}"
            for e in jsonschema_rs.Draft202012Validator(root).iter_errors(body)
        ]

    def validate_request(self, base: str, path: str, method: str, body: Any) -> None:
        """A request body (e.g. the abonnement the connector registers) as the spec says."""
        _, operations = self.documents[base]
        for pattern, item in operations:
            if pattern.match(path) and method.lower() in item:
                content = (item[method.lower()].get("requestBody") or {}).get("content", {})
                schema = content.get("application/json", {}).get("schema")
                if schema is not None:
                    # readOnly fields (url) are not sent; the spec marks them required anyway.
                    errors = [
                        e
                        for e in self._errors(base, schema, body)
                        if "'url' is a required" not in e and '"url" is a required' not in e
                    ]
                    if errors:
                        raise AssertionError(
                            f"{method} {path} request not as the spec says: {errors[:5]}"
                        )
                return
        raise AssertionError(f"{method} {path}: no such operation in the spec")

    def validate_message(self, message: Any) -> None:
        """A notification as the Notificaties API sends it (its `Message`)."""
        errors = self._errors(NOTIFICATIES, {"$ref": "#/components/schemas/Message"}, message)
        if errors:
            raise AssertionError(f"not a Notificaties API message: {errors[:5]}")

    def validate(self, base: str, path: str, method: str, status: int, body: Any) -> None:
        _, operations = self.documents[base]
        for pattern, item in operations:
            if pattern.match(path) and method.lower() in item:
                response = item[method.lower()]["responses"].get(str(status))
                if response is None:
                    raise AssertionError(f"{method} {path}: the spec gives no {status} response")
                content = response.get("content") or {}
                schema = (
                    content.get("application/json") or content.get("application/problem+json") or {}
                ).get("schema")
                if schema is None:
                    return
                errors = self._errors(base, schema, body)
                if errors:
                    raise AssertionError(f"{method} {path} not as the spec says: {errors[:5]}")
                return
        raise AssertionError(f"{method} {path}: no such operation in the spec")


@lru_cache(maxsize=1)
def spec_check() -> SpecCheck | None:
    folder = specs_dir()
    return SpecCheck(folder) if folder else None


def _fout(status: int, title: str, instance: str) -> dict[str, Any]:
    """An error as the ZGW APIs give it (`Fout`, application/problem+json)."""
    return {
        "type": f"https://zgw.test/fouten/{status}",
        "code": "not_found" if status == 404 else "permission_denied",
        "title": title,
        "status": status,
        "detail": title,
        "instance": instance,
    }


def _new(base: str, collection: str) -> tuple[str, str]:
    ident = str(uuid.uuid4())
    return f"{base}/{collection}/{ident}", ident


class FakeZgw:
    """The systems' state (resources by URL), what was asked of them, and failures to give."""

    def __init__(self, *, validate: bool = True) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # method, url, authorization
        self.fail: dict[str, int] = {}  # url -> how many more requests to answer 503
        self.abonnementen: dict[str, dict[str, Any]] = {}
        # Each zaak's audit trail (what the Zaken API records per change); `audit_forbidden`
        # answers 403 to it, as an API whose application may not read it would.
        self.audit: dict[str, list[dict[str, Any]]] = {}
        self.audit_forbidden = False
        self.check = spec_check() if validate else None
        self.validated = 0
        self.catalogus = f"{CATALOGI}/catalogussen/{uuid.uuid4()}"
        self.app = Starlette(
            routes=[Route("/{path:path}", self._serve, methods=["GET", "POST", "PUT", "DELETE"])]
        )

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)

    # --- building the systems' state -------------------------------------------------------

    def zaaktype(
        self,
        identificatie: str,
        omschrijving: str,
        *,
        doorlooptijd: str = "P8W",
        servicenorm: str | None = None,
        opschorting: bool = True,
        verlenging: bool = True,
        verlengingstermijn: str | None = "P8W",
        statustypen: list[tuple[str, bool, bool]] = (),  # type: ignore[assignment]
        resultaattypen: list[tuple[str, str]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        url, _ = _new(CATALOGI, "zaaktypen")
        zaaktype: dict[str, Any] = {
            "url": url,
            "identificatie": identificatie,
            "omschrijving": omschrijving,
            "omschrijvingGeneriek": "",
            "vertrouwelijkheidaanduiding": "openbaar",
            "doel": "Test",
            "aanleiding": "Test",
            "toelichting": "",
            "indicatieInternOfExtern": "extern",
            "handelingInitiator": "aanvragen",
            "onderwerp": omschrijving,
            "handelingBehandelaar": "behandelen",
            "doorlooptijd": doorlooptijd,
            "servicenorm": servicenorm,
            "opschortingEnAanhoudingMogelijk": opschorting,
            "verlengingMogelijk": verlenging,
            "verlengingstermijn": verlengingstermijn if verlenging else None,
            "trefwoorden": [],
            "publicatieIndicatie": False,
            "publicatietekst": "",
            "verantwoordingsrelatie": [],
            "productenOfDiensten": [],
            "referentieproces": {"naam": "test", "link": ""},
            "concept": False,
            "verantwoordelijke": "KCC",
            "beginGeldigheid": "2026-01-01",
            "eindeGeldigheid": None,
            "versiedatum": "2026-01-01",
            "beginObject": "2026-01-01",
            "eindeObject": "2026-01-01",
            "catalogus": self.catalogus,
            "statustypen": [],
            "resultaattypen": [],
            "eigenschappen": [],
            "informatieobjecttypen": [],
            "roltypen": [],
            "besluittypen": [],
            "deelzaaktypen": [],
            "gerelateerdeZaaktypen": [],
            "zaakobjecttypen": [],
        }
        self.resources[url] = zaaktype
        for number, (name, final, inform) in enumerate(statustypen, start=1):
            st_url, _ = _new(CATALOGI, "statustypen")
            self.resources[st_url] = {
                "url": st_url,
                "omschrijving": name,
                "omschrijvingGeneriek": "",
                "statustekst": "",
                "zaaktype": url,
                "zaaktypeIdentificatie": identificatie,
                "volgnummer": number,
                "isEindstatus": final,
                "informeren": inform,
                "doorlooptijd": None,
                "toelichting": None,
                "checklistitemStatustype": [],
                "catalogus": self.catalogus,
                "eigenschappen": [],
                "zaakobjecttypen": [],
                "beginGeldigheid": None,
                "eindeGeldigheid": None,
                "beginObject": "2026-01-01",
                "eindeObject": "2026-01-01",
            }
            zaaktype["statustypen"].append(st_url)
        for name, generiek in resultaattypen:
            rt_url, _ = _new(CATALOGI, "resultaattypen")
            self.resources[rt_url] = {
                "url": rt_url,
                "zaaktype": url,
                "zaaktypeIdentificatie": identificatie,
                "omschrijving": name,
                "resultaattypeomschrijving": "https://selectielijst.test/resultaattypeomschrijvingen/1",
                "omschrijvingGeneriek": generiek,
                "selectielijstklasse": "https://selectielijst.test/resultaten/1",
                "toelichting": "",
                "archiefnominatie": "vernietigen",
                "archiefactietermijn": "P10Y",
                "brondatumArchiefprocedure": None,
                "procesobjectaard": "",
                "indicatieSpecifiek": None,
                "procestermijn": None,
                "catalogus": self.catalogus,
                "besluittypen": [],
                "besluittypeOmschrijving": [],
                "informatieobjecttypen": [],
                "informatieobjecttypeOmschrijving": [],
                "beginGeldigheid": None,
                "eindeGeldigheid": None,
                "beginObject": "2026-01-01",
                "eindeObject": "2026-01-01",
            }
            zaaktype["resultaattypen"].append(rt_url)
        return zaaktype

    def statustype(self, zaaktype: dict[str, Any], omschrijving: str) -> str:
        for url in zaaktype["statustypen"]:
            if self.resources[url]["omschrijving"] == omschrijving:
                return url
        raise KeyError(omschrijving)

    def resultaattype(self, zaaktype: dict[str, Any], omschrijving: str) -> str:
        for url in zaaktype["resultaattypen"]:
            if self.resources[url]["omschrijving"] == omschrijving:
                return url
        raise KeyError(omschrijving)

    def zaak(
        self,
        zaaktype: dict[str, Any],
        *,
        registratiedatum: date,
        kanaal: str = "e-mail",
        bsn: str | None = None,
        email: str | None = None,
        ident: str | None = None,
    ) -> dict[str, Any]:
        """A zaak (with its initiator rol when `bsn` or `email` is given); `ident` fixes its
        uuid (the simulator derives it from its own case id)."""
        url, ident = (f"{ZAKEN}/zaken/{ident}", ident) if ident else _new(ZAKEN, "zaken")
        zaak = {
            "url": url,
            "uuid": ident,
            "identificatie": f"ZAAK-{ident[:8]}",
            "bronorganisatie": "002564440",
            "omschrijving": "",
            "toelichting": "",
            "zaaktype": zaaktype["url"],
            "registratiedatum": registratiedatum.isoformat(),
            "verantwoordelijkeOrganisatie": "002564440",
            "startdatum": registratiedatum.isoformat(),
            "einddatum": None,
            "einddatumGepland": None,
            "uiterlijkeEinddatumAfdoening": None,
            "publicatiedatum": None,
            "laatstGemuteerd": f"{registratiedatum.isoformat()}T09:00:00Z",
            "laatstGeopend": None,
            "communicatiekanaal": "",
            "communicatiekanaalNaam": kanaal,
            "productenOfDiensten": [],
            "vertrouwelijkheidaanduiding": "openbaar",
            "betalingsindicatie": "",
            "betalingsindicatieWeergave": "",
            "laatsteBetaaldatum": None,
            "zaakgeometrie": None,
            "verlenging": None,
            "opschorting": {"indicatie": False, "eerdereOpschorting": False, "reden": ""},
            "selectielijstklasse": "",
            "hoofdzaak": None,
            "deelzaken": [],
            "relevanteAndereZaken": [],
            "eigenschappen": [],
            "rollen": [],
            "status": None,
            "zaakinformatieobjecten": [],
            "zaakobjecten": [],
            "kenmerken": [],
            "archiefnominatie": None,
            "archiefstatus": "nog_te_archiveren",
            "archiefactiedatum": None,
            "resultaat": None,
            "opdrachtgevendeOrganisatie": "002564440",
            "processobjectaard": "",
            "startdatumBewaartermijn": None,
            "processobject": None,
        }
        self.resources[url] = zaak
        self._audit(zaak, "create", datetime.fromisoformat(zaak["laatstGemuteerd"]), None)
        if bsn or email:
            rol_url, rol_id = _new(ZAKEN, "rollen")
            self.resources[rol_url] = {
                "url": rol_url,
                "uuid": rol_id,
                "zaak": url,
                "betrokkene": "",
                "betrokkeneType": "natuurlijk_persoon",
                "afwijkendeNaamBetrokkene": "",
                "roltype": f"{CATALOGI}/roltypen/{uuid.uuid4()}",
                "omschrijving": "Aanvrager",
                "omschrijvingGeneriek": "initiator",
                "roltoelichting": "aanvrager",
                "registratiedatum": f"{registratiedatum.isoformat()}T09:00:00Z",
                "indicatieMachtiging": "",
                "contactpersoonRol": {
                    "emailadres": email or "",
                    "functie": "",
                    "telefoonnummer": "",
                    "naam": "Inwoner",
                },
                "statussen": [],
                "betrokkeneIdentificatie": {
                    "inpBsn": bsn or "",
                    "anpIdentificatie": "",
                    "inpA_nummer": "",
                    "geslachtsnaam": "",
                    "voorvoegselGeslachtsnaam": "",
                    "voorletters": "",
                    "voornamen": "",
                    "geslachtsaanduiding": "",
                    "geboortedatum": "",
                    "verblijfsadres": None,
                    "subVerblijfBuitenland": None,
                },
            }
            zaak["rollen"].append(rol_url)
        return zaak

    def revise(self, zaak: dict[str, Any], at: datetime, **changes: Any) -> None:
        """Change the zaak as a PATCH would (e.g. opschorting, verlenging), recorded in its
        audit trail at `at`."""
        before = deepcopy(zaak)
        zaak.update(changes)
        zaak["laatstGemuteerd"] = at.isoformat()
        self._audit(zaak, "partial_update", at, before)

    def _audit(
        self, zaak: dict[str, Any], actie: str, at: datetime, before: dict[str, Any] | None
    ) -> None:
        self.audit.setdefault(zaak["url"], []).append(
            {
                "uuid": str(uuid.uuid4()),
                "bron": "zrc",
                "applicatieId": "zaaksysteem",
                "applicatieWeergave": "Zaaksysteem",
                "gebruikersId": "medewerker",
                "gebruikersWeergave": "Medewerker",
                "actie": actie,
                "actieWeergave": actie,
                "resultaat": 201 if actie == "create" else 200,
                "hoofdObject": zaak["url"],
                "resource": "zaak",
                "resourceUrl": zaak["url"],
                "toelichting": "",
                "resourceWeergave": zaak["identificatie"],
                "aanmaakdatum": at.isoformat(),
                "wijzigingen": {"oud": before, "nieuw": deepcopy(zaak)},
            }
        )

    def set_status(self, zaak: dict[str, Any], statustype: str, gezet: datetime) -> dict[str, Any]:
        url, ident = _new(ZAKEN, "statussen")
        status = {
            "url": url,
            "uuid": ident,
            "zaak": zaak["url"],
            "statustype": statustype,
            "datumStatusGezet": gezet.isoformat(),
            "statustoelichting": "",
            "indicatieLaatstGezetteStatus": True,
            "gezetdoor": None,
            "zaakinformatieobjecten": [],
        }
        for other in self.resources.values():
            if other.get("zaak") == zaak["url"] and "datumStatusGezet" in other:
                other["indicatieLaatstGezetteStatus"] = False
        self.resources[url] = status
        zaak["status"] = url
        if self.resources[statustype]["isEindstatus"]:
            zaak["einddatum"] = gezet.date().isoformat()
        return status

    def set_resultaat(self, zaak: dict[str, Any], resultaattype: str) -> dict[str, Any]:
        url, ident = _new(ZAKEN, "resultaten")
        self.resources[url] = {
            "url": url,
            "uuid": ident,
            "zaak": zaak["url"],
            "resultaattype": resultaattype,
            "toelichting": "",
        }
        zaak["resultaat"] = url
        return self.resources[url]

    def _digitaal_adres(
        self, adres: str, soort: str, *, consent: bool, by: str, of: dict[str, str]
    ) -> dict[str, Any]:
        """A digitaal adres given by a betrokkene (`by` betrokkene) or a partij; one the
        resident agreed to be asked on carries the referentie `kto`, another one a tag of
        another use (the spec allows no empty referentie: `^[-a-zA-Z0-9_]+$`)."""
        url, ident = _new(KLANTINTERACTIES, "digitaleadressen")
        return {
            "uuid": ident,
            "url": url,
            "verstrektDoorBetrokkene": of if by == "betrokkene" else None,
            "verstrektDoorPartij": of if by == "partij" else None,
            "adres": adres,
            "soortDigitaalAdres": soort,
            "isStandaardAdres": True,
            "omschrijving": soort,
            "referentie": "kto" if consent else "portaalvoorkeur",
            "verificatieDatum": None,
        }

    def partij(
        self,
        *,
        bsn: str,
        email: str | None = None,
        phone: str | None = None,
        consent: bool = True,
        actief: bool = True,
    ) -> dict[str, Any]:
        """A resident as Open Klant knows them (a persoon, identified by BSN in the BRP), with
        the digitale adressen they gave for future contact with the municipality."""
        url, ident = _new(KLANTINTERACTIES, "partijen")
        fk = {"uuid": ident, "url": url}
        adressen = [
            self._digitaal_adres(adres, soort, consent=consent, by="partij", of=fk)
            for adres, soort in ((email, "email"), (phone, "telefoonnummer"))
            if adres
        ]
        i_url, i_id = _new(KLANTINTERACTIES, "partij-identificatoren")
        partij = {
            "uuid": ident,
            "url": url,
            "nummer": "0000000001",
            "interneNotitie": "",
            "betrokkenen": [],
            "categorieRelaties": [],
            "digitaleAdressen": [{"uuid": a["uuid"], "url": a["url"]} for a in adressen],
            "voorkeursDigitaalAdres": (
                {"uuid": adressen[0]["uuid"], "url": adressen[0]["url"]} if adressen else None
            ),
            "vertegenwoordigden": [],
            "rekeningnummers": [],
            "voorkeursRekeningnummer": None,
            "partijIdentificatoren": [
                {
                    "uuid": i_id,
                    "url": i_url,
                    "identificeerdePartij": fk,
                    "anderePartijIdentificator": "",
                    "partijIdentificator": {
                        "codeObjecttype": "natuurlijk_persoon",
                        "codeSoortObjectId": "bsn",
                        "objectId": bsn,
                        "codeRegister": "brp",
                    },
                    "subIdentificatorVan": None,
                }
            ],
            "soortPartij": "persoon",
            "indicatieGeheimhouding": False,
            "voorkeurstaal": "dut",
            "indicatieActief": actief,
            "bezoekadres": None,
            "correspondentieadres": None,
            "partijIdentificatie": {"contactnaam": None, "volledigeNaam": "Inwoner"},
            "_expand": {"digitaleAdressen": adressen},
        }
        self.resources[url] = partij
        return partij

    def klantcontact(
        self,
        *,
        kanaal: str,
        onderwerp: str,
        plaatsgevonden: datetime,
        gelukt: bool | None = True,
        zaak_uuid: str | None = None,
        email: str | None = None,
        consent: bool = True,
        initiator: bool = True,
        partij: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A klantcontact with its klant betrokkene: `email` is an address given in this
        contact; `partij` the resident as Open Klant knows them (their addresses are there)."""
        url, ident = _new(KLANTINTERACTIES, "klantcontacten")
        fk = {"uuid": ident, "url": url}
        onderwerpen = []
        if zaak_uuid:
            o_url, o_id = _new(KLANTINTERACTIES, "onderwerpobjecten")
            onderwerpen.append(
                {
                    "uuid": o_id,
                    "url": o_url,
                    "klantcontact": fk,
                    "wasKlantcontact": None,
                    "onderwerpobjectidentificator": {
                        "objectId": zaak_uuid,
                        "codeObjecttype": "zaak",
                        "codeRegister": "openzaak",
                        "codeSoortObjectId": "uuid",
                    },
                }
            )
        b_url, b_id = _new(KLANTINTERACTIES, "betrokkenen")
        adressen = []
        if email:
            adressen.append(
                self._digitaal_adres(
                    email,
                    "email",
                    consent=consent,
                    by="betrokkene",
                    of={"uuid": b_id, "url": b_url},
                )
            )
        betrokkene = {
            "uuid": b_id,
            "url": b_url,
            "wasPartij": {"uuid": partij["uuid"], "url": partij["url"]} if partij else None,
            "hadKlantcontact": fk,
            "digitaleAdressen": [{"uuid": a["uuid"], "url": a["url"]} for a in adressen],
            "bezoekadres": None,
            "correspondentieadres": None,
            "contactnaam": None,
            "volledigeNaam": "Inwoner",
            "rol": "klant",
            "organisatienaam": "",
            "initiator": initiator,
            "_expand": {"digitaleAdressen": adressen},
        }
        contact = {
            "uuid": ident,
            "url": url,
            "gingOverOnderwerpobjecten": [
                {"uuid": o["uuid"], "url": o["url"]} for o in onderwerpen
            ],
            "hadBetrokkenActoren": [],
            "omvatteBijlagen": [],
            "hadBetrokkenen": [{"uuid": b_id, "url": b_url}],
            "leiddeTotInterneTaken": [],
            "nummer": None,
            "referentienummer": None,
            "kanaal": kanaal,
            "onderwerp": onderwerp,
            "inhoud": "",
            "reactie": "",
            "indicatieContactGelukt": gelukt,
            "hoofdOnderwerpType": "",
            "verdereActieOndernomen": False,
            "taal": "dut",
            "vertrouwelijk": False,
            "plaatsgevondenOp": plaatsgevonden.isoformat(),
            "metadata": {},
            "_expand": {"hadBetrokkenen": [betrokkene], "gingOverOnderwerpobjecten": onderwerpen},
        }
        self.resources[url] = contact
        return contact

    def internetaak(
        self, klantcontact: dict[str, Any], *, handeling: str, toegewezen: datetime
    ) -> dict[str, Any]:
        url, ident = _new(KLANTINTERACTIES, "internetaken")
        actor_url, actor_id = _new(KLANTINTERACTIES, "actoren")
        actor = {"uuid": actor_id, "url": actor_url}
        taak = {
            "uuid": ident,
            "url": url,
            "nummer": None,
            "referentienummer": None,
            "gevraagdeHandeling": handeling,
            "aanleidinggevendKlantcontact": {
                "uuid": klantcontact["uuid"],
                "url": klantcontact["url"],
            },
            "toegewezenAanActor": actor,
            "toegewezenAanActoren": [actor],
            "toelichting": "",
            "status": "te_verwerken",
            "toegewezenOp": toegewezen.isoformat(),
            "afgehandeldOp": None,
        }
        self.resources[url] = taak
        klantcontact["leiddeTotInterneTaken"].append({"uuid": ident, "url": url})
        return taak

    # --- serving ---------------------------------------------------------------------------

    def _authorized(self, base: str, header: str | None) -> bool:
        if header is None:
            return False
        if base == KLANTINTERACTIES:
            return header == f"Token {KLANT_TOKEN}"
        scheme, _, token = header.partition(" ")
        secret = NRC_SECRET if base == NOTIFICATIES else JWT_SECRET
        try:
            claims = jwt.decode(token, secret, algorithms=["HS256"])
        except jwt.PyJWTError:
            return False
        return scheme == "Bearer" and claims.get("client_id") == "servicepuls"

    async def _serve(self, request: Request) -> Response:
        url = str(request.url).split("?")[0].rstrip("/")
        base = next((b for b in SPEC_FILES if url.startswith(b + "/") or url == b), None)
        authorization = request.headers.get("authorization")
        self.requests.append((request.method, str(request.url), authorization))
        if base is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        if not self._authorized(base, authorization):
            return JSONResponse({"detail": "Niet geautoriseerd"}, status_code=403)
        if self.fail.get(url, 0) > 0:
            self.fail[url] -= 1
            return JSONResponse({"detail": "tijdelijk niet beschikbaar"}, status_code=503)
        path = url[len(base) :]
        if self.check is not None and request.method in ("POST", "PUT"):
            self.check.validate_request(base, path, request.method, await request.json())
        status, body = await self._answer(request, base, url, path)
        if self.check is not None and body is not None:
            self.check.validate(base, path, request.method, status, body)
            self.validated += 1
        if body is None:
            return Response(status_code=status)
        media = "application/json" if status < 400 else "application/problem+json"
        return JSONResponse(body, status_code=status, media_type=media)

    async def _answer(self, request: Request, base: str, url: str, path: str) -> tuple[int, Any]:
        query = request.query_params
        if base == NOTIFICATIES:
            return await self._abonnement(request, url, path)
        if path in ("/statussen", "/rollen"):
            found = [
                r
                for r in self.resources.values()
                if r.get("zaak") == query.get("zaak")
                and ("datumStatusGezet" in r if path == "/statussen" else "roltype" in r)
                and (
                    "omschrijvingGeneriek" not in query
                    or r.get("omschrijvingGeneriek") == query["omschrijvingGeneriek"]
                )
            ]
            return 200, {"count": len(found), "next": None, "previous": None, "results": found}
        if path == "/zaaktypen":
            found = [
                r
                for r in self.resources.values()
                if r["url"].startswith(f"{CATALOGI}/zaaktypen/")
                and query.get("identificatie", r["identificatie"]) == r["identificatie"]
            ]
            return 200, {"count": len(found), "next": None, "previous": None, "results": found}
        if path == "/partijen":
            found = [
                self._shown_partij(r, query)
                for r in self.resources.values()
                if r["url"].startswith(f"{KLANTINTERACTIES}/partijen/")
                and any(
                    i["partijIdentificator"]["objectId"]
                    == query.get("partijIdentificator__objectId")
                    and i["partijIdentificator"]["codeSoortObjectId"]
                    == query.get("partijIdentificator__codeSoortObjectId", "bsn")
                    for i in r["partijIdentificatoren"]
                )
            ]
            return 200, {"count": len(found), "next": None, "previous": None, "results": found}
        if path.endswith("/audittrail"):
            if self.audit_forbidden:
                return 403, _fout(403, "Niet geautoriseerd voor de audittrail.", url)
            return 200, self.audit.get(url.removesuffix("/audittrail"), [])
        resource = self.resources.get(url)
        if resource is None:
            return 404, _fout(404, "Niet gevonden.", url)
        if "/partijen/" in path:
            return 200, self._shown_partij(resource, query)
        resource = deepcopy(resource)
        if "/klantcontacten/" in path:
            wanted = set(query.get("expand", "").split(","))
            expand = resource.pop("_expand")
            shown: dict[str, Any] = {}
            if "hadBetrokkenen" in wanted:
                shown["hadBetrokkenen"] = expand["hadBetrokkenen"]
                if "hadBetrokkenen.digitaleAdressen" not in wanted:
                    for betrokkene in shown["hadBetrokkenen"]:
                        betrokkene.pop("_expand", None)
            if "gingOverOnderwerpobjecten" in wanted:
                shown["gingOverOnderwerpobjecten"] = expand["gingOverOnderwerpobjecten"]
            if shown:
                resource["_expand"] = shown
        return 200, resource

    @staticmethod
    def _shown_partij(partij: dict[str, Any], query: Any) -> dict[str, Any]:
        """A partij as the API shows it: its addresses in full only when asked to expand."""
        shown = deepcopy(partij)
        expand = shown.pop("_expand")
        if "digitaleAdressen" in set(query.get("expand", "").split(",")):
            shown["_expand"] = expand
        return shown

    async def _abonnement(self, request: Request, url: str, path: str) -> tuple[int, Any]:
        if path == "/abonnement" and request.method == "GET":
            return 200, list(self.abonnementen.values())
        if path == "/abonnement" and request.method == "POST":
            body = await request.json()
            new_url, _ = _new(NOTIFICATIES, "abonnement")
            self.abonnementen[new_url] = {"url": new_url, **body}
            return 201, self.abonnementen[new_url]
        if url in self.abonnementen and request.method == "PUT":
            self.abonnementen[url] = {"url": url, **(await request.json())}
            return 200, self.abonnementen[url]
        if url in self.abonnementen and request.method == "DELETE":
            del self.abonnementen[url]
            return 204, None
        return 404, {"detail": "Niet gevonden."}


def notification(
    kanaal: str,
    hoofd_object: str,
    resource: str,
    resource_url: str,
    actie: str,
    at: datetime,
    **kenmerken: str,
) -> dict[str, Any]:
    """A message as Open Notificaties delivers it to a callback."""
    return {
        "kanaal": kanaal,
        "hoofdObject": hoofd_object,
        "resource": resource,
        "resourceUrl": resource_url,
        "actie": actie,
        "aanmaakdatum": at.isoformat(),
        "kenmerken": kenmerken,
    }
