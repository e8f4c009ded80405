#!/bin/sh
# bench-sip.sh measures SIP calls per second with sipp as the UAC, on loopback, in one run:
#   1. the anchors: a bare sipgo UAS (bench/sipuas) in answer and in redirect mode, and
#      Kamailio (Debian's package) answering INVITE with a stateless 302 whose Contact carries
#      the context it keeps in an htable (a config generated below);
#   2. callctx's SIP bridge in answer+BYE mode (the INVITE's context written as the call's
#      session, the BYE ending it: two group-committed writes) and in redirect mode (one
#      write: the call is recorded ended with the 302), with the default configuration.
#   3. callctx's answer + BYE once more, on a new server with a new database, offered the
#      rate it is meant to sustain (4,000 calls/s) for SIP_BENCH_SECONDS.
#   4. callctx's redirect past its limit: 1.5 × the rate it sustained, for 20 s (the
#      "-overload" row: how many calls it still redirects, how many it refuses).
# Every server listens on a free loopback port. Each first gets short steps at rising rates;
# a step is clean when no call failed, its calls were answered at 95% of the offered rate or
# more (counted until 99% of them were: see rate99) and at most 1% of the calls needed a
# retransmission (a step that is not is tried once more). Then the highest clean
# rate (or SIP_BENCH_RATE) is sustained for SIP_BENCH_SECONDS (default 60), and when that
# is not clean by the same rule, the step below it (twice at most). The summary
# goes to stdout and to bench-results/sip-<time>/summary.txt, ending with the ratios to
# the anchors; sipp's raw files stay next to it.
#
# sipp asks for SIP_BENCH_SIPP_BUFFER bytes of socket buffer (-buff_size; the kernel caps it at
# net.core.rmem_max and wmem_max, printed in the header). sipp's own default, 64 KB, is less
# than Linux's: with the server and sipp sharing two cores, sipp's socket overflowed whenever
# the server's answers came in a burst while sipp waited for a CPU, and the answers the kernel
# dropped there came back as retransmissions that were the load generator's, not the server's
# (each run's "drops" column: the machine's UDP receive-buffer errors during the run).
#
# Environment: SIP_BENCH_SECONDS (60), SIP_BENCH_RATE (force the sustained rate),
# SIP_BENCH_STEPS_ANSWER ("1000 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000 12000"),
# SIP_BENCH_STEPS_REDIRECT ("2000 4000 4500 5000 5500 6000 8000 10000 11000 12000 14000 16000
# 18000 20000 24000 28000 32000 36000 40000"), SIP_BENCH_STEP_SECONDS (10),
# SIP_BENCH_SIPP_BUFFER (4194304).
set -eu

cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/ensure-sipp.sh
./scripts/ensure-apt.sh kamailio /usr/sbin/kamailio

SECONDS_SUSTAINED=${SIP_BENCH_SECONDS:-60}
RATE=${SIP_BENCH_RATE:-}
STEPS_ANSWER=${SIP_BENCH_STEPS_ANSWER:-"1000 2000 2500 3000 3500 4000 5000 6000 7000 8000 10000 12000"}
STEPS_REDIRECT=${SIP_BENCH_STEPS_REDIRECT:-"2000 4000 4500 5000 5500 6000 8000 10000 11000 12000 14000 16000 18000 20000 24000 28000 32000 36000 40000"}
STEP_SECONDS=${SIP_BENCH_STEP_SECONDS:-10}
SIPP_BUFFER=${SIP_BENCH_SIPP_BUFFER:-4194304}
OVERLOAD_SECONDS=20
HZ=$(getconf CLK_TCK) # the clock ticks of /proc/<pid>/stat's CPU times, per second
ANSWER_TARGET=4000 # answer + BYE calls/s callctx is meant to sustain with no failure (docs/performance.md)

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

# start_callctx MODE [NAME]: start callctx with its SIP bridge in MODE, in a directory of its
# own (callctx-NAME, NAME defaulting to MODE) with a new database, and set ADDR and SERVER_PID.
start_callctx() {
	dir="$OUT/callctx-${2:-$1}"
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
	SERVER_DATA=$dir/data
	PIDS="$PIDS $SERVER_PID"
	wait_for_line "$dir/log" '"sip listening"'
	ADDR=$(sed -n 's/.*"sip listening".*"udp":"\([^"]*\)".*/\1/p' "$dir/log" | head -n 1)
}

# server_cpu prints the server's CPU time so far, in clock ticks: its own and its
# children's (Kamailio's workers are processes).
server_cpu() {
	total=0
	for p in $SERVER_PID $(pgrep -P "$SERVER_PID" || true); do
		t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		total=$((total + t))
	done
	echo "$total"
}

# udp_drops prints the machine's count of UDP datagrams dropped on a full receive buffer so
# far (RcvbufErrors in /proc/net/snmp).
udp_drops() {
	awk '/^Udp:/ { n++; if (n == 2) { print $6; exit } }' /proc/net/snmp
}

# settle waits (30 s at most) until the server has been idle for a second: below 5% of a
# core. A run that overloaded it leaves work behind (answers owed, retransmissions arriving,
# transactions timing out), and the next run would pay for it.
settle() {
	for _ in $(seq 30); do
		before=$(server_cpu)
		sleep 1
		[ $(($(server_cpu) - before)) -ge $((HZ / 20)) ] || return 0
	done
}

# free_udp_port prints a loopback UDP port nothing listens on (a server started on it
# right after may still lose a race; start_kamailio then tries another).
free_udp_port() {
	while :; do
		port=$(awk -v s="$(date +%N)" 'BEGIN { srand(s); print 20000 + int(rand() * 40000) }')
		if ! ss -Hlun "sport = :$port" | grep -q .; then
			echo "$port"
			return
		fi
	done
}

# start_kamailio: start Kamailio with a generated config (stateless 302 carrying the
# X-Customer-ID it stores in an htable, as callctx stores the session) and set ADDR and
# SERVER_PID. Two worker processes: one per core, as callctx has GOMAXPROCS 2.
start_kamailio() {
	dir="$OUT/kamailio"
	mkdir -p "$dir"
	for try in 1 2 3 4 5; do
		port=$(free_udp_port)
		cat >"$dir/kamailio.cfg" <<CFG
#!KAMAILIO
debug=1
log_stderror=yes
fork=yes
children=2
auto_aliases=no
listen=udp:127.0.0.1:$port
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "sl.so"
loadmodule "textops.so"
loadmodule "htable.so"
loadmodule "pv.so"
modparam("htable", "htable", "ctx=>size=14;autoexpire=300;")
request_route {
	if (is_method("INVITE")) {
		\$sht(ctx=>\$ci) = \$hdr(X-Customer-ID);
		append_to_reply("Contact: <sip:agent@192.0.2.10:5060?X-Customer-ID=\$sht(ctx=>\$ci)>\\r\\n");
		sl_send_reply("302", "Moved Temporarily");
		exit;
	}
	if (is_method("ACK")) {
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
}
CFG
		/usr/sbin/kamailio -DD -E -f "$dir/kamailio.cfg" -m 64 -M 8 -P "$dir/kamailio.pid" >"$dir/log" 2>&1 &
		SERVER_PID=$!
		sleep 1
		if kill -0 "$SERVER_PID" 2>/dev/null; then
			PIDS="$PIDS $SERVER_PID"
			ADDR=127.0.0.1:$port
			return
		fi
	done
	echo "bench-sip: kamailio did not start:" >&2
	cat "$dir/log" >&2
	exit 1
}

# stop_server stops the server and removes callctx's database: an answer ramp's grows to
# gigabytes, and a few runs would fill the disk.
stop_server() {
	kill "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	if [ -n "${SERVER_DATA:-}" ]; then
		rm -rf "$SERVER_DATA"
		SERVER_DATA=
	fi
}

# p99 FILE RTD: the 99th percentile (ms) of response-time RTD in a sipp rtt file.
p99() {
	awk -F';' -v r="$2" 'NR > 1 && $3 == r { print $2 }' "$1" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * 0.99); if (i < NR * 0.99) i++; if (i < 1) i = 1; print v[i] }'
}

# rate99 RTT_FILE OK: the calls answered per second until 99% of the OK successful calls had
# their last response (the scenario's last response time, one row per call in sipp's rtt file,
# in ms since sipp started). Up to 1% of a clean step's calls may need a retransmission, which
# is 500 ms late by design (Timer A); the run's full length would let one of those among the
# last calls decide a 5 s step's rate on its own, and a server that falls behind is as slow to
# answer 99% of its calls as all of them. "-" when the file has too few rows.
rate99() {
	awk -F';' 'NR > 1 { d[NR] = $1; r[NR] = $3; if ($3 > m) m = $3 } END { for (i in d) if (r[i] == m) print d[i] }' "$1" | sort -n |
		awk -v ok="$2" '{ v[NR] = $1 } END { n = int(ok * 0.99); if (n < 1 || n > NR || v[n] <= 0) { print "-"; exit } printf "%.0f", n * 1000 / v[n] }'
}

# run_sipp LABEL SCENARIO RATE SECONDS: one sipp run against ADDR; appends a summary row.
run_sipp() {
	label=$1 scenario=$2 rate=$3 secs=$4
	dir="$OUT/$label-r$rate-s$secs"
	[ ! -e "$dir" ] || dir="$dir-again" # a step tried once more keeps its own files
	mkdir -p "$dir"
	calls=$((rate * secs))
	settle
	cpu0=$(server_cpu)
	drops0=$(udp_drops)
	# sipp's own -timeout has been seen to hang once; timeout(1) is the hard stop.
	(cd "$dir" && timeout -k 10 $((secs + 90)) sipp "$ADDR" -sf "$ROOT/bench/sipp/$scenario" -i 127.0.0.1 -p 0 \
		-r "$rate" -m "$calls" -l $((rate * 5)) -nostdin -timeout $((secs + 60))s -buff_size "$SIPP_BUFFER" \
		-trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err \
		>sipp.out 2>&1) || true
	cpu1=$(server_cpu)
	drops=$(($(udp_drops) - drops0))
	last=$(tail -n 1 "$dir/stat.csv")
	field() { echo "$last" | cut -d';' -f"$1"; }
	created=$(field 13)
	ok=$(field 16)
	failed=$(field 18)
	retrans=$(field 58)
	# StartTime and CurrentTime end with the epoch in microseconds. The run lasts until the
	# first once-a-second row that has every successful call counted: sipp may linger after it
	# on a few calls that never got an answer, up to the hard timeout, and that wait is not the
	# server's rate.
	t0=$(field 1 | awk '{ print $NF }')
	t1=$(awk -F';' -v ok="$ok" 'NR > 1 && $16 == ok { n = split($3, a, " "); print a[n]; exit }' "$dir/stat.csv")
	[ -n "$t1" ] || t1=$(field 3 | awk '{ print $NF }')
	secs_elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	rtt=$(ls "$dir"/*_rtt.csv 2>/dev/null | head -n 1)
	p1=- p2=-
	achieved=-
	if [ -n "$rtt" ]; then
		p1=$(p99 "$rtt" 1)
		p2=$(p99 "$rtt" 2)
		achieved=$(rate99 "$rtt" "$ok")
	fi
	if [ "$achieved" = - ]; then
		achieved=$(awk -v n="$ok" -v s="$secs_elapsed" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print "-" }')
	fi
	cpu=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$ok" -v hz="$HZ" 'BEGIN { if (n > 0) printf "%.3f", (b - a) * 1000 / hz / n; else print "-" }')
	printf '%-30s %6s %7s %8s %8s %7s %8s %7s %9s %9s %8s\n' "$label" "$rate" "$secs_elapsed" "$created" "$ok" "$failed" "$retrans" "$drops" "$achieved" "$p1/$p2" "$cpu" | tee -a "$SUMMARY"
}

# clean_row ROW: "clean" when a summary row (run_sipp's) was: no failed call, answered at 95%
# of the offered rate or more, at most 1% of its calls retransmitted; else why it was not.
clean_row() {
	echo "$1" | awk '{ if ($6 == 0 && $9 != "-" && $9 * 100 >= $2 * 95 && $7 * 100 <= $5) print "clean"; else printf "not clean: %d failed, %.1f%% retransmitted, %s calls/s of %s\n", $6, ($5 > 0 ? $7 * 100 / $5 : 0), $9, $2 }'
}

# last_clean: whether the last run_sipp was clean.
last_clean() {
	[ "$(clean_row "$(tail -n 1 "$SUMMARY")")" = clean ]
}

# ramp LABEL SCENARIO: short steps at rising rates (STEPS) until one is not clean twice in a
# row (a step is tried again once: on this shared machine a burst of other work can spoil
# one); sets BEST to the highest clean rate (0 when none was).
ramp() {
	BEST=0
	for r in $STEPS; do
		clean=0
		for try in 1 2; do
			run_sipp "$1-step" "$2" "$r" "$STEP_SECONDS"
			if last_clean; then
				clean=1
				break
			fi
		done
		[ "$clean" = 1 ] || break
		BEST=$r
	done
}

# measure LABEL SCENARIO: ramp, then sustain the highest clean rate. Five seconds at a rate
# are easier than a minute: a sustained run that is not clean is run again at the step below,
# twice at most, so that the last row of LABEL is the highest rate the server sustained
# cleanly (unless SIP_BENCH_RATE forces the rate, or even the lowest try was not clean).
measure() {
	ramp "$1" "$2"
	rate=${RATE:-$BEST}
	if [ "$rate" = 0 ]; then
		rate=$(echo "$STEPS" | cut -d' ' -f1)
	fi
	tries=3
	while :; do
		run_sipp "$1" "$2" "$rate" "$SECONDS_SUSTAINED"
		tries=$((tries - 1))
		if [ -n "$RATE" ] || [ "$tries" = 0 ] || last_clean; then
			break
		fi
		lower=$(for r in $STEPS; do [ "$r" -lt "$rate" ] && echo "$r"; done | tail -n 1)
		[ -n "$lower" ] || break
		rate=$lower
	done
}

{
	echo "SIP benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -n 1), $(/usr/sbin/kamailio -v 2>&1 | head -n 1 | cut -d' ' -f2,3), $(go version | cut -d' ' -f3)"
	echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on this machine skews every figure)"
	echo "calls/s = successful calls per second until 99% of them were answered (secs: until all were); p99 = response time (ms, sipp's resolution) of INVITE->final / BYE->200"
	echo "cpu = the server's CPU time (user+system) per successful call, in ms: less sensitive to other load than calls/s"
	echo "sipp's socket buffer: $SIPP_BUFFER bytes asked, net.core.rmem_max $(cat /proc/sys/net/core/rmem_max), wmem_max $(cat /proc/sys/net/core/wmem_max); drops = UDP datagrams the kernel dropped on a full receive buffer during the run, machine-wide"
	printf '%-30s %6s %7s %8s %8s %7s %8s %7s %9s %9s %8s\n' run rate secs created ok failed retrans drops calls/s p99ms cpu
	echo "(rows named -step are the ramp; rows without -step are the sustained runs, the last of each the one that counts)"
} | tee "$SUMMARY"

# sustained LABEL: the calls/s, failed calls and CPU ms per call of LABEL's sustained run.
sustained() {
	grep "^$1 " "$SUMMARY" | tail -n 1 | awk '{ print $9, $6, $11 }'
}

STEPS=$STEPS_ANSWER
start_uas answer
measure sipuas-answer uac_answer_bye.xml
stop_server
if [ "$HAVE_CALLCTX" = 1 ]; then
	start_callctx answer
	measure callctx-answer uac_answer_bye.xml
	stop_server
	# The target itself: answer + BYE at ANSWER_TARGET calls/s, sustained, on a new server and
	# database.
	start_callctx answer answer-target
	run_sipp callctx-answer-target uac_answer_bye.xml "$ANSWER_TARGET" "$SECONDS_SUSTAINED"
	stop_server
fi
STEPS=$STEPS_REDIRECT
start_uas redirect
measure sipuas-redirect uac_redirect.xml
stop_server
start_kamailio
measure kamailio-redirect uac_redirect.xml
stop_server
if [ "$HAVE_CALLCTX" = 1 ]; then
	start_callctx redirect
	measure callctx-redirect uac_redirect.xml
	# Past its limit: half as much again as the rate it sustained, for OVERLOAD_SECONDS on the
	# same server. What counts is that it goes on answering about as many calls as at its
	# limit, and refuses the rest at once (503), rather than collapsing.
	over=$(grep '^callctx-redirect ' "$SUMMARY" | tail -n 1 | awk '{ printf "%d", $2 * 3 / 2000 }')
	if [ "${over:-0}" -gt 0 ]; then # none when no step was clean
		run_sipp callctx-redirect-overload uac_redirect.xml "$((over * 1000))" "$OVERLOAD_SECONDS"
	fi
	stop_server
fi

{
	echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "raw results: $OUT"
	if [ "$HAVE_CALLCTX" = 1 ]; then
		set -- $(sustained kamailio-redirect) $(sustained callctx-redirect) $(sustained sipuas-answer) $(sustained callctx-answer) $(sustained sipuas-redirect)
		kam=$1 ccr=$4 ccrcpu=$6 uas=$7 cca=${10} ccafail=${11} ccacpu=${12} uasr=${13}
		awk -v a="$cca" -v f="$ccafail" -v c="$ccacpu" -v u="$uas" 'BEGIN { printf "callctx answer+BYE: %s calls/s sustained, %s failed, %s ms CPU per call (%.2f × the sipgo UAS; target ≥ 4000 calls/s, 0 failed)\n", a, f, c, a / u }'
		set -- $(sustained callctx-answer-target)
		echo "callctx answer+BYE offered $ANSWER_TARGET calls/s for $SECONDS_SUSTAINED s: $1 calls/s, $2 failed, $3 ms CPU per call (target: $ANSWER_TARGET calls/s for 60 s, 0 failed)"
		awk -v r="$ccr" -v c="$ccrcpu" -v u="$uasr" -v k="$kam" 'BEGIN { printf "callctx redirect: %s calls/s sustained, %s ms CPU per call (%.2f × the sipgo UAS; target ≤ 0.15 ms per call)\n", r, c, r / u }'
		grep "^callctx-redirect-overload " "$SUMMARY" | tail -n 1 | awk -v s="$OVERLOAD_SECONDS" '{ printf "callctx redirect offered %s calls/s for %s s (overload): %s calls/s redirected, %d calls failed (refused 503, or unanswered), %d retransmitted\n", $2, s, $9, $6, $7 }'
		# Whether the sustained redirect was clean by the ramp's rule (no failed call, ≤ 1% of the
		# calls retransmitted, ≥ 95% of the offered rate done): its rate is the ratio's numerator.
		clean=$(clean_row "$(grep "^callctx-redirect " "$SUMMARY" | tail -n 1)")
		awk -v r="$ccr" -v k="$kam" -v c="$clean" 'BEGIN { printf "ratio to anchor: callctx redirect %.2f × Kamailio (target ≥ 0.5; the sustained run %s)\n", r / k, c }'
	fi
} | tee -a "$SUMMARY"
