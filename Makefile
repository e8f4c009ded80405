# make test   — everything CI runs: installs what the tests need, checks
#               formatting, vet and staticcheck, runs every test with the race
#               detector.
# make lint   — staticcheck (the pinned version below, installed into .tools/).
# make bench  — the Go, flow and HTTP benchmarks (docs/performance.md).
# make bench-sip — the SIP bridge benchmark: sipp against callctx and a bare sipgo UAS.
# make bench-redis — callctx on Redis beside redis-benchmark and bbolt.
# make bench-diagram — laying out a 200-node flow diagram, beside native dot.
# make soak  — the SIGKILL soak of make test (100 cycles) run for 1000 cycles
#               (SOAK_CYCLES=N for another count).
# Figures and what each benchmark measures: docs/performance.md.

GO ?= go

.PHONY: console-assets test deps fmt-check vet lint unit bench bench-http bench-go bench-flows bench-sip bench-redis bench-diagram soak

test: deps fmt-check vet lint unit

deps:
	@./scripts/ensure-deps.sh

fmt-check:
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './node_modules/*' -not -path './.tools/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck, pinned; a new version installs into a directory of its own, so
# changing the pin is all an upgrade takes and a second run installs nothing.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := .tools/staticcheck-$(STATICCHECK_VERSION)/staticcheck

$(STATICCHECK):
	GOBIN=$(abspath $(dir $@)) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: $(STATICCHECK)
	$(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 15m ./...

# The crash test of make test, longer: SIGKILL under 8 writers, restart, every
# acknowledged write checked, bbolt's check every tenth cycle.
SOAK_CYCLES ?= 1000
soak:
	CALLCTX_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 120m -run '^TestCrash$$' -v ./cmd/callctx/

bench: bench-go bench-flows bench-http

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./session/... ./api/...

# Trigger evaluation, flow/next latency with 64 concurrent
# calls over HTTP, automation deliveries per second to a local receiver.
bench-flows:
	$(GO) test -run '^$$' -bench 'BenchmarkTrigger_Eval' -benchmem ./triggers/
	$(GO) test -run '^$$' -bench 'BenchmarkFlowNext' -benchtime 20000x ./cmd/callctx/
	$(GO) test -run '^$$' -bench 'BenchmarkDelivery' -benchtime 5000x ./flow/
	$(GO) test -run '^$$' -bench 'BenchmarkCheck' -benchtime 20x -benchmem ./cmd/callctx/

# The HTTP write and read against the bare gin + bbolt anchor, then the
# write rate against long histories and many sessions.
bench-http:
	$(GO) run ./bench/httpbench
	$(GO) run ./bench/httpbench -aging

bench-sip:
	./scripts/bench-sip.sh

bench-redis: deps
	$(GO) run ./bench/redisbench -out bench-results/redis.txt

# go-graphviz (Graphviz in WebAssembly, in process) against Debian's native
# dot on the same 200-node graph.
bench-diagram:
	@./scripts/ensure-apt.sh graphviz dot
	$(GO) test -run '^$$' -bench 'BenchmarkLayout200' -benchtime 20x ./diagram/

# The console's chart library (uPlot), at the version package-lock.json
# pins, copied from node_modules into the console the binary embeds: so that
# `go run ./cmd/callctx serve` needs nothing but Go. A test checks that the
# copies match what npm ci installed.
console-assets: deps
	cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css api/console/
	cp node_modules/uplot/LICENSE api/console/uPlot.LICENSE.txt
