"""The dependency audit's verdict on pip-audit's report (scripts/audit_dependencies.py): a
vulnerability with a fix fails CI, one without a fix is reported, an unreachable service is
reported loudly and does not fail, any other pip-audit failure fails."""

from __future__ import annotations

import importlib.util
import sys

from tests.support.services import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "audit_dependencies", REPO_ROOT / "scripts" / "audit_dependencies.py"
)
assert _spec is not None and _spec.loader is not None
audit = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = audit  # dataclasses look their module up
_spec.loader.exec_module(audit)


def _report(*vulns: dict[str, object]) -> dict[str, object]:
    return {
        "dependencies": [
            {"name": "orjson", "version": "3.10.0", "vulns": []},
            {"name": "jinja2", "version": "3.1.4", "vulns": list(vulns)},
        ],
        "fixes": [],
    }


def test_a_vulnerability_with_a_fixed_release_fails():
    code, message = audit.verdict(
        1, _report({"id": "GHSA-q2x7-8rv6-6q7h", "fix_versions": ["3.1.5"]}), ""
    )
    assert code == 1
    assert "jinja2 3.1.4: GHSA-q2x7-8rv6-6q7h (fixed in 3.1.5)" in message
    assert "uv lock --upgrade-package" in message


def test_a_vulnerability_without_a_fix_is_reported_and_does_not_fail():
    code, message = audit.verdict(1, _report({"id": "PYSEC-2099-1", "fix_versions": []}), "")
    assert code == 0
    assert "jinja2 3.1.4: PYSEC-2099-1 (no fixed release yet)" in message


def test_a_clean_report_passes():
    assert audit.verdict(0, _report(), "") == (
        0,
        "No known vulnerabilities in 2 locked dependencies.",
    )


def test_an_unreachable_service_is_said_loudly_and_does_not_fail():
    stderr = (
        "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='pypi.org', port=443): "
        "Max retries exceeded with url: /pypi/aiokafka/0.14.0/json"
    )
    code, message = audit.verdict(1, None, stderr)
    assert code == 0
    assert "DEPENDENCY AUDIT NOT RUN" in message


def test_any_other_failure_of_pip_audit_fails():
    code, message = audit.verdict(1, None, "pip-audit: error: invalid requirement 'x=='")
    assert code == 1
    assert "invalid requirement" in message
