"""The soak benchmark's `--norms-memo-size` bounds the memos of modules that exist (it patched
`services.norms.handlers` and `services.norms.domain.calendar` after both had moved, and the
norms process then died at its first line)."""

from __future__ import annotations

import runpy
from typing import Any

import pytest

from benchmarks.soak import norms_memo_code
from services.common import calendar, kafka
from services.norms.domain import outcomes, planning


def test_the_memo_cap_bounds_every_memo_and_then_runs_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patched = [
        (planning, "TIMELINE_MEMO_SIZE"),
        (outcomes, "EXPLANATION_MEMO_SIZE"),
        (calendar, "_ADVANCE_MEMO_SIZE"),
        (calendar, "_ISO_MEMO_SIZE"),
        (kafka, "PARTITION_MEMO_SIZE"),
    ]
    for module, name in patched:  # restored after the test
        monkeypatch.setattr(module, name, getattr(module, name))
    ran: list[Any] = []
    monkeypatch.setattr(runpy, "run_module", lambda *args, **kwargs: ran.append(args))
    exec(norms_memo_code(7), {})
    assert [getattr(module, name) for module, name in patched] == [7] * len(patched)
    assert ran == [("services.norms",)]
