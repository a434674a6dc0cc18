"""`python -m services.metrics`: the metrics consumer and its /metrics endpoint on port 8083."""

from __future__ import annotations

import uvicorn

from services.metrics.app import build_app
from services.metrics.settings import MetricsSettings


def main() -> None:
    settings = MetricsSettings()
    uvicorn.run(
        build_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
