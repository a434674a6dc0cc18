"""The alert and recording rules are valid and behave as their tests say (promtool from the
Debian prometheus package, the same version the stack runs)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.services import REPO_ROOT

pytestmark = pytest.mark.integration

RULES = REPO_ROOT / "deploy" / "prometheus" / "rules"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, (
        "promtool not found: install the Debian prometheus package (scripts/bootstrap.sh)"
    )
    return subprocess.run([binary, *args], capture_output=True, text=True, check=False)


def test_rule_files_are_valid():
    files = sorted(str(p) for p in RULES.glob("*.yml"))
    assert files
    result = promtool("check", "rules", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_is_covered_by_promtool_tests():
    tests = sorted(str(p) for p in (RULES / "tests").glob("*.yml"))
    result = promtool("test", "rules", *tests)
    assert result.returncode == 0, result.stdout + result.stderr
    rules_text = "".join(p.read_text() for p in RULES.glob("*.yml"))
    tests_text = "".join(p.read_text() for p in (RULES / "tests").glob("*.yml"))
    alerts = [
        line.split(":", 1)[1].strip()
        for line in rules_text.splitlines()
        if line.strip().startswith("- alert:")
    ]
    assert alerts
    untested = [a for a in alerts if f"alertname: {a}" not in tests_text]
    assert not untested, f"alerts without a promtool test: {untested}"
