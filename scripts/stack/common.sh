# shellcheck shell=bash
# shellcheck disable=SC2034  # these are read by the scripts that source this file
# Shared settings for scripts/bootstrap.sh and scripts/stack.sh. Sourced, not run.
# Expects REPO to be set to the repository root.

KAFKA_VERSION="${SERVICEPULS_KAFKA_VERSION:-4.4.0}"
# log4j2 version Kafka $KAFKA_VERSION itself depends on (kafka-server's pom); used for the slf4j binding.
LOG4J_VERSION="${SERVICEPULS_LOG4J_VERSION:-2.25.5}"
SERVICEPULS_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/servicepuls"
KAFKA_HOME="$SERVICEPULS_CACHE/kafka-$KAFKA_VERSION"
PG_BIN="${SERVICEPULS_PG_BIN:-/usr/lib/postgresql/15/bin}"
VENV_PY="$REPO/.venv/bin/python"
