"""Process-wide tuning shared by the services."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

# Far above CPython's default (700, 10, 10): a batch of events allocates and frees a great many
# small objects, and with the default the cycle collector runs hundreds of times per batch, each
# full pass walking every long-lived object (framework, models, memos).
BATCH_GC_THRESHOLDS = (50_000, 20, 20)


# Objects the cycle collector tracks that a batch consumer keeps alive per event of its largest
# batch, with margin. Measured in the norms consumer: ~12 for the prepared batch being applied,
# as many for the one being prepared, ~10 for its records as aiokafka hands them out; twice
# that. (The metrics consumer keeps fewer.)
TRACKED_PER_EVENT = 70


def batch_gc_thresholds(
    batch: int, objects_per_event: int = TRACKED_PER_EVENT
) -> tuple[int, int, int]:
    """Thresholds for a consumer that keeps batches of up to `batch` events alive, each event
    with about `objects_per_event` objects the cycle collector tracks. The young generation's
    count is allocations minus deallocations, so with a threshold above what the batches keep
    alive the collector runs when something is left over (a cycle, a growing cache), not once
    for every batch, walking all of the batch each time (docs/benchmarks.md, "Norms")."""
    return (max(BATCH_GC_THRESHOLDS[0], batch * objects_per_event), *BATCH_GC_THRESHOLDS[1:])


def quiet_cycle_collector(thresholds: tuple[int, int, int] = BATCH_GC_THRESHOLDS) -> None:
    """Freeze what exists now (made at start, lives for ever) out of the cycle collector's way
    and run it less often. Call once the service has loaded its configuration."""
    gc.freeze()
    gc.set_threshold(*thresholds)


def observe_collections(registry: CollectorRegistry) -> Callable[[], None]:
    """`python_gc_pause_seconds{generation}`: how long each run of the cycle collector held
    the process (the event loop, so a consumer's batch or a scheduler's breach, waits for it).
    Returns what stops the observing."""
    pauses = Histogram(
        "python_gc_pause_seconds",
        "Runs of Python's cycle collector and how long each held the process.",
        ["generation"],
        registry=registry,
        buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
    )
    by_generation = [pauses.labels(str(g)) for g in range(3)]
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            by_generation[info["generation"]].observe(time.perf_counter() - started[0])

    gc.callbacks.append(timed)
    return lambda: gc.callbacks.remove(timed)
