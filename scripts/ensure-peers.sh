#!/bin/sh
# ensure-peers.sh installs the real SIP peers of the interop tests (cmd/callctx's
# TestInterop, internal/peertest): baresip (Debian's baresip-core: the program and its
# modules, without the GUI and video packages the baresip metapackage pulls in), linphonec
# (linphone-cli), Kamailio and its TLS module. Each is installed only when it is missing.
set -eu
d=$(dirname "$0")
"$d/ensure-apt.sh" baresip-core baresip
"$d/ensure-apt.sh" linphone-cli linphonec
"$d/ensure-apt.sh" kamailio kamailio
modules=$(dirname "$(dpkg -L kamailio | grep '/modules/tm\.so$')")
"$d/ensure-apt.sh" kamailio-tls-modules "$modules/tls.so"
