"""Fuzz the intake HTTP API from its own OpenAPI document: no input may cause a 5xx."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from services.intake.bootstrap import create_app
from services.intake.settings import IntakeSettings
from tests.support.services import ServiceProcess

pytestmark = pytest.mark.integration

PORT = 18081
schema = schemathesis.openapi.from_dict(create_app(IntakeSettings()).openapi())


@pytest.fixture(scope="module")
def intake_url():
    import os

    service = ServiceProcess(
        "intake", PORT, {**os.environ, "SERVICEPULS_INTAKE_PORT": str(PORT)}, "/ready"
    )
    service.start()
    try:
        asyncio.run(service.wait_ready())
        yield service.base_url
    finally:
        asyncio.run(service.stop())
        # The fuzzer posts garbage on purpose; intake must have logged no unhandled error.
        log = service.log_path.read_text()
        assert "Traceback" not in log, log[-3000:]


@schema.parametrize()
@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_generated_request_causes_a_server_error(case, intake_url):
    response = case.call(base_url=intake_url, headers={"Authorization": "Bearer dev-test"})
    case.validate_response(response, checks=[not_a_server_error])
