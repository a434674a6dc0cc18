"""docker-compose.yml runs the same stack for hosts with Docker; no engine here, so check its shape
(and let `docker compose config` parse it where the plugin is installed)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.support.services import REPO_ROOT

COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())


def test_the_whole_stack_and_the_four_services_are_there():
    services = set(COMPOSE["services"])
    assert {"kafka", "postgres", "prometheus", "grafana", "mailpit"} <= services
    assert {"intake", "norms", "feedback", "metrics"} <= services


@pytest.mark.parametrize("name", ["intake", "norms", "feedback", "metrics"])
def test_each_service_runs_its_module_and_shares_the_keys(name):
    service = COMPOSE["services"][name]
    assert service["command"][-1] == f"services.{name}"
    assert (REPO_ROOT / "services" / name / "__main__.py").exists()
    assert any(v.startswith("servicepuls-keys:") for v in service["volumes"])
    assert service["environment"]["SERVICEPULS_KAFKA_BOOTSTRAP"].startswith("kafka:")


def test_mounted_deploy_folders_exist():
    for service in COMPOSE["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO_ROOT / source).exists(), source


def test_docker_compose_parses_it_where_the_plugin_is_installed():
    if (
        shutil.which("docker") is None
        or subprocess.run(
            ["docker", "compose", "version"], capture_output=True, check=False
        ).returncode
    ):
        pytest.skip("docker compose plugin not installed (no Docker on this host)")
    result = subprocess.run(
        ["docker", "compose", "config", "-q"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
