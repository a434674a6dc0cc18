"""The simulator's Open Zaak words read back through the connector's mapping as the events the
simulator meant: outcomes and verdicts, suspension reasons, channels; and the routing choice."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.common import Channel
from schemas.events import CaseOutcome, ComplaintVerdict, SuspensionReason
from services.common.config import load_yaml_model
from services.connector.domain.mapping import Mapping
from simulator.open_zaak import (
    MAPPING,
    OPSCHORTING_REDEN,
    RESULTAATTYPEN,
    _kanaal,
    routed,
)

REPO = Path(__file__).resolve().parents[3]
READ_BACK = load_yaml_model(REPO / f"deploy/config/connector/mappings/{MAPPING}.yaml", Mapping)


@pytest.mark.parametrize("outcome", [o.value for o in CaseOutcome if o.value in RESULTAATTYPEN])
def test_each_outcome_is_read_back_as_itself(outcome: str) -> None:
    assert READ_BACK.result(*RESULTAATTYPEN[outcome]).outcome.value == outcome


@pytest.mark.parametrize("verdict", [v.value for v in ComplaintVerdict])
def test_each_complaint_verdict_is_read_back_as_itself(verdict: str) -> None:
    entry = READ_BACK.result(*RESULTAATTYPEN[verdict])
    assert entry.complaint_verdict is not None and entry.complaint_verdict.value == verdict


@pytest.mark.parametrize("reason", list(OPSCHORTING_REDEN))
def test_each_suspension_reason_is_read_back_as_itself(reason: str) -> None:
    assert READ_BACK.suspension_reason(OPSCHORTING_REDEN[reason]) == SuspensionReason(reason)


@pytest.mark.parametrize(
    "channel", [c for c in Channel if c in READ_BACK.communicatiekanalen.values()]
)
def test_each_channel_is_a_communicatiekanaal_read_back_as_itself(channel: Channel) -> None:
    assert READ_BACK.channel_of_zaak(_kanaal(READ_BACK, channel.value), None) == channel


def test_the_share_routed_is_about_the_share_asked_and_stable() -> None:
    ids = [f"Z-GM0383-run-{n:06d}" for n in range(4000)]
    taken = [case_id for case_id in ids if routed(case_id, 0.25)]
    assert 0.22 < len(taken) / len(ids) < 0.28
    assert taken == [case_id for case_id in ids if routed(case_id, 0.25)]
    assert all(routed(case_id, 1.0) for case_id in ids)
