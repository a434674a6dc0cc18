from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry

from services.common.process import BATCH_GC_THRESHOLDS, batch_gc_thresholds, observe_collections
from services.norms.settings import NormsSettings


def _runs(registry: CollectorRegistry, generation: str) -> float:
    value = registry.get_sample_value("python_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_collector_runs_are_timed_until_forgotten():
    registry = CollectorRegistry()
    forget = observe_collections(registry)
    try:
        gc.collect(0)
        gc.collect(2)
        assert _runs(registry, "0") == 1 and _runs(registry, "2") == 1
        assert registry.get_sample_value(
            "python_gc_pause_seconds_sum", {"generation": "2"}
        ) > registry.get_sample_value("python_gc_pause_seconds_sum", {"generation": "1"})
    finally:
        forget()
    gc.collect(0)
    assert _runs(registry, "0") == 1


def test_thresholds_lie_above_what_the_batches_keep_alive():
    assert batch_gc_thresholds(100, 70) == BATCH_GC_THRESHOLDS  # never below the floor
    assert batch_gc_thresholds(5000, 70) == (350_000, *BATCH_GC_THRESHOLDS[1:])
    assert NormsSettings(max_batch=5000).gc_thresholds_for_batches()[0] == 350_000
    assert NormsSettings(gc_thresholds=(1000, 5, 5)).gc_thresholds_for_batches() == (1000, 5, 5)
