"""Staff token scopes and retention settings: what the files may say, and the errors naming the
file and field when they say something else."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest

from services.common.config import ConfigError
from services.common.settings import REPO_ROOT
from services.feedback.config import Capability, load_policy_book, load_staff_tokens

CONFIG = REPO_ROOT / "deploy" / "config"
SERVED = ["GM0373", "GM0450", "GM0383", "GM0399"]


def token_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "staff_tokens.yaml"
    path.write_text(body)
    return path


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def test_the_deployed_token_file_is_scoped_and_loads_for_the_deployment() -> None:
    tokens = load_staff_tokens(CONFIG / "surveys" / "staff_tokens.yaml", served=SERVED)
    dev = tokens.who("dev-feedback-staff")
    assert dev is not None and dev.name == "dev-klantcontactcentrum"
    assert sorted(dev.municipalities) == sorted(SERVED)
    assert all(dev.may(c) for c in Capability)


def test_a_token_carries_its_municipalities_and_capabilities(tmp_path: Path) -> None:
    path = token_file(
        tmp_path,
        f"""tokens:
  - name: castricum-balie
    sha256: {sha("balie")}
    municipalities: [GM0383]
    capabilities: [record_answers]
  - name: buch-privacy
    sha256: {sha("privacy")}
    municipalities: [GM0383, GM0373]
    capabilities: [erase]
""",
    )
    tokens = load_staff_tokens(path, served=SERVED)
    balie = tokens.who("balie")
    assert balie is not None and balie.serves("GM0383") and not balie.serves("GM0373")
    assert balie.may(Capability.RECORD_ANSWERS) and not balie.may(Capability.READ_CONTACT_LIST)
    assert not balie.may(Capability.ERASE)
    privacy = tokens.who("privacy")
    assert privacy is not None and privacy.serves("GM0373") and privacy.may(Capability.ERASE)
    assert tokens.who("guess") is None


def test_a_token_for_a_municipality_not_served_is_refused_naming_file_and_field(
    tmp_path: Path,
) -> None:
    path = token_file(
        tmp_path,
        f"""tokens:
  - name: ok
    sha256: {sha("a")}
    municipalities: [GM0383]
    capabilities: [record_answers]
  - name: too-wide
    sha256: {sha("b")}
    municipalities: [GM0383, GM0363]
    capabilities: [read_contact_list]
""",
    )
    with pytest.raises(ConfigError) as error:
        load_staff_tokens(path, served=SERVED)
    message = str(error.value)
    assert str(path) in message
    assert "tokens.1.municipalities.1" in message and "GM0363" in message
    assert "not served" in message


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("    capabilities: [record_answers]\n", "tokens.0.municipalities"),
        ("    municipalities: [GM0383]\n", "tokens.0.capabilities"),
        (
            "    municipalities: [GM0383]\n    capabilities: [everything]\n",
            "tokens.0.capabilities.0",
        ),
        ("    municipalities: []\n    capabilities: [erase]\n", "tokens.0.municipalities"),
        (
            "    municipalities: [castricum]\n    capabilities: [erase]\n",
            "tokens.0.municipalities.0",
        ),
    ],
)
def test_an_unscoped_or_mistyped_token_is_refused(tmp_path: Path, entry: str, field: str) -> None:
    path = token_file(tmp_path, f"tokens:\n  - name: t\n    sha256: {sha('t')}\n{entry}")
    with pytest.raises(ConfigError) as error:
        load_staff_tokens(path, served=SERVED)
    assert str(path) in str(error.value) and field in str(error.value)


def test_two_tokens_with_one_name_are_refused(tmp_path: Path) -> None:
    scope = "    municipalities: [GM0383]\n    capabilities: [erase]\n"
    path = token_file(
        tmp_path,
        f"tokens:\n  - name: t\n    sha256: {sha('1')}\n{scope}"
        f"  - name: t\n    sha256: {sha('2')}\n{scope}",
    )
    with pytest.raises(ConfigError, match="same name"):
        load_staff_tokens(path, served=SERVED)


def test_retention_defaults_and_the_resident_record_horizon() -> None:
    book = load_policy_book(CONFIG)
    retention = book.retention("GM0383")
    assert retention is not None
    assert (retention.survey_months, retention.remark_months, retention.opt_out_months) == (
        24,
        12,
        60,
    )
    assert book.retention("GM9999") is None
    throttle, opt_out = book.resident_record_horizon()
    assert throttle == timedelta(days=90) and opt_out == timedelta(days=31 * 60)


def test_remarks_cannot_outlive_their_survey(tmp_path: Path) -> None:
    (tmp_path / "surveys").mkdir()
    (tmp_path / "municipalities.yaml").write_text((CONFIG / "municipalities.yaml").read_text())
    (tmp_path / "surveys" / "default.yaml").write_text(
        "retention: {survey_months: 6, remark_months: 12}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_policy_book(tmp_path)
    assert "surveys/default.yaml" in str(error.value) and "retention" in str(error.value)
