#!/usr/bin/env bash
# Servicepuls doing its whole job, in one command: a simulated week of the four BUCH
# municipalities (Bergen, Uitgeest, Castricum, Heiloo) through the real platform.
#
#   scripts/demo.sh                      install what is missing, start the stack and the four
#                                        services, simulate 7 days in ~5 minutes, write the
#                                        period report, stop the services
#   scripts/demo.sh --keep-running       leave the services running afterwards (to look around)
#   scripts/demo.sh --stop               stop services a --keep-running demo left behind, and
#                                        remove that run's private state
#   scripts/demo.sh --days 2 --speedup 4000 --seed 7 --municipalities GM0383,GM0450
#                                        any other option goes to `python -m simulator`
#
# Ctrl-C stops the simulation cleanly (what was posted stays posted) and then the services.
# On exit (Ctrl-C too) the run's private state - its norms_demo_* and feedback_demo_* schemas
# in PostgreSQL and its consumer groups in Kafka - is removed, unless --keep-running; what a
# run could not remove (kill -9) is removed by the next one.
# The local stack (Kafka, PostgreSQL, Prometheus, SMTP sink) is left running for the next run
# and for the tests; `make stack-down` stops it. Logs: .stack/logs/<service>.log.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
STATE="${SERVICEPULS_STATE:-$REPO/.stack}"
LOGS="$STATE/logs"
RUN="$STATE/run/demo"
REPORTS="$STATE/reports"
PY="$REPO/.venv/bin/python"
SERVICES=(intake norms feedback metrics)
declare -A PORTS=([intake]=8080 [norms]=8081 [feedback]=8082 [metrics]=8083)
READY_TIMEOUT="${SERVICEPULS_DEMO_READY_TIMEOUT:-90}"

say() { printf '\033[1mdemo:\033[0m %s\n' "$*"; }
warn() { printf '\033[33mdemo: %s\033[0m\n' "$*" >&2; }

keep_running=0
stop_only=0
sim_args=()
while (($#)); do
    case "$1" in
        --keep-running) keep_running=1 ;;
        --stop) stop_only=1 ;;
        -h | --help)
            sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *) sim_args+=("$1") ;;
    esac
    shift
done

ready() { curl -sf -o /dev/null --max-time 2 "http://127.0.0.1:$1/ready"; }
has_module() { "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)" 2>/dev/null; }

# The pid of a service this script started, if it is still that process.
our_pid() {
    local file="$RUN/$1.pid" pid
    [[ -f "$file" ]] || return 1
    pid="$(tr -dc '0-9' <"$file")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "services.$1" || return 1
    printf '%s\n' "$pid"
}

stop_service() {
    local name="$1" pid
    pid="$(our_pid "$name")" || { rm -f "$RUN/$name.pid"; return 0; }
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name did not stop in 20 s; killing it"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$name.pid"
    say "stopped $name"
}

stop_services() {
    local name
    for name in "${SERVICES[@]}"; do stop_service "$name"; done
}

# A run's private state: PostgreSQL schemas norms_demo_<id> and feedback_demo_<id>, Kafka
# consumer groups norms-demo-<id> and feedback-demo-<id>.
#   demo_state drop ID...   remove these runs' state (their services are stopped)
#   demo_state sweep        remove the state of earlier runs whose consumer groups have no
#                           members (a run that was killed); runs still consuming are left alone
demo_state() {
    "$PY" - "$@" <<'PYTHON'
import asyncio, os, re, sys

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DeleteGroupsRequest

RUN_ID = re.compile(r"^[0-9]{14}$")
SCHEMA = re.compile(r"^(?:norms|feedback)_demo_([0-9]{14})$")


def groups(run: str) -> list[str]:
    return [f"norms-demo-{run}", f"feedback-demo-{run}"]


async def main(action: str, runs: list[str]) -> int:
    if any(not RUN_ID.match(r) for r in runs):
        print(f"demo: not a demo run id: {runs}", file=sys.stderr)
        return 2
    conn = await asyncpg.connect(os.environ["SERVICEPULS_DATABASE_URL"])
    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["SERVICEPULS_KAFKA_BOOTSTRAP"])
    await admin.start()
    problems = 0
    try:
        if action == "sweep":
            names = await conn.fetch("SELECT nspname FROM pg_namespace")
            found = sorted({m.group(1) for r in names if (m := SCHEMA.match(r["nspname"]))})
            known = {g for g, _ in await admin.list_consumer_groups()}
            for run in found:
                mine = [g for g in groups(run) if g in known]
                # One group a call: aiokafka 0.14 cannot decode a reply about several.
                described = [d for g in mine for d in await admin.describe_consumer_groups([g])]
                # (error_code, group, state, protocol_type, protocol, members) per group
                if all(not group[5] for d in described for group in d.groups):
                    runs.append(run)
            if runs:
                print(f"demo: removing the state of earlier runs: {', '.join(runs)}")
        for run in runs:
            for schema in (f"norms_demo_{run}", f"feedback_demo_{run}"):
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            known = {g for g, _ in await admin.list_consumer_groups()}
            for group in (g for g in groups(run) if g in known):
                node = await admin.find_coordinator(group)
                reply = await admin._send_request_to_node(node, DeleteGroupsRequest([group]))
                for name, error in reply.results:
                    if error:  # e.g. 68 NON_EMPTY_GROUP: still consuming; it expires by itself
                        print(f"demo: consumer group {name} not removed (error {error})",
                              file=sys.stderr)
                        problems += 1
    finally:
        await admin.close()
        await conn.close()
    return 1 if problems else 0


sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2:])))
PYTHON
}

# The id of the run whose services a --keep-running demo left up (their state is kept).
KEPT="$RUN/kept-run"

if ((stop_only)); then
    stop_services
    if [[ -f "$KEPT" ]]; then
        set -a
        # shellcheck disable=SC1091
        source "$STATE/env"
        set +a
        kept_id="$(tr -dc '0-9' <"$KEPT")"
        if [[ -n "$kept_id" ]] && demo_state drop "$kept_id"; then
            say "removed the private state of demo run $kept_id"
        fi
        rm -f "$KEPT"
    fi
    exit 0
fi

# --- 1. install what is missing, start the stack -------------------------------------------
say "installing what is missing (scripts/bootstrap.sh) and starting the stack"
bash scripts/bootstrap.sh
bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
source "$STATE/env"
set +a
mkdir -p "$LOGS" "$RUN" "$REPORTS"

# Compressed time: the services follow event time, so a simulated week takes minutes and every
# norm and survey comes out as it would in real time.
export SERVICEPULS_NORMS_CLOCK=event
export SERVICEPULS_FEEDBACK_CLOCK=event
export SERVICEPULS_LOG_FORMAT=json
# Event time is one clock per topic, and it only moves forward. A second demo simulates the same
# recent week again, so the norms and feedback services this script starts get state of their
# own for this run (a PostgreSQL schema and a consumer group that starts at the end of the
# topics): every run is judged as if it were the first. Metrics keeps counting across runs.
demo_id="$(date +%Y%m%d%H%M%S)"
export SERVICEPULS_NORMS_DB_SCHEMA="norms_demo_$demo_id"
export SERVICEPULS_NORMS_CONSUMER_GROUP="norms-demo-$demo_id"
export SERVICEPULS_NORMS_AUTO_OFFSET_RESET=latest
export SERVICEPULS_FEEDBACK_DB_SCHEMA="feedback_demo_$demo_id"
export SERVICEPULS_FEEDBACK_CONSUMER_GROUP="feedback-demo-$demo_id"
export SERVICEPULS_FEEDBACK_START_FROM=latest
demo_state sweep || warn "could not remove all state of earlier demo runs"

# --- 2. the four services -------------------------------------------------------------------
started=()
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if ((keep_running)); then
        ((${#started[@]})) && echo "$demo_id" >"$KEPT"
        say "services keep running (--keep-running); stop them with: scripts/demo.sh --stop"
    elif ((${#started[@]})); then
        stop_services
        # What this run created: its schemas and consumer groups (nothing if it started nothing:
        # services it found running keep theirs).
        if demo_state drop "$demo_id"; then
            say "removed this run's private state (schemas and consumer groups of $demo_id)"
        else
            warn "could not remove all private state of run $demo_id; the next demo will"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for name in "${SERVICES[@]}"; do
    port="${PORTS[$name]}"
    if ready "$port"; then
        say "$name already running on :$port (using it)"
        continue
    fi
    if ! has_module "services.$name.__main__"; then
        warn "$name is not available in this checkout (no services/$name/__main__.py); continuing without it"
        continue
    fi
    say "starting $name on :$port (log: $LOGS/$name.log)"
    setsid "$PY" -m "services.$name" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.pid"
    started+=("$name")
done
for name in "${started[@]}"; do
    port="${PORTS[$name]}"
    deadline=$((SECONDS + READY_TIMEOUT))
    until ready "$port"; do
        if ! our_pid "$name" >/dev/null; then
            warn "$name exited while starting; last log lines:"
            tail -n 20 "$LOGS/$name.log" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            warn "$name not ready after ${READY_TIMEOUT}s; see $LOGS/$name.log"
            exit 1
        fi
        sleep 0.3
    done
    say "$name ready"
done

# --- 3. the simulation ----------------------------------------------------------------------
summary="$STATE/simulator/last-summary.json"
mkdir -p "$(dirname "$summary")"
rm -f "$summary"
report_dir="$REPORTS/$(date +%Y%m%d-%H%M%S)"
set +e
# Residents answer the mail of this platform's feedback service only (a shared machine may run
# other feedback instances that mail the same simulated residents).
"$PY" -m simulator --summary-json "$summary" --report "$report_dir" \
    --survey-url "${SERVICEPULS_FEEDBACK_PUBLIC_BASE_URL:-http://127.0.0.1:${PORTS[feedback]}}/s/" \
    "${sim_args[@]}"
sim_status=$?
set -e
if [[ ! -s "$summary" ]]; then
    warn "the simulator wrote no summary (exit $sim_status)"
    exit "$sim_status"
fi

# --- 4. the period report -------------------------------------------------------------------
if has_module services.metrics.report.__main__; then
    mkdir -p "$report_dir"
    read -r period_from period_to codes < <("$PY" - "$summary" <<'EOF'
import json, sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
s = json.load(open(sys.argv[1]))
zone = ZoneInfo("Europe/Amsterdam")
first = datetime.fromisoformat(s["start"]).astimezone(zone).date()
last = (datetime.fromisoformat(s["period_end"]) - timedelta(seconds=1)).astimezone(zone).date()
print(first, last, ",".join(sorted(s["open_cases"]) or ["GM0383"]))
EOF
    )
    IFS=, read -r -a municipalities <<<"$codes"
    for code in "${municipalities[@]}"; do
        out="$report_dir/$code"
        if "$PY" -m services.metrics.report --municipality "$code" --from "$period_from" \
            --to "$period_to" --out "$out" >>"$LOGS/report.log" 2>&1; then
            say "period report for $code: $out/report.html"
        else
            warn "period report for $code failed; see $LOGS/report.log"
        fi
    done
else
    warn "no period report: services.metrics.report is not available in this checkout"
fi

say "done. Simulator ledger and summary: $STATE/simulator/  Service logs: $LOGS/"
exit "$sim_status"
