"""A share of the case system's zaken the way a municipality running Open Zaak sends them:
through the Notificaties API to the connector, instead of posted to intake.

The simulator plays Open Zaak and Open Klant (the fake ZGW APIs of tests/support/zgw.py, the
same ones the connector's tests check against the specifications) and Open Notificaties: each
case event of a routed zaak becomes a change in the fake (a zaak created, a status set, an
opschorting begun or ended, a verlenging, a resultaat) and the notification Open Zaak would
send, posted to the connector's callback. The connector (its real code: callback, queue in
PostgreSQL, workers, intake's admission) runs in this process on the fake's transport and
writes to the real intake topic, so norms, feedback and metrics see these cases as they would
see a real municipality's.

What changes on the way is what the Zaken API changes: a zaak is opened on its registration
day (the API keeps a date), its case id is the zaak's uuid (a UUID 5 of the simulated case id),
and the resident's consent comes from their partij in Open Klant.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import httpx
import yaml

from services.common.config import load_yaml_model
from services.common.settings import InfraSettings
from services.connector.bootstrap import bootstrap, configure, shutdown
from services.connector.domain.mapping import Mapping
from services.connector.entrypoints.callback import create_app
from services.connector.settings import ConnectorSettings
from simulator.generator import CASE_SYSTEM, SimEvent
from simulator.ledger import Ledger
from simulator.office_hours import AMSTERDAM

PREFIX = "nl.servicepuls."
CALLBACK_AUTH = "Bearer simulator-open-notificaties"
# The mapping every simulated municipality's Open Zaak is read with (Castricum's, in deploy/).
MAPPING = "GM0383"
# Statustypen of every simulated zaaktype: (omschrijving, isEindstatus, informeren).
STATUSTYPEN = [
    ("Ontvangen", False, False),
    ("Reactie verstuurd", False, True),  # the first reaction: the connector's case.responded
    ("In behandeling", False, False),
    ("Ingepland", False, False),
    ("Besluitvorming", False, False),
    ("Afgehandeld", True, False),
]
# The simulator's statuses (case.status_changed) as statustype omschrijvingen.
STATUSES = {
    "ontvangen": "Ontvangen",
    "in_behandeling": "In behandeling",
    "ingepland": "Ingepland",
    "besluitvorming": "Besluitvorming",
}
# Outcomes (and complaint verdicts) as the resultaattype omschrijving Open Zaak records, with
# the omschrijvingGeneriek of the selectielijst; the mapping reads them back.
RESULTAATTYPEN = {
    "granted": ("Verleend", "toegekend"),
    "partially_granted": ("Deels toegekend", "toegekend"),
    "rejected": ("Afgewezen", "afgewezen"),
    "withdrawn": ("Ingetrokken", "ingetrokken"),
    "cancelled": ("Buiten behandeling gesteld", "afgebroken"),
    "resolved": ("Afgehandeld", "afgehandeld"),
    "gegrond": ("Gegrond", "afgehandeld"),
    "deels_gegrond": ("Deels gegrond", "afgehandeld"),
    "ongegrond": ("Ongegrond", "afgehandeld"),
    "niet_ontvankelijk": ("Niet-ontvankelijk", "afgehandeld"),
    "informeel_afgehandeld": ("Informeel afgehandeld", "afgehandeld"),
}
OPSCHORTING_REDEN = {
    "awaiting_information": "Aanvulling gevraagd",
    "awaiting_advice": "Advies gevraagd",
    "awaiting_payment": "Wacht op betaling leges",
    "by_agreement": "Met instemming van de aanvrager",
}


def routed(case_id: str, share: float) -> bool:
    """Whether a case goes through the connector: a stable choice per case id, so the same
    seed and run id route the same zaken."""
    digest = hashlib.sha256(case_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


@dataclass(slots=True)
class RouteStats:
    zaken: int = 0
    notifications: int = 0
    refused: int = 0  # notifications the callback did not take (should stay 0)
    by_type: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Zaak:
    resource: dict[str, Any]
    zaaktype: dict[str, Any]
    weeks_extended: float = 0.0


class OpenZaakRoute:
    """Open Zaak, Open Klant and Open Notificaties for the routed zaken, and the connector."""

    def __init__(self, share: float, municipalities: Iterable[str], config_dir: Path,
                 run_tag: str, *, ledger: Ledger | None = None) -> None:  # fmt: skip
        if not 0 < share <= 1:
            raise ValueError("--via-connector takes a share of the zaken: more than 0, at most 1")
        # The fake lives with the tests (a checkout has it); imported only when asked for.
        self.zgw: ModuleType = importlib.import_module("tests.support.zgw")
        self.share = share
        self.municipalities = sorted(municipalities)
        self.fake = self.zgw.FakeZgw(validate=False)
        self.mapping = load_yaml_model(
            config_dir / "connector" / "mappings" / f"{MAPPING}.yaml", Mapping
        )
        # The connector's configuration and its schema are this run's (a run that was killed
        # leaves no queue behind for the next one to work off against another fake).
        self._workspace = tempfile.TemporaryDirectory(prefix="servicepuls-sim-connector-")
        self.config_dir = self._config(config_dir, Path(self._workspace.name))
        self.db_schema = f"connector_sim_{run_tag}"
        self.zaaktypen: dict[str, dict[str, Any]] = {}
        self.zaken: dict[str, _Zaak] = {}  # by the simulator's case id
        self._routed: set[str] = set()  # the simulator's case ids taken this way
        self.case_ids: set[str] = set()  # their case ids in Servicepuls (the zaken's uuids)
        self.stats = RouteStats()
        self.ledger = ledger
        self._app: Any = None
        self._lifespan: Any = None
        self._http: httpx.AsyncClient | None = None

    # --- the connector, in this process -----------------------------------------------------

    def _config(self, config_dir: Path, workspace: Path) -> Path:
        """A configuration directory for the connector: the project's, with one source per
        simulated municipality whose APIs are the fake's."""
        zgw = self.zgw
        target = workspace / "config"
        shutil.copytree(config_dir, target)
        jwt_auth = {"kind": "jwt", "client_id": "servicepuls", "secret_env": _env("OZ_SECRET")}
        sources = [
            {
                "municipality": code,
                "source": "/buch/open-zaak",
                "callback_url": f"http://simulator.invalid/v1/notificaties/{code}",
                "callback_auth_env": _env("CALLBACK_AUTH"),
                "callback_auth_sha256": hashlib.sha256(CALLBACK_AUTH.encode()).hexdigest(),
                "mapping": MAPPING,
                "zaken": {"base_url": zgw.ZAKEN, "auth": jwt_auth},
                "catalogi": {"base_url": zgw.CATALOGI, "auth": jwt_auth},
                "klantinteracties": {
                    "base_url": zgw.KLANTINTERACTIES,
                    "auth": {"kind": "token", "token_env": _env("OK_TOKEN")},
                },
                "notificaties": {
                    "base_url": zgw.NOTIFICATIES,
                    "auth": {**jwt_auth, "secret_env": _env("NRC_SECRET")},
                },
            }
            for code in self.municipalities
        ]
        (target / "connector" / "sources.yaml").write_text(
            yaml.safe_dump({"sources": sources}, sort_keys=False)
        )
        return target

    async def start(self) -> None:
        # The fake's credentials, where the configuration says the connector finds them.
        os.environ.update(
            {
                _env("OZ_SECRET"): self.zgw.JWT_SECRET,
                _env("OK_TOKEN"): self.zgw.KLANT_TOKEN,
                _env("NRC_SECRET"): self.zgw.NRC_SECRET,
                _env("CALLBACK_AUTH"): CALLBACK_AUTH,
            }
        )
        settings = ConnectorSettings(
            db_schema=self.db_schema, infra=InfraSettings(config_dir=self.config_dir)
        )
        configuration = configure(settings)
        transport = self.fake.transport()
        self._app = create_app(
            lambda: bootstrap(settings, configuration, transport=transport), shutdown
        )
        self._lifespan = self._app.router.lifespan_context(self._app)
        await self._lifespan.__aenter__()
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self._app), base_url="http://connector"
        )

    async def settle(self, timeout: float = 60) -> int:
        """Wait until the connector has worked off what it was sent; how many are left."""
        connector = self._app.state.connector
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            pending = (await connector.store.backlog()).get("pending", 0)
            if pending == 0 or asyncio.get_running_loop().time() > deadline:
                return int(pending)
            await asyncio.sleep(0.2)

    async def summary(self) -> dict[str, Any]:
        """What went this way, and how the connector's queue ended."""
        backlog = await self._app.state.connector.store.backlog() if self._app else {}
        return {
            "share": self.share,
            "zaken": self.stats.zaken,
            "events": dict(self.stats.by_type),
            "notifications": self.stats.notifications,
            "refused": self.stats.refused,
            "pending": int(backlog.get("pending", 0)),
            "dead_letters": int(backlog.get("dead", 0)),
        }

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._lifespan is not None:
            await self._lifespan.__aexit__(None, None, None)
            # The queue and zaak states were this run's, as was the fake they refer to.
            conn = await asyncpg.connect(InfraSettings().database_url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{self.db_schema}" CASCADE')
            finally:
                await conn.close()
        self._workspace.cleanup()

    # --- which events go this way -----------------------------------------------------------

    def takes(self, event: SimEvent) -> bool:
        """Whether this event goes this way: a case event of a zaak routed here. Whether a
        zaak is, is decided when it opens (a case of the case system, a case type the mapping
        has a zaaktype for, and the share) and remembered for its later events."""
        if not event.type.startswith(PREFIX + "case."):
            return False
        case_id = str(event.data.get("case_id", ""))
        if case_id in self._routed:
            return True
        if (
            event.type == PREFIX + "case.opened.v1"
            and event.source.rstrip("/").endswith("/" + CASE_SYSTEM)
            and event.municipality in self.municipalities
            and self._identificatie(str(event.data.get("case_type"))) is not None
            and routed(case_id, self.share)
        ):
            self._routed.add(case_id)
            return True
        return False

    def has(self, event: SimEvent) -> bool:
        """Whether `takes` took this event's zaak (no new decision)."""
        return (
            event.type.startswith(PREFIX + "case.")
            and str(event.data.get("case_id", "")) in self._routed
        )

    def _identificatie(self, case_type: str) -> str | None:
        for identificatie, entry in self.mapping.zaaktypen.items():
            if entry.case_type == case_type:
                return identificatie
        return None

    # --- playing Open Zaak --------------------------------------------------------------------

    async def post(self, events: list[SimEvent]) -> None:
        if self.ledger is not None and events:
            self.ledger.via_connector(events)
        for event in events:
            for message in self._change(event, event.data.get("resident")):
                await self._notify(event.municipality, message)
            short = event.type.removeprefix(PREFIX).removesuffix(".v1")
            self.stats.by_type[short] = self.stats.by_type.get(short, 0) + 1

    def _change(self, event: SimEvent, resident: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The change in Open Zaak (and Open Klant) a case event stands for, and the
        notifications Open Notificaties sends for it."""
        data = event.data
        case_id = str(data["case_id"])
        kind = event.type.removeprefix(PREFIX + "case.").removesuffix(".v1")
        at = event.at
        if kind == "opened":
            zaak = self._open(event, resident)
            return [self._message(zaak, "zaak", zaak.resource["url"], "create", at)]
        zaak = self.zaken[case_id]
        fake, resource = self.fake, zaak.resource
        if kind == "responded":
            return self._status(zaak, "Reactie verstuurd", at)
        if kind == "status_changed":
            return self._status(zaak, STATUSES.get(str(data["status"]), "In behandeling"), at)
        if kind == "reopened":
            return self._status(zaak, "In behandeling", at)
        if kind == "suspended":
            reden = OPSCHORTING_REDEN.get(str(data.get("reason")), "Aanvulling gevraagd")
            opschorting = {"indicatie": True, "eerdereOpschorting": False, "reden": reden}
            fake.revise(resource, at, opschorting=opschorting)
        elif kind == "resumed":
            opschorting = {"indicatie": False, "eerdereOpschorting": True, "reden": ""}
            fake.revise(resource, at, opschorting=opschorting)
        elif kind == "extended":
            extension = data.get("extension") or {}
            zaak.weeks_extended += _weeks(extension)
            # The Zaken API keeps the total; whole weeks as weeks (days would be read as
            # working days, the Zaken API's "werkbare dagen").
            weeks = zaak.weeks_extended
            duur = f"P{round(weeks)}W" if weeks == round(weeks) else f"P{round(weeks * 7)}D"
            fake.revise(resource, at, verlenging={"reden": "Complexe zaak", "duur": duur})
        elif kind == "closed":
            verdict = data.get("complaint_verdict")
            naam, _ = RESULTAATTYPEN.get(
                str(verdict or data["outcome"]), RESULTAATTYPEN["resolved"]
            )
            resultaat = fake.set_resultaat(resource, fake.resultaattype(zaak.zaaktype, naam))
            return [
                self._message(zaak, "resultaat", resultaat["url"], "create", at),
                *self._status(zaak, "Afgehandeld", at),
            ]
        else:
            return []
        return [self._message(zaak, "zaak", resource["url"], "partial_update", at)]

    def _open(self, event: SimEvent, resident: dict[str, Any] | None) -> _Zaak:
        data = event.data
        case_type = str(data["case_type"])
        zaaktype = self.zaaktypen.get(case_type)
        if zaaktype is None:
            identificatie = self._identificatie(case_type)
            assert identificatie is not None  # takes() checked it
            zaaktype = self.fake.zaaktype(
                identificatie,
                case_type,
                statustypen=STATUSTYPEN,
                resultaattypen=list(RESULTAATTYPEN.values()),
            )
            self.zaaktypen[case_type] = zaaktype
        bsn = str(resident["bsn"]) if resident and resident.get("bsn") else None
        email = str(resident["email"]) if resident and resident.get("email") else None
        if bsn and email:
            # Open Klant knows the resident; the address is tagged kto where they agreed.
            self.fake.partij(bsn=bsn, email=email, consent=resident.get("survey_consent") is True)
        resource = self.fake.zaak(
            zaaktype,
            registratiedatum=event.at.astimezone(AMSTERDAM).date(),
            kanaal=_kanaal(self.mapping, str(data.get("channel", ""))),
            bsn=bsn,
            email=email,
            ident=str(uuid.uuid5(uuid.NAMESPACE_URL, f"servicepuls-simulator:{data['case_id']}")),
        )
        zaak = _Zaak(resource, zaaktype)
        self.zaken[str(data["case_id"])] = zaak
        self.case_ids.add(str(resource["uuid"]))
        self.stats.zaken += 1
        return zaak

    def _status(self, zaak: _Zaak, omschrijving: str, at: datetime) -> list[dict[str, Any]]:
        status = self.fake.set_status(
            zaak.resource, self.fake.statustype(zaak.zaaktype, omschrijving), at
        )
        return [self._message(zaak, "status", status["url"], "create", at)]

    def _message(
        self, zaak: _Zaak, resource: str, url: str, actie: str, at: datetime
    ) -> dict[str, Any]:
        return self.zgw.notification(
            "zaken",
            zaak.resource["url"],
            resource,
            url,
            actie,
            at,
            bronorganisatie=str(zaak.resource["bronorganisatie"]),
            zaaktype=str(zaak.zaaktype["url"]),
            vertrouwelijkheidaanduiding="openbaar",
        )

    async def _notify(self, municipality: str, message: dict[str, Any]) -> None:
        assert self._http is not None, "start() first"
        response = await self._http.post(
            f"/v1/notificaties/{municipality}",
            json=message,
            headers={"Authorization": CALLBACK_AUTH},
        )
        self.stats.notifications += 1
        if response.status_code != 204:
            self.stats.refused += 1
            self.stats.problems.append(f"callback answered {response.status_code}")


def _env(name: str) -> str:
    return f"SERVICEPULS_SIM_CONNECTOR_{name}"


def _weeks(extension: dict[str, Any]) -> float:
    amount = float(extension.get("amount", 0))
    unit = extension.get("unit", "weeks")
    return amount if unit == "weeks" else amount / 7


def _kanaal(mapping: Mapping, channel: str) -> str:
    """The communicatiekanaalNaam the mapping reads back as `channel`."""
    for naam, mapped in mapping.communicatiekanalen.items():
        if mapped.value == channel:
            return naam
    return ""
