"""Process-wide tuning shared by the services."""

from __future__ import annotations

import gc

# Far above CPython's default (700, 10, 10): a batch of events allocates and frees a great many
# small objects, and with the default the cycle collector runs hundreds of times per batch, each
# full pass walking every long-lived object (framework, models, memos).
BATCH_GC_THRESHOLDS = (50_000, 20, 20)


def quiet_cycle_collector(thresholds: tuple[int, int, int] = BATCH_GC_THRESHOLDS) -> None:
    """Freeze what exists now (made at start, lives for ever) out of the cycle collector's way
    and run it less often. Call once the service has loaded its configuration."""
    gc.freeze()
    gc.set_threshold(*thresholds)
