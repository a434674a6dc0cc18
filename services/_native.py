"""The hot pure modules compiled to C by mypyc (scripts/build_native.py), and the guard that
keeps a compiled module from outliving its source.

A compiled module is a shared library beside its `.py` file, and Python imports the library
first. A source edited after the build would silently not run, so every process checks, before
any service module is imported (`services/__init__.py`), that each compiled module's source is
still the one it was built from; if one is not, the whole build is removed and the sources run
as they are (slower, never stale), with a warning to build again. The check hashes a few source
files: well under a millisecond.

Compiling changes no behaviour: the same source runs either way, and the test suite passes both
ways (CI runs it compiled). docs/benchmarks.md, "Compiled modules", says what it is worth.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / ".native" / "stamp.json"

# The pure modules where the rebuild and the norms consumer spend their time (paths from ROOT).
# What mypyc compiles must type-check: scripts/build_native.py runs mypy on exactly these.
MODULES = (
    "services/common/calendar.py",
    "services/common/murmur.py",
    "services/norms/adapters/clock_rows.py",
    "services/norms/domain/clock.py",
    "services/norms/domain/explain.py",
    "services/norms/domain/matching.py",
    "services/norms/domain/outcomes.py",
    "services/norms/domain/planning.py",
    "services/norms/rebuild.py",
)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_sources(stamp: dict[str, object]) -> list[str]:
    """The compiled modules whose source changed (or went) since the build."""
    sources = stamp.get("sources")
    if not isinstance(sources, dict):
        return ["(unreadable stamp)"]
    if set(sources) != set(MODULES):
        return ["(the list of compiled modules changed)"]
    stale = []
    for name, built_from in sources.items():
        try:
            if digest(ROOT / name) != built_from:
                stale.append(name)
        except OSError:
            stale.append(name)
    return stale


def compiled_files() -> list[Path]:
    """The compiled libraries of the listed modules present: one beside each module's source,
    and mypyc's shared library at the top (`<hash>__mypyc.<tag>.so`)."""
    found = list(ROOT.glob("*__mypyc.*.so"))
    for name in MODULES:
        source = ROOT / name
        found += source.parent.glob(f"{source.stem}.*.so")
    return found


def remove_build() -> None:
    """Remove the compiled libraries (every one under services/, also of a module no longer
    on the list), then the stamp."""
    for path in [*ROOT.glob("*__mypyc.*.so"), *ROOT.glob("services/**/*.so")]:
        path.unlink(missing_ok=True)
    STAMP.unlink(missing_ok=True)


def drop_stale_build() -> None:
    """Remove the compiled modules if any of their sources changed since they were built (or
    the build left no stamp to tell)."""
    try:
        stamp = json.loads(STAMP.read_text())
    except FileNotFoundError:
        if not compiled_files():
            return  # not compiled: the sources run
        stamp = {}
    except (OSError, ValueError):
        stamp = {}
    stale = stale_sources(stamp if isinstance(stamp, dict) else {})
    if stale:
        remove_build()
        warnings.warn(
            f"compiled modules removed, their sources changed since the build ({', '.join(stale)})"
            ": the sources run as they are; `python scripts/build_native.py` compiles them again",
            stacklevel=2,
        )
