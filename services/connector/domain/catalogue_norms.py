"""Norms from the catalogue: a zaaktype's terms (Catalogi API) as norm definitions for review.

- `doorlooptijd` is the term set by law or regulation: a legal term (Atw applies), paused
  while the zaak is opgeschort when `opschortingEnAanhoudingMogelijk` (Awb 4:15), extendable
  by `verlengingstermijn` when `verlengingMogelijk` (Awb 4:14).
- `servicenorm` is the municipality's own, shorter promise: the same rules, not a legal term.
"""

from __future__ import annotations

from typing import Any

from services.connector.domain.mapping import iso_duration
from services.connector.domain.resources import ZaakType

DEFAULT_COMPLIANCE_GOAL = 0.9


def norms_for(zaaktype: ZaakType, case_type: str) -> list[dict[str, Any]]:
    """The norm definitions (as in deploy/config/norms/*.yaml) a zaaktype asks for."""
    norms = [_norm(zaaktype, case_type, zaaktype.doorlooptijd, legal=True)]
    if zaaktype.servicenorm:
        norms.append(_norm(zaaktype, case_type, zaaktype.servicenorm, legal=False))
    return norms


def _norm(zaaktype: ZaakType, case_type: str, term: str, *, legal: bool) -> dict[str, Any]:
    target = iso_duration(term)
    name = zaaktype.omschrijving or case_type
    suffix = "doorlooptijd" if legal else "servicenorm"
    norm: dict[str, Any] = {
        "id": f"{case_type}_{suffix}"[:64],
        "name": {
            "nl": f"{name}: {'wettelijke doorlooptijd' if legal else 'servicenorm'} {term}",
            "en": f"{name}: {'legal term' if legal else 'service norm'} {term}",
        },
        "target": target.model_dump(mode="json"),
        "compliance_goal": DEFAULT_COMPLIANCE_GOAL,
        "warnings": [{"at": 0.5}, {"at": 0.8}],
    }
    if legal and target.unit.value in ("working_days", "calendar_days", "weeks"):
        norm["legal_term"] = True
    norm["start"] = [{"type": "case.opened", "case_type": [case_type]}]
    if zaaktype.opschortingEnAanhoudingMogelijk:
        norm["pause"] = [{"type": "case.suspended"}]  # Awb 4:15
        norm["resume"] = [{"type": "case.resumed"}]
    if zaaktype.verlengingMogelijk:
        norm["extend"] = [{"type": "case.extended"}]  # Awb 4:14
        extension = iso_duration(zaaktype.verlengingstermijn or term)
        norm["max_extension"] = extension.model_dump(mode="json")
    norm["stop"] = [{"type": "case.closed"}]
    norm["cancel"] = [{"type": "case.closed", "outcome": ["withdrawn", "cancelled"]}]
    return norm
