"""`python -m services.intake`: the intake HTTP service (port 8080)."""

from __future__ import annotations

from services.common.serve import serve
from services.intake.bootstrap import create_app
from services.intake.settings import IntakeSettings


def main() -> None:
    settings = IntakeSettings()
    serve("intake", lambda: create_app(settings), host=settings.host, port=settings.port)


if __name__ == "__main__":
    main()
