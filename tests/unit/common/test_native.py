"""Compiled modules (services/_native.py): a build never outlives its sources, and where a C
compiler is present (CI) the suite runs the compiled modules."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import services.norms.domain.clock
from services import _native

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the compiled modules' sources with a pretend build beside them."""
    for name in _native.MODULES:
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, target)
        (target.parent / f"{target.stem}.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    (tmp_path / "0123abcd__mypyc.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    monkeypatch.setattr(_native, "ROOT", tmp_path)
    monkeypatch.setattr(_native, "STAMP", tmp_path / ".native" / "stamp.json")
    return tmp_path


def _stamp(root: Path) -> None:
    sources = {name: _native.digest(root / name) for name in _native.MODULES}
    (root / ".native").mkdir(exist_ok=True)
    (root / ".native" / "stamp.json").write_text(json.dumps({"sources": sources}))


def _libraries(root: Path) -> list[Path]:
    return sorted(root.rglob("*.so"))


def test_a_current_build_is_kept(tree: Path) -> None:
    _stamp(tree)
    _native.drop_stale_build()
    assert len(_libraries(tree)) == len(_native.MODULES) + 1


def test_a_build_whose_source_changed_is_removed(tree: Path) -> None:
    _stamp(tree)
    clock = tree / "services/norms/domain/clock.py"
    clock.write_text(clock.read_text() + "\n# edited after the build\n")
    with pytest.warns(UserWarning, match="services/norms/domain/clock.py"):
        _native.drop_stale_build()
    assert _libraries(tree) == []
    assert not (tree / ".native" / "stamp.json").exists()


def test_a_build_without_its_stamp_is_removed(tree: Path) -> None:
    with pytest.warns(UserWarning, match="compiled modules removed"):
        _native.drop_stale_build()
    assert _libraries(tree) == []


def test_a_library_of_a_module_taken_off_the_list_goes_too(tree: Path) -> None:
    orphan = tree / "services/common/kafka.cpython-311-x86_64-linux-gnu.so"
    orphan.write_bytes(b"")
    stamp = {name: _native.digest(tree / name) for name in _native.MODULES}
    stamp["services/common/kafka.py"] = "0" * 64
    (tree / ".native").mkdir()
    (tree / ".native" / "stamp.json").write_text(json.dumps({"sources": stamp}))
    with pytest.warns(UserWarning, match="list of compiled modules changed"):
        _native.drop_stale_build()
    assert _libraries(tree) == []


def test_without_a_build_nothing_happens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_native, "ROOT", tmp_path)
    monkeypatch.setattr(_native, "STAMP", tmp_path / ".native" / "stamp.json")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _native.drop_stale_build()
    assert caught == []
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: the sources run")
def test_where_a_compiler_is_present_the_modules_run_compiled() -> None:
    """scripts/bootstrap.sh builds them; CI runs the suite on the compiled modules."""
    assert Path(services.norms.domain.clock.__file__).suffix == ".so", (
        "run `python scripts/build_native.py` (scripts/bootstrap.sh does)"
    )
    check = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_native.py")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "current" in check.stderr
