#!/bin/sh
# ensure-sipp.sh installs sipp (Debian package sip-tester) unless it is already on PATH.
exec "$(dirname "$0")/ensure-apt.sh" sip-tester sipp
