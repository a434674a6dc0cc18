#!/usr/bin/env bash
# The local stack on loopback, without Docker: Kafka (KRaft), PostgreSQL, Prometheus, SMTP sink.
#
#   scripts/stack.sh up                 start whatever is not running and healthy (idempotent)
#   scripts/stack.sh down               stop everything (SIGTERM, wait, then SIGKILL)
#   scripts/stack.sh status             what is up; exit 0 only when everything is
#   scripts/stack.sh reset              down, then wipe all state (data, logs, mail)
#   scripts/stack.sh logs [NAME] [-f]   recent log lines (all components, or one; -f follows)
#   scripts/stack.sh start NAME         start one component (kafka|postgres|prometheus|mailsink)
#   scripts/stack.sh stop NAME          stop one component
#   scripts/stack.sh restart NAME
#
# State, logs and pid files live in ${SERVICEPULS_STATE:-<repo>/.stack}; connection settings for
# the services are written to <state>/env (source it). See docs/operations.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/stack/common.sh
source "$REPO/scripts/stack/common.sh"

STATE="${SERVICEPULS_STATE:-$REPO/.stack}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd -P)"
LOGS="$STATE/logs"
RUN="$STATE/run"

HOST=127.0.0.1
KAFKA_PORT=9092
KAFKA_CONTROLLER_PORT=9093
PG_PORT=55432
PROMETHEUS_PORT=9090
SMTP_PORT=2525
MAILSINK_HTTP_PORT=8025

COMPONENTS=(kafka postgres prometheus mailsink)
# Readiness timeouts (seconds): generous for a 2-core machine, but never a fixed sleep.
KAFKA_READY_TIMEOUT="${SERVICEPULS_KAFKA_READY_TIMEOUT:-90}"
READY_TIMEOUT="${SERVICEPULS_READY_TIMEOUT:-30}"
STOP_TIMEOUT="${SERVICEPULS_STOP_TIMEOUT:-30}"

say() { printf '%-10s %s\n' "$1" "$2"; }
die() { printf 'stack: %s\n' "$*" >&2; exit 1; }

# --- process helpers ------------------------------------------------------------------------

pid_alive() { [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null; }

# The pid from a pid file, only when that process is alive and is really ours (its command line
# contains the marker), so a recycled pid after a reboot or crash is never mistaken for ours.
live_pid() {
    local file="$1" marker="$2" pid
    [[ -f "$file" ]] || return 1
    pid="$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')"
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
    printf '%s\n' "$pid"
}

# Is something (anything) listening on 127.0.0.1:PORT?
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# wait_until TIMEOUT DESCRIPTION COMMAND...: poll COMMAND until it succeeds, or fail.
wait_until() {
    local timeout="$1" what="$2"
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            printf 'stack: %s not ready after %ss\n' "$what" "$timeout" >&2
            return 1
        fi
        sleep 0.2
    done
}

# Terminate a process: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
terminate() {
    local pid="$1" name="$2"
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + STOP_TIMEOUT))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if pid_alive "$pid"; then
        say "$name" "did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while pid_alive "$pid"; do sleep 0.1; done
    fi
}

# Start a long-running command detached from this shell (own session, so a terminal's Ctrl-C or
# a test runner's process group does not take it down) and record its pid.
launch() {
    local pidfile="$1" logfile="$2"
    shift 2
    # In a non-interactive script a background job is not a group leader, so setsid execs in
    # place and $! is the server's own pid.
    # 9>&-: the server must not inherit (and so hold) the lock of this script (take_lock).
    setsid "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
    printf '%s\n' "$!" >"$pidfile"
}

need_port_free() {
    local port="$1" name="$2"
    if port_open "$port"; then
        die "$name: 127.0.0.1:$port is already in use by another process (not ours); stop it first"
    fi
}

# --- bootstrap check ------------------------------------------------------------------------

ensure_bootstrapped() {
    if [[ -f "$KAFKA_HOME/.complete" && -x "$VENV_PY" && -x "$PG_BIN/initdb" ]] \
        && command -v prometheus >/dev/null 2>&1 \
        && "$VENV_PY" -c 'import aiokafka, aiosmtpd' 2>/dev/null; then
        return 0
    fi
    echo "stack: first run on this machine; running scripts/bootstrap.sh" >&2
    bash "$REPO/scripts/bootstrap.sh"
}

# --- Kafka ----------------------------------------------------------------------------------

KAFKA_DIR="$STATE/kafka"
KAFKA_PROPS="$KAFKA_DIR/server.properties"
KAFKA_PID="$RUN/kafka.pid"

kafka_pid() { live_pid "$KAFKA_PID" "$KAFKA_PROPS"; }
kafka_ready() { "$VENV_PY" "$REPO/scripts/stack/kafka_admin.py" ready --timeout "${1:-2}"; }

kafka_write_config() {
    mkdir -p "$KAFKA_DIR/data"
    # Rewritten on every start so a change here reaches existing state dirs.
    cat >"$KAFKA_PROPS" <<EOF
# Generated by scripts/stack.sh: single node, KRaft combined mode (broker + controller).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA_DIR/data
# One broker: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
default.replication.factor=1
num.partitions=6
# Topics are created on purpose (scripts/stack.sh), never by a typo in a consumer.
auto.create.topics.enable=false
# Tests start consumers all the time; do not make each group wait 3s for more members.
group.initial.rebalance.delay.ms=0
# After a kill -9 the restarted broker cannot register until its old session expires (default
# 9s); one JVM hosts both roles, so a short session is safe and recovery quicker.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=4000
# The only replica is this broker: electing it after an unclean shutdown loses nothing extra
# and never leaves a partition without a leader.
unclean.leader.election.enable=true
log.retention.hours=168
log.segment.bytes=104857600
EOF
}

kafka_start() {
    need_port_free "$KAFKA_PORT" kafka
    need_port_free "$KAFKA_CONTROLLER_PORT" kafka
    kafka_write_config
    local classpath="$KAFKA_HOME/libs/*"
    local java_opts=(
        -Xms1g -Xmx1g -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent
        -Djava.awt.headless=true
        -Dkafka.logs.dir="$LOGS"
        -Dlog4j2.configurationFile="$REPO/scripts/stack/kafka-log4j2.properties"
    )
    # Format only once: a formatted log dir has meta.properties. The cluster id is kept so a
    # re-format (after a manual wipe of data/) gets the same id.
    if [[ ! -f "$KAFKA_DIR/data/meta.properties" ]]; then
        if [[ ! -s "$KAFKA_DIR/cluster.id" ]]; then
            "$VENV_PY" -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))' \
                >"$KAFKA_DIR/cluster.id"
        fi
        say kafka "formatting log dir (cluster id $(cat "$KAFKA_DIR/cluster.id"))"
        java "${java_opts[@]}" -Xms64m -Xmx256m -cp "$classpath" kafka.tools.StorageTool format \
            --config "$KAFKA_PROPS" --cluster-id "$(cat "$KAFKA_DIR/cluster.id")" --ignore-formatted \
            >>"$LOGS/kafka-format.log" 2>&1 || { tail -n 20 "$LOGS/kafka-format.log" >&2; die "kafka: format failed"; }
    fi
    launch "$KAFKA_PID" "$LOGS/kafka.out" java "${java_opts[@]}" -cp "$classpath" kafka.Kafka "$KAFKA_PROPS"
}

# Ready within TIMEOUT seconds, then create missing topics; prints only what it created.
kafka_ensure_topics() {
    "$VENV_PY" "$REPO/scripts/stack/kafka_admin.py" ensure-topics --timeout "$1" 2>/dev/null \
        | sed 's/^/kafka      /'
    return "${PIPESTATUS[0]}"
}

kafka_wait() {
    local deadline=$((SECONDS + KAFKA_READY_TIMEOUT))
    until kafka_ensure_topics 2; do
        if ! kafka_pid >/dev/null; then
            tail -n 30 "$LOGS/kafka.out" "$LOGS/kafka.log" 2>/dev/null >&2 || true
            die "kafka: broker exited during start-up (logs above, full: $LOGS/kafka.log)"
        fi
        if ((SECONDS >= deadline)); then
            die "kafka: not ready after ${KAFKA_READY_TIMEOUT}s (see $LOGS/kafka.log)"
        fi
    done
}

kafka_stop() {
    local pid
    pid="$(kafka_pid)" && terminate "$pid" kafka
    rm -f "$KAFKA_PID"
}

# --- PostgreSQL -----------------------------------------------------------------------------

PG_DATA="$STATE/postgres"

# postgres refuses to run as root: as root, run its commands as the postgres OS user
# (the Debian package creates it).
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_pid() { live_pid "$PG_DATA/postmaster.pid" "postgres"; }
pg_ready() { "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -d servicepuls -U servicepuls; }

# After a kill -9 of the postmaster its backends can linger and keep the shared memory; postgres
# then refuses to start. They all have the data dir as their working directory: find them there.
pg_kill_orphans() {
    local proc pid
    for proc in /proc/[0-9]*; do
        pid="${proc#/proc/}"
        if [[ "$(readlink "$proc/cwd" 2>/dev/null)" == "$PG_DATA" ]] \
            && grep -qa '^postgres' "$proc/cmdline" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

pg_start() {
    need_port_free "$PG_PORT" postgres
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "postgres: no 'postgres' OS user (install the postgresql package)"
        as_pg test -x "$STATE" || die "postgres: the postgres user cannot reach $STATE; set SERVICEPULS_STATE elsewhere"
    fi
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        say postgres "creating cluster in $PG_DATA"
        rm -rf "$PG_DATA"
        mkdir -p "$PG_DATA"
        local pwfile="$STATE/run/pg.pw"
        printf 'servicepuls\n' >"$pwfile"
        if [[ $EUID -eq 0 ]]; then chown postgres: "$PG_DATA" "$pwfile"; fi
        # servicepuls is the cluster's superuser: migrations and tests may create databases and
        # extensions. Password authentication over TCP only; no Unix socket to get wrong.
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U servicepuls --pwfile="$pwfile" \
            --auth=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$LOGS/postgres-initdb.log" 2>&1 \
            || { tail -n 20 "$LOGS/postgres-initdb.log" >&2; die "postgres: initdb failed"; }
        rm -f "$pwfile"
        cat >>"$PG_DATA/postgresql.conf" <<EOF

# --- scripts/stack.sh ---
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_duration_statement = 1000
EOF
    fi
    # A postmaster.pid from a crashed run: postgres would refuse to start while old backends live.
    if [[ -f "$PG_DATA/postmaster.pid" ]]; then
        pg_kill_orphans
        rm -f "$PG_DATA/postmaster.pid"
    fi
    touch "$LOGS/postgres.log"
    if [[ $EUID -eq 0 ]]; then chown postgres: "$LOGS/postgres.log"; fi
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t "$READY_TIMEOUT" start >/dev/null 9>&- \
        || { tail -n 20 "$LOGS/postgres.log" >&2; die "postgres: start failed"; }
}

pg_wait() {
    wait_until "$READY_TIMEOUT" postgres pg_ready || die "postgres: not ready (see $LOGS/postgres.log)"
    export PGPASSWORD=servicepuls
    if ! "$PG_BIN/psql" -h "$HOST" -p "$PG_PORT" -U servicepuls -d postgres -tAc \
        "select 1 from pg_database where datname = 'servicepuls'" | grep -q 1; then
        "$PG_BIN/createdb" -h "$HOST" -p "$PG_PORT" -U servicepuls servicepuls
        say postgres "created database servicepuls"
    fi
}

pg_stop() {
    if pg_pid >/dev/null; then
        as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t "$STOP_TIMEOUT" stop >/dev/null 2>&1 || true
        local pid
        pid="$(pg_pid)" && terminate "$pid" postgres
    fi
    if [[ -d "$PG_DATA" ]]; then pg_kill_orphans; fi
    return 0
}

# --- Prometheus -----------------------------------------------------------------------------

PROM_CONFIG="$REPO/deploy/prometheus/prometheus.yml"
PROM_PID="$RUN/prometheus.pid"

prometheus_pid() { live_pid "$PROM_PID" "--storage.tsdb.path=$STATE/prometheus"; }
prometheus_ready() { curl -fsS -m 2 -o /dev/null "http://$HOST:$PROMETHEUS_PORT/-/ready" 2>/dev/null; }

prometheus_start() {
    need_port_free "$PROMETHEUS_PORT" prometheus
    mkdir -p "$STATE/prometheus"
    command -v promtool >/dev/null 2>&1 && { promtool check config "$PROM_CONFIG" >/dev/null \
        || die "prometheus: $PROM_CONFIG is invalid (promtool check config)"; }
    launch "$PROM_PID" "$LOGS/prometheus.log" prometheus \
        --config.file="$PROM_CONFIG" \
        --storage.tsdb.path="$STATE/prometheus" \
        --storage.tsdb.retention.time=2d \
        --web.listen-address="$HOST:$PROMETHEUS_PORT" \
        --web.enable-lifecycle
}

prometheus_wait() {
    wait_until "$READY_TIMEOUT" prometheus prometheus_ready \
        || { tail -n 20 "$LOGS/prometheus.log" >&2; die "prometheus: not ready (see $LOGS/prometheus.log)"; }
}

prometheus_stop() {
    local pid
    pid="$(prometheus_pid)" && terminate "$pid" prometheus
    rm -f "$PROM_PID"
}

# --- SMTP sink ------------------------------------------------------------------------------

MAIL_PID="$RUN/mailsink.pid"

mailsink_pid() { live_pid "$MAIL_PID" "$REPO/scripts/mailsink.py"; }
# Ready = the SMTP port greets with 220.
mailsink_ready() {
    (
        exec 3<>"/dev/tcp/$HOST/$SMTP_PORT" || exit 1
        read -r -t 2 greeting <&3 || exit 1
        printf 'QUIT\r\n' >&3 || true
        [[ "$greeting" == 220* ]]
    ) 2>/dev/null
}

mailsink_start() {
    need_port_free "$SMTP_PORT" mailsink
    need_port_free "$MAILSINK_HTTP_PORT" mailsink
    mkdir -p "$STATE/mail"
    launch "$MAIL_PID" "$LOGS/mailsink.log" env SERVICEPULS_MAILDIR="$STATE/mail" PYTHONUNBUFFERED=1 \
        "$VENV_PY" "$REPO/scripts/mailsink.py" --maildir "$STATE/mail" serve \
        --smtp-host "$HOST" --smtp-port "$SMTP_PORT" --http-host "$HOST" --http-port "$MAILSINK_HTTP_PORT"
}

mailsink_wait() {
    wait_until "$READY_TIMEOUT" mailsink mailsink_ready \
        || { tail -n 20 "$LOGS/mailsink.log" >&2; die "mailsink: not ready (see $LOGS/mailsink.log)"; }
}

mailsink_stop() {
    local pid
    pid="$(mailsink_pid)" && terminate "$pid" mailsink
    rm -f "$MAIL_PID"
}

# --- per-component dispatch -----------------------------------------------------------------

component_pid() {
    case "$1" in
        kafka) kafka_pid ;;
        postgres) pg_pid ;;
        prometheus) prometheus_pid ;;
        mailsink) mailsink_pid ;;
    esac
}

component_ready() {
    case "$1" in
        kafka) kafka_ready 2 2>/dev/null ;;
        postgres) pg_ready ;;
        prometheus) prometheus_ready ;;
        mailsink) mailsink_ready ;;
    esac
}

component_port() {
    case "$1" in
        kafka) echo "$HOST:$KAFKA_PORT (controller $KAFKA_CONTROLLER_PORT)" ;;
        postgres) echo "$HOST:$PG_PORT" ;;
        prometheus) echo "http://$HOST:$PROMETHEUS_PORT" ;;
        mailsink) echo "smtp $HOST:$SMTP_PORT, web http://$HOST:$MAILSINK_HTTP_PORT" ;;
    esac
}

valid_component() {
    local c
    for c in "${COMPONENTS[@]}"; do [[ "$c" == "$1" ]] && return 0; done
    die "unknown component '$1' (one of: ${COMPONENTS[*]})"
}

stop_component() {
    case "$1" in
        kafka) kafka_stop ;;
        postgres) pg_stop ;;
        prometheus) prometheus_stop ;;
        mailsink) mailsink_stop ;;
    esac
}

# Leave a running, healthy component alone; give a running one that is still starting time to
# become ready; clean up and restart anything crashed, stale or stuck.
start_component() {
    local name="$1" started=$SECONDS pid
    if pid="$(component_pid "$name")"; then
        # For Kafka the topic check doubles as the readiness probe (one client start, not two);
        # someone may have deleted a topic.
        if { [[ $name == kafka ]] && kafka_ensure_topics 2; } \
            || { [[ $name != kafka ]] && component_ready "$name"; }; then
            say "$name" "already up (pid $pid)"
            return 0
        fi
        if wait_until "$READY_TIMEOUT" "$name" component_ready "$name" 2>/dev/null; then
            [[ $name == kafka ]] && kafka_wait
            say "$name" "up (pid $pid, was still starting)"
            return 0
        fi
        say "$name" "running but not healthy; restarting"
        stop_component "$name"
    else
        stop_component "$name" # clears stale pid files and orphans
    fi
    "${name/postgres/pg}_start"
    "${name/postgres/pg}_wait"
    say "$name" "up in $((SECONDS - started))s (pid $(component_pid "$name"), $(component_port "$name"))"
}

write_env() {
    cat >"$STATE/env.tmp" <<EOF
# Written by scripts/stack.sh: settings for the local stack. Use: source $STATE/env
export SERVICEPULS_KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT
export SERVICEPULS_DATABASE_URL=postgresql://servicepuls:servicepuls@$HOST:$PG_PORT/servicepuls
export SERVICEPULS_PROMETHEUS_URL=http://$HOST:$PROMETHEUS_PORT
export SERVICEPULS_SMTP_HOST=$HOST
export SERVICEPULS_SMTP_PORT=$SMTP_PORT
export SERVICEPULS_MAILDIR=$STATE/mail
EOF
    mv "$STATE/env.tmp" "$STATE/env"
}

# --- commands -------------------------------------------------------------------------------

prepare() {
    ensure_bootstrapped
    mkdir -p "$LOGS" "$RUN"
    # The postgres OS user writes its log and reads the password file here.
    chmod 755 "$STATE" "$LOGS" "$RUN"
}

cmd_up() {
    local started=$SECONDS c
    prepare
    for c in "${COMPONENTS[@]}"; do start_component "$c"; done
    write_env
    echo "stack up in $((SECONDS - started))s; settings: source $STATE/env"
}

cmd_down() {
    local i
    # Reverse order: the broker last, so nothing is left writing to it.
    for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
        stop_component "${COMPONENTS[$i]}"
        say "${COMPONENTS[$i]}" "stopped"
    done
}

cmd_status() {
    local c pid all_up=0
    for c in "${COMPONENTS[@]}"; do
        if pid="$(component_pid "$c")"; then
            if component_ready "$c"; then
                say "$c" "up (pid $pid) $(component_port "$c")"
            else
                say "$c" "RUNNING BUT NOT READY (pid $pid) $(component_port "$c")"
                all_up=1
            fi
        else
            say "$c" "down"
            all_up=1
        fi
    done
    return "$all_up"
}

cmd_reset() {
    cmd_down
    # Only what this script owns; the directory itself may be a mount point.
    rm -rf "${STATE:?}/kafka" "${STATE:?}/postgres" "${STATE:?}/prometheus" "${STATE:?}/mail" \
        "${STATE:?}/logs" "${STATE:?}/run" "${STATE:?}/env" "${STATE:?}/fail_next"
    echo "stack state wiped ($STATE)"
}

cmd_logs() {
    local name="" follow=0 arg files=()
    for arg in "$@"; do
        case "$arg" in
            -f | --follow) follow=1 ;;
            *) valid_component "$arg" && name="$arg" ;;
        esac
    done
    case "$name" in
        kafka) files=("$LOGS/kafka.log" "$LOGS/kafka.out") ;;
        postgres) files=("$LOGS/postgres.log") ;;
        prometheus) files=("$LOGS/prometheus.log") ;;
        mailsink) files=("$LOGS/mailsink.log") ;;
        "") files=("$LOGS/kafka.log" "$LOGS/postgres.log" "$LOGS/prometheus.log" "$LOGS/mailsink.log") ;;
    esac
    local existing=()
    for arg in "${files[@]}"; do [[ -f "$arg" ]] && existing+=("$arg"); done
    ((${#existing[@]})) || die "no logs yet in $LOGS"
    if ((follow)); then
        exec tail -n 40 -F "${existing[@]}"
    fi
    tail -n 40 "${existing[@]}"
}

usage() { sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

# Several people and test runs share one machine: one changing command at a time.
take_lock() {
    exec 9>"$STATE/stack.lock"
    if ! flock -n 9; then
        echo "stack: waiting for another scripts/stack.sh to finish" >&2
        flock 9
    fi
}

main() {
    local command="${1:-}"
    shift || true
    case "$command" in
        up | down | reset | start | stop | restart) take_lock ;;
    esac
    case "$command" in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        reset) cmd_reset ;;
        logs) cmd_logs "$@" ;;
        start)
            [[ $# -eq 1 ]] || die "usage: stack.sh start NAME"
            valid_component "$1"
            prepare
            start_component "$1"
            write_env
            ;;
        stop)
            [[ $# -eq 1 ]] || die "usage: stack.sh stop NAME"
            valid_component "$1"
            stop_component "$1"
            say "$1" "stopped"
            ;;
        restart)
            [[ $# -eq 1 ]] || die "usage: stack.sh restart NAME"
            valid_component "$1"
            prepare
            stop_component "$1"
            start_component "$1"
            ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
