"""Compile the hot pure modules (services/_native.py, MODULES) to C with mypyc, in place.

    .venv/bin/python scripts/build_native.py [--force]

Run by scripts/bootstrap.sh. Does nothing when the build is current (its stamp names the
sources' hashes). Without a C compiler it says so and leaves the sources to run as they are:
the same code, slower. mypyc type-checks the modules first (mypy); a type error stops the
build with mypy's message, and the sources run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services._native import (  # noqa: E402  (the repository on the path first)
    MODULES,
    STAMP,
    compiled_files,
    digest,
    remove_build,
    stale_sources,
)

MYPY_OPTIONS = [
    # Only the compiled modules are checked; what they import is read for its types.
    "--follow-imports=silent",
    "--ignore-missing-imports",
    "--no-warn-unused-ignores",
]


def current() -> bool:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and not stale_sources(stamp) and bool(compiled_files())


def build() -> None:
    from mypyc.build import mypycify  # (dev dependency: imported only to build)
    from setuptools import Distribution

    remove_build()  # no stamp while building: a half-done build is removed, never trusted
    sources = {name: digest(ROOT / name) for name in MODULES}
    with tempfile.TemporaryDirectory(prefix="servicepuls-native-") as work:
        previous = os.getcwd()
        os.chdir(ROOT)
        try:
            extensions = mypycify(
                [*MYPY_OPTIONS, *MODULES], opt_level="3", target_dir=str(Path(work) / "c")
            )
            distribution = Distribution({"name": "servicepuls-native", "ext_modules": extensions})
            command = distribution.get_command_obj("build_ext")
            command.inplace = True
            command.build_temp = str(Path(work) / "temp")
            command.build_lib = str(Path(work) / "lib")
            command.parallel = os.cpu_count() or 1
            distribution.run_command("build_ext")
        finally:
            os.chdir(previous)
    if stale_sources({"sources": sources}):
        remove_build()
        raise SystemExit("build_native: a source changed during the build; run it again")
    STAMP.parent.mkdir(exist_ok=True)
    STAMP.write_text(json.dumps({"sources": sources}, indent=2) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--force", action="store_true", help="build even when current")
    args = parser.parse_args()
    if not args.force and current():
        print("build_native: compiled modules are current", file=sys.stderr)
        return 0
    if shutil.which(os.environ.get("CC", "cc")) is None:
        remove_build()
        print(
            "build_native: no C compiler (cc); the modules run uncompiled (slower, the same code)",
            file=sys.stderr,
        )
        return 0
    began = time.perf_counter()
    build()
    print(
        f"build_native: compiled {len(MODULES)} modules in {time.perf_counter() - began:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
