"""Feedback's sending days come from the municipality's business calendar
(deploy/config/calendars/, read by the loader norms and metrics use), not from a list of its own."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from schemas.common import Channel, ContactMedium
from schemas.events import CaseOutcome
from services.common.config import ConfigError
from services.common.settings import REPO_ROOT
from services.feedback.config import PolicyBook, load_policy_book
from services.feedback.domain.policy import CASE, Closure, ResidentHistory, Schedule, decide

CONFIG = REPO_ROOT / "deploy" / "config"
AMS = ZoneInfo("Europe/Amsterdam")


def with_calendar(tmp_path: Path, **changes: object) -> Path:
    """The deployed configuration with BUCH's calendar file changed."""
    folder = tmp_path / "config"
    shutil.copytree(CONFIG, folder)
    path = folder / "calendars" / "buch.yaml"
    calendar = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump(calendar | changes))
    return folder


def send_at(book: PolicyBook, closed_at: datetime) -> datetime:
    """When Castricum's survey about a report closed at `closed_at` goes out."""
    policy = book.for_case("GM0383", "melding-openbare-ruimte")
    assert policy is not None
    closure = Closure(
        subject_id="Z-1",
        subject_kind=CASE,
        closed_at=closed_at,
        channel=Channel.EMAIL,
        case_type="melding-openbare-ruimte",
        outcome=CaseOutcome.RESOLVED,
        resident_ref="a" * 64,
        has_contact_details=True,
        reachable_by=frozenset({ContactMedium.EMAIL}),
    )
    decision = decide(policy, closure, ResidentHistory())
    assert isinstance(decision, Schedule)
    return decision.send_at.astimezone(AMS)


# Closed on a Tuesday evening: the survey is due that night, so it goes out the next morning.
TUESDAY_EVENING = datetime(2026, 3, 3, 18, 0, tzinfo=AMS)
WEDNESDAY_MORNING = datetime(2026, 3, 4, 9, 0, tzinfo=AMS)
THURSDAY_MORNING = datetime(2026, 3, 5, 9, 0, tzinfo=AMS)


def test_a_closing_day_in_the_calendar_file_is_no_sending_day(tmp_path: Path) -> None:
    assert send_at(load_policy_book(CONFIG), TUESDAY_EVENING) == WEDNESDAY_MORNING
    closed = with_calendar(tmp_path, closing_days=[date(2026, 3, 4)])
    assert send_at(load_policy_book(closed), TUESDAY_EVENING) == THURSDAY_MORNING


def test_the_deployed_calendar_decides_good_friday_and_liberation_day(tmp_path: Path) -> None:
    book = load_policy_book(CONFIG)
    # BUCH is open on Good Friday (3 April 2026), which the `holidays` package lists: surveys go.
    assert send_at(book, datetime(2026, 4, 2, 18, 0, tzinfo=AMS)) == datetime(
        2026, 4, 3, 9, 0, tzinfo=AMS
    )
    # Koningsdag (Monday 27 April 2026) is a public holiday: Tuesday instead.
    assert send_at(book, datetime(2026, 4, 25, 18, 0, tzinfo=AMS)) == datetime(
        2026, 4, 28, 9, 0, tzinfo=AMS
    )
    # Liberation Day closes the offices in a lustrum year (2025) only.
    assert send_at(book, datetime(2025, 5, 3, 18, 0, tzinfo=AMS)) == datetime(
        2025, 5, 6, 9, 0, tzinfo=AMS
    )
    assert send_at(book, datetime(2026, 5, 4, 18, 0, tzinfo=AMS)) == datetime(
        2026, 5, 5, 9, 0, tzinfo=AMS
    )
    # A municipality that closes on Good Friday sends nothing that day.
    closed = load_policy_book(with_calendar(tmp_path, closed_on_good_friday=True))
    assert send_at(closed, datetime(2026, 4, 2, 18, 0, tzinfo=AMS)) == datetime(
        2026, 4, 4, 9, 0, tzinfo=AMS
    )


def test_a_missing_calendar_file_is_named(tmp_path: Path) -> None:
    folder = with_calendar(tmp_path)
    (folder / "calendars" / "buch.yaml").unlink()
    with pytest.raises(ConfigError) as error:
        load_policy_book(folder)
    assert "calendars/buch.yaml" in str(error.value)
