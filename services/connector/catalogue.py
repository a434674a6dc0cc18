"""Working with the Notificaties and Catalogi APIs on an operator's behalf: the abonnement
(register, renew, remove), the zaaktypen of the mapping, and norms from a zaaktype's terms.
Files are changed by appending reviewed-looking text, so their comments stay as they were."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.common.config import CaseTypeFile, ConfigError, load_yaml_model
from services.connector.adapters.apis import ApiClient
from services.connector.config import Source, callback_digest, secret
from services.connector.domain.catalogue_norms import norms_for
from services.connector.domain.mapping import Mapping
from services.connector.domain.resources import ZaakType
from services.norms.domain.catalog import NormFile

KANALEN = ("zaken", "klantcontacten", "internetaken")


@dataclass(frozen=True)
class Subscribed:
    action: str  # registered | renewed
    url: str


def _notificaties(source: Source) -> str:
    if source.notificaties is None:
        raise ConfigError(f"{source.municipality}: no notificaties API in sources.yaml")
    return source.notificaties.base_url.rstrip("/")


async def _ours(api: ApiClient, source: Source) -> list[dict[str, Any]]:
    listed = await api.get(source, f"{_notificaties(source)}/abonnement")
    found = listed.get("results", []) if isinstance(listed, dict) else listed
    return [a for a in found if a.get("callbackUrl") == source.callback_url]


async def subscribe(
    api: ApiClient,
    source: Source,
    *,
    kanalen: tuple[str, ...] = KANALEN,
    filters: dict[str, dict[str, str]] | None = None,
) -> Subscribed:
    """Register the abonnement of a municipality, or renew it (same callbackUrl): the
    Authorization it is registered with is the one the callback checks."""
    auth = secret(source.callback_auth_env)
    if callback_digest(auth) != source.callback_auth_sha256:
        raise ConfigError(
            f"{source.callback_auth_env} does not match callback_auth_sha256 of "
            f"{source.municipality}: the callback would refuse every notification"
        )
    body = {
        "callbackUrl": source.callback_url,
        "auth": auth,
        "kanalen": [
            {"naam": kanaal, "filters": (filters or {}).get(kanaal, {})} for kanaal in kanalen
        ],
    }
    existing = await _ours(api, source)
    if existing:
        renewed = await api.request(source, "PUT", existing[0]["url"], json=body)
        for extra in existing[1:]:  # one abonnement per callback: no notification twice
            await api.request(source, "DELETE", extra["url"])
        return Subscribed("renewed", renewed["url"])
    created = await api.request(source, "POST", f"{_notificaties(source)}/abonnement", json=body)
    return Subscribed("registered", created["url"])


async def unsubscribe(api: ApiClient, source: Source) -> list[str]:
    removed = []
    for abonnement in await _ours(api, source):
        await api.request(source, "DELETE", abonnement["url"])
        removed.append(abonnement["url"])
    return removed


async def zaaktypen(
    api: ApiClient, source: Source, identificatie: str | None = None
) -> list[ZaakType]:
    if source.catalogi is None:
        raise ConfigError(f"{source.municipality}: no catalogi API in sources.yaml")
    params = {"status": "definitief"}
    if identificatie:
        params["identificatie"] = identificatie
    found = await api.all_pages(
        source, f"{source.catalogi.base_url.rstrip('/')}/zaaktypen", params=params
    )
    return [ZaakType.model_validate(z) for z in found]


def case_type_of(zaaktype: ZaakType) -> str:
    """A proposed case type for a zaaktype: its omschrijving as a code."""
    slug = re.sub(r"[^a-z0-9]+", "-", zaaktype.omschrijving.lower()).strip("-")[:64].strip("-")
    return slug or re.sub(r"[^a-z0-9]+", "-", zaaktype.identificatie.lower()).strip("-") or "zaak"


def seed_mapping(path: Path, found: list[ZaakType]) -> list[str]:
    """Add the zaaktypen the mapping does not name yet, each with a proposed case type, under
    `zaaktypen:` (marked for review). Returns the identificaties added."""
    mapping = load_yaml_model(path, Mapping)
    text = path.read_text(encoding="utf-8")
    new = {}
    for zaaktype in found:
        if zaaktype.identificatie and zaaktype.identificatie not in mapping.zaaktypen:
            new[zaaktype.identificatie] = zaaktype
    if not new:
        return []
    lines = "".join(
        f"  {ident}: {{case_type: {case_type_of(z)}, omschrijving: {yaml.safe_dump(z.omschrijving, default_style=chr(34)).strip()}}}"
        "  # from the Catalogi API: review\n"
        for ident, z in sorted(new.items())
    )
    if re.search(r"^zaaktypen:\s*\{\}\s*$", text, flags=re.M):
        text = re.sub(r"^zaaktypen:\s*\{\}\s*$", "zaaktypen:", text, flags=re.M)
    if not re.search(r"^zaaktypen:\s*$", text, flags=re.M):
        text = text.rstrip("\n") + "\nzaaktypen:\n"
    text = re.sub(r"^(zaaktypen:\s*\n)", lambda m: m.group(1) + lines, text, count=1, flags=re.M)
    _write_checked(path, text, Mapping)
    return sorted(new)


def seed_case_types(path: Path, mapping: Mapping) -> list[str]:
    """Declare in a case-type file (deploy/config/case_types/) the case types the connector's
    mapping admits that it does not declare yet, so metrics count them by name rather than as
    `other`; marked for review. Returns the codes added."""
    declared = load_yaml_model(path, CaseTypeFile).case_types
    names: dict[str, str] = {}
    for entry in mapping.zaaktypen.values():
        if entry.case_type not in declared:
            names.setdefault(entry.case_type, entry.omschrijving or entry.case_type)
    if mapping.default_case_type and mapping.default_case_type not in declared:
        names.setdefault(mapping.default_case_type, mapping.default_case_type)
    if not names:
        return []
    text = path.read_text(encoding="utf-8").rstrip("\n") + "\n"
    text += "".join(
        f"  {code}: {yaml.safe_dump(name, default_style=chr(34)).strip()}"
        "  # from the connector's zaaktype mapping: review\n"
        for code, name in sorted(names.items())
    )
    _write_checked(path, text, CaseTypeFile)
    return sorted(names)


def write_norms(path: Path, zaaktype: ZaakType, case_type: str) -> list[str]:
    """Append the norms the zaaktype's terms ask for to a norm file (those whose id it does
    not have yet), marked for review. Returns the ids added."""
    current = load_yaml_model(path, NormFile)
    have = {norm.id for norm in current.norms}
    norms = [n for n in norms_for(zaaktype, case_type) if n["id"] not in have]
    if not norms:
        return []
    text = path.read_text(encoding="utf-8").rstrip("\n") + "\n\n"
    text += (
        f"  # From the Catalogi API: zaaktype {zaaktype.identificatie or zaaktype.url} "
        f"(doorlooptijd {zaaktype.doorlooptijd}"
        + (f", servicenorm {zaaktype.servicenorm}" if zaaktype.servicenorm else "")
        + "). REVIEW before use: goal, warnings, and bump `version`.\n"
    )
    block = yaml.safe_dump(norms, sort_keys=False, allow_unicode=True, default_flow_style=None)
    text += "".join(f"  {line}\n" for line in block.splitlines())
    _write_checked(path, text, NormFile)
    return [n["id"] for n in norms]


def _write_checked(path: Path, text: str, model: type[Any]) -> None:
    """Write `text` only when it still reads as a valid file of its kind (the file is left
    as it was, and the operator hears why, otherwise)."""
    try:
        model.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{path}: not changed, the result would not be valid: {exc}") from exc
    path.write_text(text, encoding="utf-8")
