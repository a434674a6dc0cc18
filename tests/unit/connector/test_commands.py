"""The operator's commands against the fake Notificaties and Catalogi APIs: the abonnement
registered, renewed and removed; zaaktypen seeded into the mapping; norms from a zaaktype
written into a norm file that the norms service still accepts."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import yaml

from services.common.config import ConfigError, load_case_types, load_municipalities
from services.connector.entrypoints.cli import run
from services.connector.settings import ConnectorSettings
from services.norms.config import load_catalogs
from tests.support.zgw import CATALOGI, JWT_SECRET, NOTIFICATIES, NRC_SECRET, ZAKEN, FakeZgw

REPO = Path(__file__).resolve().parents[3]
CALLBACK_AUTH = "Bearer test-callback"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "config"
    shutil.copytree(REPO / "deploy" / "config", folder)
    auth = {"kind": "jwt", "client_id": "servicepuls", "secret_env": "TEST_OZ"}
    source = {
        "municipality": "GM0383",
        "source": "/buch/open-zaak",
        "callback_url": "https://servicepuls.example/v1/notificaties/GM0383",
        "callback_auth_env": "TEST_CALLBACK",
        "callback_auth_sha256": hashlib.sha256(CALLBACK_AUTH.encode()).hexdigest(),
        "mapping": "GM0383",
        "zaken": {"base_url": ZAKEN, "auth": auth},
        "catalogi": {"base_url": CATALOGI, "auth": auth},
        "notificaties": {"base_url": NOTIFICATIES, "auth": {**auth, "secret_env": "TEST_NRC"}},
    }
    (folder / "connector" / "sources.yaml").write_text(yaml.safe_dump({"sources": [source]}))
    monkeypatch.setenv("TEST_OZ", JWT_SECRET)
    monkeypatch.setenv("TEST_NRC", NRC_SECRET)
    monkeypatch.setenv("TEST_CALLBACK", CALLBACK_AUTH)
    monkeypatch.setenv("SERVICEPULS_CONFIG_DIR", str(folder))
    return folder


def test_subscribe_registers_then_renews_and_unsubscribe_removes(config: Path) -> None:
    fake = FakeZgw()
    settings = ConnectorSettings()
    said = run(
        ["subscribe", "GM0383", "--filter", "zaken:bronorganisatie=002564440"],
        settings,
        transport=fake.transport(),
    )
    assert said.startswith("abonnement registered")
    [abonnement] = fake.abonnementen.values()
    assert abonnement["auth"] == CALLBACK_AUTH
    assert abonnement["callbackUrl"] == "https://servicepuls.example/v1/notificaties/GM0383"
    assert {k["naam"]: k["filters"] for k in abonnement["kanalen"]} == {
        "zaken": {"bronorganisatie": "002564440"},
        "klantcontacten": {},
        "internetaken": {},
    }
    assert run(["subscribe", "GM0383"], settings, transport=fake.transport()).startswith(
        "abonnement renewed"
    )
    assert len(fake.abonnementen) == 1
    assert "removed 1" in run(["unsubscribe", "GM0383"], settings, transport=fake.transport())
    assert fake.abonnementen == {}


def test_subscribe_refuses_an_authorization_the_callback_would_refuse(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_CALLBACK", "Bearer something-else")
    with pytest.raises(ConfigError, match="does not match"):
        run(["subscribe", "GM0383"], ConnectorSettings(), transport=FakeZgw().transport())


def test_seed_mapping_adds_unknown_zaaktypen_for_review_and_keeps_the_comments(
    config: Path,
) -> None:
    fake = FakeZgw()
    fake.zaaktype("ZT-KLACHT", "Klacht behandelen")
    fake.zaaktype("ZT-HOND", "Hondenbelasting bezwaar")
    path = config / "connector" / "mappings" / "GM0383.yaml"
    said = run(["seed-mapping", "GM0383"], ConnectorSettings(), transport=fake.transport())
    assert "1 zaaktype(n) added" in said and "ZT-HOND" in said
    text = path.read_text()
    assert "# zaaktype identificatie (Catalogi API)" in text
    mapping = yaml.safe_load(text)
    assert mapping["zaaktypen"]["ZT-HOND"]["case_type"] == "hondenbelasting-bezwaar"
    assert mapping["zaaktypen"]["ZT-KLACHT"]["case_type"] == "klacht"  # untouched
    assert "0 zaaktype(n)" in run(
        ["seed-mapping", "GM0383"], ConnectorSettings(), transport=fake.transport()
    )


def test_norms_from_a_zaaktype_land_in_the_norm_file_and_norms_accepts_it(config: Path) -> None:
    fake = FakeZgw()
    fake.zaaktype(
        "ZT-OMGEVINGSVERGUNNING",
        "Omgevingsvergunning",
        doorlooptijd="P8W",
        servicenorm="P6W",
        verlengingstermijn="P6W",
    )
    norm_file = config / "norms" / "default.yaml"
    said = run(
        ["norms", "GM0383", "ZT-OMGEVINGSVERGUNNING"],
        ConnectorSettings(),
        transport=fake.transport(),
    )
    assert "omgevingsvergunning_doorlooptijd" in said
    assert "omgevingsvergunning_servicenorm" in said
    catalog = yaml.safe_load(norm_file.read_text())
    written = {n["id"]: n for n in catalog["norms"]}
    legal = written["omgevingsvergunning_doorlooptijd"]
    assert legal["target"] == {"amount": 8.0, "unit": "weeks"} and legal["legal_term"]
    assert legal["pause"] == [{"type": "case.suspended"}]
    assert legal["max_extension"] == {"amount": 6.0, "unit": "weeks"}
    assert "REVIEW before use" in norm_file.read_text()
    load_catalogs(config)  # the norms service would start with it
    again = run(
        ["norms", "GM0383", "ZT-OMGEVINGSVERGUNNING"],
        ConnectorSettings(),
        transport=fake.transport(),
    )
    assert "nothing written" in again


def test_seed_case_types_declares_the_mappings_case_types_for_the_metrics(config: Path) -> None:
    fake = FakeZgw()
    fake.zaaktype("ZT-HOND", "Hondenbelasting bezwaar")
    run(["seed-mapping", "GM0383"], ConnectorSettings(), transport=fake.transport())
    path = config / "case_types" / "default.yaml"
    said = run(["seed-case-types", "GM0383"], ConnectorSettings())
    assert "1 case type(s) declared" in said and "hondenbelasting-bezwaar" in said
    text = path.read_text()
    assert text.startswith("# The case types")  # the comments stay
    assert yaml.safe_load(text)["case_types"]["hondenbelasting-bezwaar"] == (
        "Hondenbelasting bezwaar"
    )
    declared = load_case_types(config, load_municipalities(config))
    assert "hondenbelasting-bezwaar" in declared["GM0383"]
    assert "0 case type(s)" in run(["seed-case-types", "GM0383"], ConnectorSettings())
