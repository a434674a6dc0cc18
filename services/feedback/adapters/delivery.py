"""What a delivery adapter may report besides success."""

from __future__ import annotations


class DeliveryFailure(Exception):
    """`code` is a short label (safe for events and metrics: never an address)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TemporaryFailure(DeliveryFailure):
    """Try again later (backoff)."""


class PermanentFailure(DeliveryFailure):
    """Trying again will not help: report delivery_failed now."""
