#!/bin/sh
# ensure-sipp.sh installs sipp (Debian package sip-tester) unless it is already on PATH.
# Idempotent and quiet; exits non-zero with a message when it cannot install.
set -eu

if command -v sipp >/dev/null 2>&1; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-sipp: sipp is missing and apt-get is not available; install sipp (package sip-tester) by hand" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "ensure-sipp: sipp is missing and this is not root (no sudo); install package sip-tester" >&2
		exit 1
	fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q sip-tester >"$log" 2>&1; then
	# The package lists may be missing or stale (fresh containers): refresh once and retry.
	if ! { $SUDO apt-get update -q && $SUDO apt-get install -y -q sip-tester; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "ensure-sipp: could not install sip-tester" >&2
		exit 1
	fi
fi

if ! command -v sipp >/dev/null 2>&1; then
	cat "$log" >&2
	echo "ensure-sipp: sip-tester installed but sipp is not on PATH" >&2
	exit 1
fi
