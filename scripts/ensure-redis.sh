#!/bin/sh
# ensure-redis.sh installs redis-server, redis-cli and redis-benchmark (Debian
# package redis-server, which brings redis-tools) unless they are already on
# PATH. The tests start their own redis-server on a free loopback port with a
# temporary directory; nothing here starts or configures a system service.
# Idempotent and quiet; exits non-zero with a message when it cannot install.
set -eu

have() {
	command -v redis-server >/dev/null 2>&1 &&
		command -v redis-cli >/dev/null 2>&1 &&
		command -v redis-benchmark >/dev/null 2>&1
}

if have; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-redis: redis-server is missing and apt-get is not available; install Redis 7 by hand" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "ensure-redis: redis-server is missing and this is not root (no sudo); install package redis-server" >&2
		exit 1
	fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q redis-server >"$log" 2>&1; then
	# The package lists may be missing or stale (fresh containers): refresh once and retry.
	if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q redis-server; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "ensure-redis: could not install redis-server" >&2
		exit 1
	fi
fi

if ! have; then
	cat "$log" >&2
	echo "ensure-redis: redis-server installed but redis-server, redis-cli or redis-benchmark is not on PATH" >&2
	exit 1
fi
