#!/usr/bin/env bash
# Installs what the integrator's kit tests need: the npm packages pinned in
# package-lock.json (newman, Spectral, playwright-core) and Debian's
# chromium for the console's browser test. Every step checks first, so a
# second run changes nothing and takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."

# Node: the tests run newman, spectral and playwright-core with it.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	echo "ensure-kit-deps: node (>= 20) and npm are required; install Node.js 20 or newer" >&2
	exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
	echo "ensure-kit-deps: node $(node --version) is too old; playwright-core needs node >= 20" >&2
	exit 1
fi

# npm packages, exactly as locked. The stamp holds the lock file's hash, so
# node_modules is reinstalled only when the lock changed (or is missing).
stamp=node_modules/.callctx-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] ||
	[ ! -x node_modules/.bin/newman ] || [ ! -x node_modules/.bin/spectral ] || [ ! -d node_modules/playwright-core ]; then
	echo "ensure-kit-deps: npm ci" >&2
	# No install scripts: none of these packages needs one, and one of
	# Spectral's dependencies would otherwise phone home.
	SCARF_ANALYTICS=false npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	echo "$want" >"$stamp"
fi

# Chromium from Debian for the console test (never a browser download by
# playwright).
if [ ! -x /usr/bin/chromium ]; then
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null || { echo "ensure-kit-deps: installing chromium needs root or sudo" >&2; exit 1; }
		sudo="sudo"
	fi
	echo "ensure-kit-deps: apt-get install chromium" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi
