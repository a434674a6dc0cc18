"""The `servicepuls` command: every subcommand answers --help; dead letters are chosen as asked."""

from __future__ import annotations

from typing import Any

import pytest

from services import cli
from services.common.deadletters import DeadLetter


def letter(service: str, reason: str, offset: int, topic: str = "servicepuls.intake.v1") -> Any:
    return DeadLetter(
        dl_offset=offset,
        dl_partition=0,
        service=service,
        reason=reason,
        error="x",
        origin_topic=topic,
        origin_partition=0,
        origin_offset=offset,
        set_aside_at="2026-12-02T10:00:00+00:00",
        key=b"k",
        value=b"{",
        headers=[],
    )


LETTERS = [
    letter("norms", "invalid_json", 1),
    letter("metrics", "invalid_json", 1),
    letter("norms", "empty_value", 2),
    letter("feedback", "unknown_type", 3, topic="servicepuls.norms.v1"),
]


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    sent: list[Any] = []

    async def read_all(bootstrap: str, topic: str) -> list[Any]:
        return LETTERS

    async def redrive(bootstrap: str, letters: Any) -> int:
        sent.extend(letters)
        return len({d.origin for d in letters})

    monkeypatch.setattr(cli, "read_all", read_all)
    monkeypatch.setattr(cli, "redrive", redrive)
    return sent


@pytest.mark.parametrize("argv", [[], ["deadletters"], ["deadletters", "list"], ["run", "norms"]])
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main([*argv, "--help"])
    assert stop.value.code == 0
    assert "usage: servicepuls" in capsys.readouterr().out


def test_pass_on_commands_show_their_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["recompute", "--help"])
    assert "--municipality" in capsys.readouterr().out


def test_list_filters(kafka: list[Any], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["deadletters", "list", "--json", "--reason", "invalid_json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all('"invalid_json"' in line for line in lines)


def test_redrive_by_origin_sends_each_original_once(
    kafka: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["deadletters", "redrive", "servicepuls.intake.v1/0/1"]) == 0
    assert {d.origin for d in kafka} == {"servicepuls.intake.v1/0/1"}
    assert "1 record(s) sent back" in capsys.readouterr().out


def test_redrive_refuses_an_unknown_origin_and_sends_nothing(
    kafka: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["deadletters", "redrive", "servicepuls.intake.v1/0/99"]) == 2
    assert kafka == []
    assert "no such dead letter" in capsys.readouterr().err


def test_redrive_needs_a_choice(kafka: list[Any]) -> None:
    assert cli.main(["deadletters", "redrive"]) == 2
    assert cli.main(["deadletters", "redrive", "--all", "--service", "feedback"]) == 0
    assert [d.origin_topic for d in kafka] == ["servicepuls.norms.v1"]
