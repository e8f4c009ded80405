#!/bin/sh
# bench-sip.sh measures SIP calls per second with sipp as the UAC, on loopback, in one run:
#   1. the baseline: a bare sipgo UAS (bench/sipuas) in answer and in redirect mode;
#   2. callctx's SIP bridge in answer+BYE mode (the INVITE's context written as the call's
#      session, the BYE ending it) and in redirect mode (one write: the call is recorded
#      ended with the 302), with the default configuration.
# Each server first gets short steps at rising rates; a step is clean when no call failed,
# at least 95% of the offered calls per second completed and at most 1% of the calls needed
# a retransmission. Then the highest clean rate (or SIP_BENCH_RATE) is sustained for
# SIP_BENCH_SECONDS (default 60). The summary goes to stdout and to
# bench-results/sip-<time>/summary.txt; sipp's raw files stay next to it.
#
# Environment: SIP_BENCH_SECONDS (60), SIP_BENCH_RATE (force the sustained rate),
# SIP_BENCH_STEPS ("500 1000 1500 2000 2500 3000 4000"), SIP_BENCH_STEP_SECONDS (10).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/ensure-sipp.sh

SECONDS_SUSTAINED=${SIP_BENCH_SECONDS:-60}
RATE=${SIP_BENCH_RATE:-}
STEPS=${SIP_BENCH_STEPS:-"500 1000 1500 2000 2500 3000 4000"}
STEP_SECONDS=${SIP_BENCH_STEP_SECONDS:-10}

OUT="$ROOT/bench-results/sip-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT/bin"
SUMMARY="$OUT/summary.txt"
go build -o "$OUT/bin/sipuas" ./bench/sipuas
HAVE_CALLCTX=0
if [ -d cmd/callctx ]; then
	go build -o "$OUT/bin/callctx" ./cmd/callctx
	HAVE_CALLCTX=1
fi

PIDS=""
cleanup() {
	for p in $PIDS; do
		kill "$p" 2>/dev/null || true
	done
	for p in $PIDS; do
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT INT TERM

# wait_for_line FILE PATTERN: wait (up to 10 s) until FILE has a line matching PATTERN.
wait_for_line() {
	i=0
	while ! grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ "$i" -gt 100 ]; then
			echo "bench-sip: timed out waiting for '$2' in $1" >&2
			cat "$1" >&2
			exit 1
		fi
		sleep 0.1
	done
}

# start_uas MODE: start the bare sipgo UAS and set ADDR and SERVER_PID.
start_uas() {
	"$OUT/bin/sipuas" -listen 127.0.0.1:0 -mode "$1" >"$OUT/sipuas-$1.log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_for_line "$OUT/sipuas-$1.log" "^listening udp "
	ADDR=$(sed -n 's/^listening udp //p' "$OUT/sipuas-$1.log")
}

# start_callctx MODE: start callctx with its SIP bridge in MODE and set ADDR and SERVER_PID.
start_callctx() {
	dir="$OUT/callctx-$1"
	mkdir -p "$dir/data"
	cat >"$dir/config.yaml" <<YAML
http:
  listen: 127.0.0.1:0
data:
  dir: $dir/data
sip:
  listen: 127.0.0.1:0
  mode: $1
  target: sip:agent@192.0.2.10:5060
YAML
	LOG_LEVEL=info "$OUT/bin/callctx" serve --config "$dir/config.yaml" >"$dir/log" 2>&1 &
	SERVER_PID=$!
	PIDS="$PIDS $SERVER_PID"
	wait_for_line "$dir/log" '"sip listening"'
	ADDR=$(sed -n 's/.*"sip listening".*"udp":"\([^"]*\)".*/\1/p' "$dir/log" | head -n 1)
}

# server_cpu prints the server's CPU time so far, in clock ticks.
server_cpu() {
	awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"
}

stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
}

# p99 FILE RTD: the 99th percentile (ms) of response-time RTD in a sipp rtt file.
p99() {
	awk -F';' -v r="$2" 'NR > 1 && $3 == r { print $2 }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; print v[i] }'
}

# run_sipp LABEL SCENARIO RATE SECONDS: one sipp run against ADDR; appends a summary row.
run_sipp() {
	label=$1 scenario=$2 rate=$3 secs=$4
	dir="$OUT/$label-r$rate-s$secs"
	mkdir -p "$dir"
	calls=$((rate * secs))
	cpu0=$(server_cpu)
	# sipp's own -timeout has been seen to hang once; timeout(1) is the hard stop.
	(cd "$dir" && timeout -k 10 $((secs + 90)) sipp "$ADDR" -sf "$ROOT/bench/sipp/$scenario" -i 127.0.0.1 -p 0 \
		-r "$rate" -m "$calls" -l $((rate * 5)) -nostdin -timeout $((secs + 60))s \
		-trace_stat -stf stat.csv -fd 3600 -trace_rtt -rtt_freq 1 -trace_err \
		>sipp.out 2>&1) || true
	cpu1=$(server_cpu)
	last=$(tail -n 1 "$dir/stat.csv")
	field() { echo "$last" | cut -d';' -f"$1"; }
	created=$(field 13)
	ok=$(field 16)
	failed=$(field 18)
	retrans=$(field 58)
	# StartTime and CurrentTime end with the epoch in microseconds: the run's exact length.
	t0=$(field 1 | awk '{ print $NF }')
	t1=$(field 3 | awk '{ print $NF }')
	secs_elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	achieved=$(awk -v n="$ok" -v s="$secs_elapsed" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }')
	rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -n 1)
	p1=- p2=-
	if [ -n "$rtt" ]; then
		p1=$(p99 "$rtt" 1)
		p2=$(p99 "$rtt" 2)
	fi
	cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$ok" -v hz="$(getconf CLK_TCK)" 'BEGIN { if (n > 0) printf "%.3f", (b - a) * 1000 / hz / n; else print "-" }')
	printf '%-30s %6s %7s %8s %8s %7s %8s %9s %9s %8s\n' "$label" "$rate" "$secs_elapsed" "$created" "$ok" "$failed" "$retrans" "$achieved" "$p1/$p2" "$cpu" | tee -a "$SUMMARY"
	LAST_FAILED=$failed
	LAST_RETRANS=$retrans
	LAST_ACHIEVED=$achieved
}

# ramp LABEL SCENARIO: short steps at rising rates until one is not clean; sets BEST to the
# highest clean rate (0 when none was).
ramp() {
	BEST=0
	for r in $STEPS; do
		run_sipp "$1-step" "$2" "$r" "$STEP_SECONDS"
		if [ "$LAST_FAILED" != "0" ] || [ "$LAST_ACHIEVED" = "-" ] || [ "$LAST_ACHIEVED" -lt $((r * 95 / 100)) ] ||
			[ "$LAST_RETRANS" -gt $((r * STEP_SECONDS / 100)) ]; then
			break
		fi
		BEST=$r
	done
}

# measure LABEL SCENARIO: ramp, then sustain the highest clean rate.
measure() {
	ramp "$1" "$2"
	rate=${RATE:-$BEST}
	if [ "$rate" = 0 ]; then
		rate=$(echo "$STEPS" | cut -d' ' -f1)
	fi
	run_sipp "$1" "$2" "$rate" "$SECONDS_SUSTAINED"
}

{
	echo "SIP benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -n 1), $(go version | cut -d' ' -f3)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews every figure)"
	echo "calls/s = successful calls / elapsed seconds; p99 = response time (ms, sipp's resolution) of INVITE->final / BYE->200"
	echo "cpu = the server's CPU time (user+system) per successful call, in ms: less sensitive to other load than calls/s"
	printf '%-30s %6s %7s %8s %8s %7s %8s %9s %9s %8s\n' run rate secs created ok failed retrans calls/s p99ms cpu
	echo "(rows named -step are the ramp; the row without -step is the sustained run)"
} | tee "$SUMMARY"

for mode in answer redirect; do
	scenario=uac_answer_bye.xml
	[ "$mode" = redirect ] && scenario=uac_redirect.xml
	start_uas "$mode"
	measure "sipuas-$mode" "$scenario"
	stop_server
	if [ "$HAVE_CALLCTX" = 1 ]; then
		start_callctx "$mode"
		measure "callctx-$mode" "$scenario"
		stop_server
	fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$SUMMARY"
echo "raw results: $OUT" | tee -a "$SUMMARY"
