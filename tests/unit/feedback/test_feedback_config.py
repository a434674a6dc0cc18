"""Survey policy files: the checked-in ones load; mistakes are named by file and field."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.common.settings import REPO_ROOT
from services.feedback.config import load_policy_book, load_staff_tokens

CONFIG = REPO_ROOT / "deploy" / "config"


def test_the_deployed_policies_load_for_every_municipality() -> None:
    book = load_policy_book(CONFIG)
    for code in ("GM0373", "GM0450", "GM0383", "GM0399"):
        policy = book.for_case(code, "klacht")
        assert policy is not None and policy.delay == timedelta(hours=24)
        assert "schuldhulpverlening" in policy.excluded_case_types
        assert book.for_contact(code) is not None
    assert book.for_case("GM9999", "klacht") is None
    assert load_staff_tokens(CONFIG / "surveys" / "staff_tokens.yaml").who("dev-feedback-staff")
    assert load_staff_tokens(CONFIG / "surveys" / "staff_tokens.yaml").who("guess") is None


def test_overrides_for_demos_and_tests() -> None:
    book = load_policy_book(CONFIG, delay_override=timedelta(0), always_send=True)
    policy = book.for_case("GM0383", "omgevingsvergunning")
    assert policy is not None and policy.delay == timedelta(0)
    assert policy.sending_hours.weekdays == frozenset(range(7))


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("sampling_rate: 1.5\n", "sampling_rate"),
        ("sending_hours: {from: '20:00', until: '09:00'}\n", "sending_hours"),
        ("sending_hours: {weekdays: [maandag]}\n", "sending_hours.weekdays.0"),
        ("delivery_channels: [in_person]\n", "delivery_channels"),
        ("excluded_outcomes: [lost]\n", "excluded_outcomes.0"),
        ("case_types: {klacht: {delay: 3}}\n", "case_types.klacht.delay"),
        ("typo_field: 1\n", "typo_field"),
    ],
)
def test_a_mistake_names_file_and_field(tmp_path: Path, text: str, field: str) -> None:
    shutil.copy(CONFIG / "municipalities.yaml", tmp_path)
    (tmp_path / "surveys").mkdir()
    (tmp_path / "surveys" / "default.yaml").write_text(text)
    with pytest.raises(ConfigError) as error:
        load_policy_book(tmp_path)
    assert "surveys/default.yaml" in str(error.value)
    assert field in str(error.value)
