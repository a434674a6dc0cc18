"""`python -m services.feedback`: consumer, dispatcher, outbox relay and the survey page (8082)."""

from __future__ import annotations

import sys

import uvicorn

from services.common.config import ConfigError
from services.common.logging import configure_logging
from services.feedback.bootstrap import Feedback
from services.feedback.entrypoints.web import create_web_app
from services.feedback.settings import FeedbackSettings


def main() -> None:
    settings = FeedbackSettings()
    configure_logging("feedback", settings.infra.log_level, settings.infra.log_format)
    try:
        feedback = Feedback(settings)
    except ConfigError as error:
        sys.exit(f"feedback: configuration error: {error}")
    uvicorn.run(
        create_web_app(feedback),
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,  # request lines carry survey links: never log them
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
