"""Fixtures the feedback integration tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.feedback.harness import MailCatcher


@pytest.fixture(scope="module")
def mail() -> Iterator[MailCatcher]:
    """An SMTP server in the test process, one per test module."""
    catcher = MailCatcher()
    catcher.controller.start()
    yield catcher
    catcher.controller.stop()
