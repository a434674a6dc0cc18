#!/usr/bin/env bash
# The fault table (issue 14, docs/reliability.md): the same seeded municipality days through the
# real stack twice, undisturbed and while services are killed, the broker and PostgreSQL are
# restarted, replicas come and go and poison records arrive; compared effect for effect.
# Installs and starts the local stack when needed. It kills and restarts THIS stack's Kafka and
# PostgreSQL: run it on a stack nobody else is using (e.g. in a network namespace of your own).
#   scripts/reliability.sh                 the full table (15-25 minutes)
#   scripts/reliability.sh --faults short  the suite's shorter version (about 4 minutes)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
bash scripts/bootstrap.sh
bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
source .stack/env
set +a
exec .venv/bin/python -m benchmarks.reliability "$@"
