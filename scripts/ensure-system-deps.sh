#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, when they are missing.
# Each later stage adds what it needs here (prometheus for promtool, chromium for the
# dashboard tests, wrk for load, a Java runtime for PMML). Runs apt-get update once,
# only if something is missing.
set -euo pipefail

# package:command pairs; the command tells whether the package is already there.
NEEDED=(
  "postgresql-client:psql"
  "prometheus:promtool"
  "wrk:wrk"
  "chromium:chromium"
  "default-jre-headless:java"
)

missing=()
for pair in "${NEEDED[@]}"; do
  pkg=${pair%%:*}
  cmd=${pair#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
