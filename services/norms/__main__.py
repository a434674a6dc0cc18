"""`python -m services.norms`: the norms service (consumer, scheduler, relay) on port 8081."""

from __future__ import annotations

from services.common.serve import serve
from services.norms.bootstrap import build_app
from services.norms.settings import NormsSettings


def main() -> None:
    settings = NormsSettings()
    serve("norms", lambda: build_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
