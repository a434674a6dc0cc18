"""Audit the locked dependencies (uv.lock, every group) for known vulnerabilities with pip-audit.

    .venv/bin/python scripts/audit_dependencies.py

Exits 1 when a locked version has a known vulnerability that a newer release fixes (upgrade it:
`uv lock --upgrade-package NAME`), or when pip-audit fails for a reason other than the network.
A vulnerability without a fixed release is reported and does not fail. When the vulnerability
service (PyPI's JSON API; OSV may be unreachable from CI) cannot be reached, the audit says so
loudly and exits 0: CI does not fail for network reasons only.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# What pip-audit's traceback shows when the service cannot be reached (requests / urllib3).
NETWORK_FAILURES = (
    "ConnectionError",
    "NameResolutionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Max retries exceeded",
    "Temporary failure in name resolution",
    "Network is unreachable",
)


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    vulnerability: str
    fixed_in: tuple[str, ...]

    def __str__(self) -> str:
        fix = f"fixed in {', '.join(self.fixed_in)}" if self.fixed_in else "no fixed release yet"
        return f"{self.package} {self.version}: {self.vulnerability} ({fix})"


def findings(report: dict[str, Any]) -> list[Finding]:
    """The vulnerabilities in pip-audit's JSON report (`-f json`)."""
    return [
        Finding(
            dep["name"], dep.get("version", "?"), vuln["id"], tuple(vuln.get("fix_versions", []))
        )
        for dep in report.get("dependencies", [])
        for vuln in dep.get("vulns", [])
    ]


def verdict(returncode: int, report: dict[str, Any] | None, stderr: str) -> tuple[int, str]:
    """Exit code and message for a pip-audit run."""
    if report is not None:
        found = findings(report)
        fixable = [f for f in found if f.fixed_in]
        lines = [str(f) for f in found]
        if fixable:
            return 1, "\n".join(
                [
                    "Known vulnerabilities with a fix in locked dependencies:",
                    *lines,
                    "Upgrade them in uv.lock: uv lock --upgrade-package NAME",
                ]
            )
        if found:
            return 0, "\n".join(["Known vulnerabilities without a fixed release:", *lines])
        audited = len(report.get("dependencies", []))
        return 0, f"No known vulnerabilities in {audited} locked dependencies."
    if returncode != 0 and any(marker in stderr for marker in NETWORK_FAILURES):
        banner = "!" * 78
        return 0, (
            f"{banner}\n!! DEPENDENCY AUDIT NOT RUN: the vulnerability service (PyPI) could not "
            f"be reached.\n!! The dependencies were NOT checked. Run scripts/audit_dependencies.py "
            f"where PyPI is reachable.\n{banner}"
        )
    return 1, f"pip-audit failed (exit {returncode}):\n{stderr[-4000:]}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        output = Path(tmp) / "audit.json"
        subprocess.run(
            [
                "uv",
                "export",
                "--frozen",
                "--all-groups",
                "--no-emit-project",
                "--format",
                "requirements-txt",
                "--quiet",
                "--output-file",
                str(requirements),
            ],
            cwd=REPO,
            check=True,
        )
        run = subprocess.run(
            [
                str(Path(sys.executable).parent / "pip-audit"),
                "--requirement",
                str(requirements),
                "--require-hashes",
                "--disable-pip",  # the lock pins and hashes every package: nothing to resolve
                "--vulnerability-service",
                "pypi",
                "--progress-spinner",
                "off",
                "--timeout",
                "20",
                "--format",
                "json",
                "--output",
                str(output),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        report = json.loads(output.read_text()) if output.exists() else None
    code, message = verdict(run.returncode, report, run.stderr)
    print(message)
    return code


if __name__ == "__main__":
    sys.exit(main())
