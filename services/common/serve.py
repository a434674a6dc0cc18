"""How every Servicepuls service runs: `serve(name, make_app, host=..., port=...)`.

One place for what each `python -m services.<name>` does: JSON logging set up before anything
logs, a configuration error reported in one line naming file and field (exit status 1, no
traceback), and uvicorn on uvloop and httptools with access logs off (request lines carry
survey links and tokens) and a bounded graceful shutdown.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from services.common.config import ConfigError
from services.common.logging import configure_logging
from services.common.settings import InfraSettings


def serve(name: str, make_app: Callable[[], Any], *, host: str, port: int) -> None:
    infra = InfraSettings()
    configure_logging(name, infra.log_level, infra.log_format)
    try:
        app = make_app()
    except ConfigError as error:
        sys.exit(f"{name}: configuration error: {error}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )
