#!/usr/bin/env bash
# Installs everything the local stack needs, once. Safe to run again: a second run only checks.
#
#   - Python dependencies: uv (via pip when missing), then `uv sync --frozen` into .venv, and the
#     hot pure modules compiled with mypyc (scripts/build_native.py)
#   - Debian packages: PostgreSQL 15, Prometheus, Chromium (browser tests), Maven + Java (Kafka download)
#   - Apache Kafka's broker jars from Maven Central into a cache outside the repo
#
# Environment:
#   SERVICEPULS_KAFKA_VERSION   Kafka release to use (default below; newest 4.x on Maven Central
#                               when this was written)
#   XDG_CACHE_HOME              cache root (default ~/.cache); Kafka lands in .../servicepuls/
#   SERVICEPULS_SKIP_APT=1      do not touch Debian packages (e.g. no root)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/stack/common.sh
source "$REPO/scripts/stack/common.sh"

log() { printf 'bootstrap: %s\n' "$*" >&2; }

python_deps() {
    if ! command -v uv >/dev/null 2>&1; then
        log "uv missing; installing it with pip"
        python3 -m pip install --quiet uv
    fi
    # --frozen: the lock file is the truth; never re-resolve on a developer machine.
    # --compile-bytecode, and compileall for the project's own code: an environment with
    # PYTHONDONTWRITEBYTECODE=1 (CI here has it) otherwise compiles every imported module from
    # source in every process it starts — a service took 3.6 s of CPU to import instead of 0.8 s,
    # and the suite starts hundreds of processes. A source edited later is compiled again
    # (Python compares the source's time), so stale files cost nothing.
    (cd "$REPO" && uv sync --frozen --quiet --compile-bytecode)
    (cd "$REPO" && .venv/bin/python -m compileall -q -j 0 services schemas simulator benchmarks tests \
        >/dev/null)
    native_modules
}

# The hot pure modules compiled to C by mypyc (services/_native.py; about a minute, once per change
# of their sources). Without a C compiler the sources run as they are. mypyc type-checks them
# first: a type error there stops the bootstrap with mypy's message, as a lint error would.
native_modules() {
    local log="$REPO/.native/build.log"
    mkdir -p "$REPO/.native"
    if ! (cd "$REPO" && .venv/bin/python scripts/build_native.py >"$log" 2>&1); then
        grep -v '^gcc ' "$log" >&2 || true
        log "compiling the native modules failed (log: $log)"
        return 1
    fi
    grep '^build_native:' "$log" | sed 's/^/bootstrap: /' >&2 || true
}

debian_packages() {
    [[ "${SERVICEPULS_SKIP_APT:-0}" == 1 ]] && return 0
    local missing=()
    [[ -x "$PG_BIN/initdb" ]] || missing+=(postgresql)
    command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
    command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
    ((${#missing[@]} == 0)) && return 0
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [[ $EUID -ne 0 ]]; then
        log "missing Debian packages: ${missing[*]}; run as root or: sudo apt-get install ${missing[*]}"
        return 1
    fi
    log "installing Debian packages: ${missing[*]}"
    # We run our own instances as plain processes (scripts/stack.sh); the packages' own services
    # are not wanted, so package scripts must not start them.
    local policy=/usr/sbin/policy-rc.d added_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && added_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    local apt_ok=0
    # Only refresh the package lists when the install needs it.
    apt-get install -y --no-install-recommends "${missing[@]}" && apt_ok=1
    if ((apt_ok == 0)); then
        apt-get update && apt-get install -y --no-install-recommends "${missing[@]}" && apt_ok=1
    fi
    ((added_policy)) && rm -f "$policy"
    ((apt_ok)) || { log "apt-get install failed"; return 1; }
}

kafka_jars() {
    local dir="$KAFKA_HOME"
    if [[ -f "$dir/.complete" ]]; then
        return 0
    fi
    log "downloading Apache Kafka $KAFKA_VERSION (broker jars and runtime dependencies) into $dir"
    rm -rf "$dir/libs"
    mkdir -p "$dir"
    # A throwaway pom: Maven resolves kafka_2.13's whole runtime closure and verifies every
    # download against Maven Central's checksums (--strict-checksums fails on a mismatch).
    # Kafka's own poms bring log4j-core but no slf4j binding; log4j-slf4j-impl (slf4j 1.7,
    # as Kafka 4 uses) sends the broker's logs to log4j2, configured by scripts/stack/.
    cat >"$dir/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.servicepuls</groupId>
  <artifactId>kafka-broker-runtime</artifactId>
  <version>$KAFKA_VERSION</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
      <scope>runtime</scope>
    </dependency>
  </dependencies>
</project>
EOF
    mvn -q -B -Dstyle.color=never --strict-checksums -f "$dir/pom.xml" \
        -Dmaven.repo.local="$SERVICEPULS_CACHE/m2" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs"
    [[ -f "$dir/libs/kafka_2.13-$KAFKA_VERSION.jar" ]] || { log "kafka_2.13 jar missing after download"; return 1; }
    touch "$dir/.complete"
    log "Kafka $KAFKA_VERSION ready: $(find "$dir/libs" -name '*.jar' | wc -l) jars"
}

main() {
    debian_packages
    python_deps
    kafka_jars
}

main "$@"
