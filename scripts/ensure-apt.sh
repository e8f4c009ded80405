#!/bin/sh
# ensure-apt.sh PACKAGE COMMAND... installs the Debian package PACKAGE unless
# every COMMAND is already on PATH (a COMMAND with a slash is a file that must
# exist, for packages of plugins). Idempotent and quiet; exits non-zero with
# a message when it cannot install. It only installs: nothing here starts or
# configures a system service.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: ensure-apt.sh PACKAGE COMMAND..." >&2
	exit 2
fi
pkg=$1
shift

have() {
	for c in "$@"; do
		case $c in
		*/*) [ -e "$c" ] || return 1 ;;
		*) command -v "$c" >/dev/null 2>&1 || return 1 ;;
		esac
	done
}

if have "$@"; then
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "ensure-apt: $* missing and apt-get is not available; install package $pkg by hand" >&2
	exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1; then
		SUDO="sudo -n"
	else
		echo "ensure-apt: $* missing and this is not root (no sudo); install package $pkg" >&2
		exit 1
	fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export DEBIAN_FRONTEND=noninteractive
# Another install may hold the dpkg lock (parallel test runs): wait for it.
APT="apt-get -o DPkg::Lock::Timeout=600"
if ! $SUDO $APT install -y -q "$pkg" >"$log" 2>&1; then
	# The package lists may be missing or stale (fresh containers): refresh once and retry.
	if ! { $SUDO $APT update -q && $SUDO $APT install -y -q "$pkg"; } >"$log" 2>&1; then
		cat "$log" >&2
		echo "ensure-apt: could not install $pkg" >&2
		exit 1
	fi
fi

if ! have "$@"; then
	cat "$log" >&2
	echo "ensure-apt: $pkg installed but one of $* is not on PATH" >&2
	exit 1
fi
