"""`python -m services.feedback`: consumer, dispatcher, outbox relay and the survey page (8082)."""

from __future__ import annotations

from services.common.serve import serve
from services.feedback.bootstrap import Feedback
from services.feedback.entrypoints.web import create_web_app
from services.feedback.settings import FeedbackSettings


def main() -> None:
    settings = FeedbackSettings()
    serve(
        "feedback",
        lambda: create_web_app(Feedback(settings)),
        host=settings.host,
        port=settings.port,
    )


if __name__ == "__main__":
    main()
