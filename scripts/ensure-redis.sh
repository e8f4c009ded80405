#!/bin/sh
# ensure-redis.sh installs redis-server, redis-cli and redis-benchmark (Debian
# package redis-server, which brings redis-tools) unless they are already on
# PATH. The tests start their own redis-server on a free loopback port with a
# temporary directory.
exec "$(dirname "$0")/ensure-apt.sh" redis-server redis-server redis-cli redis-benchmark
