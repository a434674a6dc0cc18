"""`python -m services.norms`: the norms service (consumer, scheduler, relay) on port 8081."""

from __future__ import annotations

import uvicorn

from services.norms.app import bootstrap
from services.norms.settings import NormsSettings


def main() -> None:
    settings = NormsSettings()
    uvicorn.run(
        bootstrap(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
