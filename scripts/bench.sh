#!/usr/bin/env bash
# All benchmarks on the local stack (installed and started when missing). Each prints its
# figures and their ratio to a baseline measured in the same run; see docs/benchmarks.md.
#   scripts/bench.sh            every benchmark present
#   scripts/bench.sh intake     one of them (intake, norms, feedback, metrics; soak, not in the default set)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
bash scripts/bootstrap.sh
bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
source .stack/env
set +a
areas=("$@")
if ((${#areas[@]} == 0)); then
    for area in intake norms feedback metrics; do
        [[ -f "benchmarks/$area.py" ]] && areas+=("$area")
    done
fi
for area in "${areas[@]}"; do
    echo "== benchmark: $area"
    .venv/bin/python -m "benchmarks.$area"
done
