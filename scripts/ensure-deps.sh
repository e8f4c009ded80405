#!/usr/bin/env bash
# Installs what the test suite needs that Go does not bring itself. Every
# step checks first, so running it again changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || { echo "ensure-deps: Go is not installed" >&2; exit 1; }
go mod download
./scripts/ensure-sipp.sh   # sipp (Debian sip-tester) for the SIP bridge tests
./scripts/ensure-kit-deps.sh   # node tools (newman, Spectral, playwright-core) and chromium
./scripts/ensure-redis.sh  # redis-server, redis-cli, redis-benchmark for the Redis store tests
./scripts/ensure-peers.sh  # baresip, linphonec and Kamailio for the interop tests
