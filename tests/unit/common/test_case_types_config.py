"""The case types a municipality declares (deploy/config/case_types/): loaded per municipality,
bad files refused with the file and field named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from services.common.config import ConfigError, load_case_types, load_municipalities
from services.common.settings import REPO_ROOT


def _config(tmp_path: Path, case_types: object) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO_ROOT / "deploy" / "config", target)
    (target / "case_types" / "default.yaml").write_text(yaml.safe_dump(case_types))
    return target


def test_every_served_municipality_declares_the_simulators_case_types():
    from simulator.model import CASE_TYPES

    config = REPO_ROOT / "deploy" / "config"
    declared = load_case_types(config, load_municipalities(config))
    assert set(declared) == {"GM0373", "GM0450", "GM0383", "GM0399"}
    for codes in declared.values():
        assert {c.code for c in CASE_TYPES} <= codes


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ({"case_types": {"other": "Overig"}}, "case_types: Value error, reserved"),
        ({"case_types": {"Klacht!": "x"}}, "case_types.Klacht!.[key]"),
        ({"case_types": {}}, "case_types: Dictionary should have at least 1 item"),
        ({"zaaktypen": {"klacht": "x"}}, "zaaktypen: Extra inputs are not permitted"),
    ],
)
def test_a_bad_case_type_file_is_refused_naming_file_and_field(tmp_path, content, message):
    config = _config(tmp_path, content)
    with pytest.raises(ConfigError) as error:
        load_case_types(config, load_municipalities(config))
    assert "case_types/default.yaml" in str(error.value)
    assert message in str(error.value)


def test_a_missing_case_type_file_is_named(tmp_path):
    config = _config(tmp_path, {"case_types": {"klacht": "Klacht"}})
    (config / "case_types" / "default.yaml").unlink()
    with pytest.raises(ConfigError, match=r"case_types/default\.yaml: file not found"):
        load_case_types(config, load_municipalities(config))
