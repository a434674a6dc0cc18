"""The channel system behind an event source, as the norms and metrics services label their
data-quality counts: the first configured system that may post the source, else `unknown`."""

from __future__ import annotations

from pathlib import Path

from services.intake.domain.channel_systems import (
    UNKNOWN_CHANNEL_SYSTEM,
    ChannelSystem,
    ChannelSystems,
    SourceLabels,
)

SHIPPED = (
    Path(__file__).resolve().parents[3] / "deploy" / "config" / "intake" / "channel_systems.yaml"
)


def system(name: str, *sources: str) -> ChannelSystem:
    return ChannelSystem(
        name=name,
        token_sha256=f"{abs(hash(name)):064x}"[-64:],
        sources=list(sources),
        event_types=["nl.servicepuls.*"],
        municipalities=["GM0383"],
    )


def test_the_first_system_whose_sources_match_names_the_source() -> None:
    label = SourceLabels(
        ChannelSystems(
            channel_systems=[
                system("kcc", "/buch/kcc", "/buch/kcc/*"),
                system("everything", "**"),
                system("never-reached", "/buch/kcc/chat"),
            ]
        )
    )
    assert label("/buch/kcc/chat") == "kcc"
    assert label("/buch/kcc") == "kcc"
    assert label("/elders") == "everything"
    only_kcc = SourceLabels(ChannelSystems(channel_systems=[system("kcc", "/buch/kcc/*")]))
    assert only_kcc("/elders") == UNKNOWN_CHANNEL_SYSTEM


def test_the_shipped_configuration_labels_its_own_sources() -> None:
    label = SourceLabels.from_file(SHIPPED)
    assert label("/buch/zaaksysteem") == "zaaksysteem"
    assert label("/buch/meldingen") == "meldingen"
    assert label("/buch/kcc/email") == "kcc"
    assert label("/buch/test") == "test"  # the development system that may post anything
