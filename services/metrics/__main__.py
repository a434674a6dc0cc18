"""`python -m services.metrics`: the metrics consumer and its /metrics endpoint (port 8083)."""

from __future__ import annotations

from services.common.serve import serve
from services.metrics.bootstrap import build_app
from services.metrics.settings import MetricsSettings


def main() -> None:
    settings = MetricsSettings()
    serve("metrics", lambda: build_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
