"""`python -m services.intake`: the intake HTTP service."""

from __future__ import annotations

import sys

import uvicorn

from services.common.config import ConfigError
from services.common.logging import configure_logging
from services.intake.app import create_app
from services.intake.settings import IntakeSettings


def main() -> None:
    settings = IntakeSettings()
    configure_logging("intake", settings.infra.log_level, settings.infra.log_format)
    try:
        app = create_app(settings)
    except ConfigError as error:
        sys.exit(f"intake: configuration error: {error}")
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
