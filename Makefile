# Gatehouse — run `make help` for the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
TOOLS     := $(GO) tool -modfile=tools.go.mod
BUF       := $(TOOLS) buf
# golangci-lint has a tool module of its own (lint.go.mod): its ~200
# dependencies do not move those of buf and the protoc plugins.
GOLANGCI_LINT := $(GO) tool -modfile=lint.go.mod golangci-lint
LISTEN    ?= 127.0.0.1:8470
DATA_DIR  ?= ./data
METRICS_ADDR ?= 127.0.0.1:9470
HTTP_ADDR ?= 127.0.0.1:8471
FUZZTIME  ?= 30s
SOAK_TIME ?= 10m
CRASH_TIME ?= 5m
FAULTS_TIME ?= 2m
BENCHTIME ?= 1s
# VERSION is stamped into both binaries (gatehoused --version, gatehouse --version).
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo devel)
LDFLAGS   := -X github.com/gatehouse-dev/gatehouse/internal/buildinfo.Stamp=$(VERSION)

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: generate
generate: ## format and lint the protos, regenerate gen/
	$(BUF) format -w
	$(BUF) lint
	rm -rf gen/gatehouse gen/gateway gen/openapiv2
	$(BUF) generate

.PHONY: check-generated
check-generated: generate ## fail when proto/ is unformatted or gen/ is stale
	@if [ -n "$$(git status --porcelain -- proto gen)" ]; then \
		echo "proto/ or gen/ changed after 'make generate'; commit the result:"; \
		git status --short -- proto gen; git --no-pager diff --stat -- proto gen; exit 1; fi

.PHONY: breaking
breaking: ## buf breaking against the main branch (skipped when it is not available)
	@if git rev-parse --verify -q main >/dev/null; then \
		$(BUF) breaking --against '.git#branch=main'; \
	else echo "breaking: no local main branch in this clone; skipped"; fi

.PHONY: lint
lint: ## gofmt, go vet, golangci-lint (.golangci.yml), buf lint, buf breaking
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...
	$(BUF) lint
	$(MAKE) --no-print-directory breaking
	$(MAKE) --no-print-directory check-large-files

# Build outputs must never be committed: any tracked file over 1 MB outside
# gen/ and testdata/ fails the lint (a binary once slipped in this way).
MAX_TRACKED_BYTES ?= 1048576
.PHONY: check-large-files
check-large-files: ## fail on a tracked file over 1 MB outside gen/ and testdata/
	@big=$$(git ls-files -z | grep -zv -e '^gen/' -e '/testdata/' | \
		xargs -0 -r stat -c '%s %n' 2>/dev/null | awk -v max=$(MAX_TRACKED_BYTES) '$$1 > max {print}'); \
		if [ -n "$$big" ]; then echo "tracked files over $(MAX_TRACKED_BYTES) bytes (build output? add it to .gitignore and git rm --cached it):"; echo "$$big"; exit 1; fi

.PHONY: test
test: check-generated lint chromium etcd ## everything CI runs: generated code fresh, lint, all tests with -race, a brief fuzz of every target
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz-smoke

# A fuzz target that finds a failure writes it to testdata/fuzz and fails
# again on the rerun (the new input is then part of its corpus); the rerun
# only absorbs the Go 1.26 fuzz coordinator's spurious "context deadline
# exceeded" at the -fuzztime boundary (golang/go#75804).
.PHONY: fuzz-smoke
fuzz-smoke: ## run every fuzz target for 3s (part of make test)
	@for pkg in $$($(GO) list ./internal/...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== fuzz $$pkg $$target (3s)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime 3s $$pkg >/dev/null 2>&1 || \
				$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime 3s $$pkg || exit 1; \
		done; \
	done

# The console's browser tests (cmd/gatehoused, TestConsole*) drive Debian's
# chromium; they skip when it cannot be found, and fail under CI=true.
.PHONY: chromium
chromium: ## install Debian's chromium for the console's browser tests when it is missing (apt-get, as root)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; else \
		echo "chromium not found: apt-get install -y chromium"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi

# Screenshots of the console's main pages for docs/console.md, taken by the
# browser tests against a daemon with demo data.
SCREENSHOT_DIR ?= docs/console
.PHONY: console-screenshots
console-screenshots: chromium ## write screenshots of the console's main pages to SCREENSHOT_DIR (default docs/console)
	mkdir -p $(SCREENSHOT_DIR)
	GATEHOUSE_TEST_SCREENSHOTS=$(abspath $(SCREENSHOT_DIR)) $(GO) test -count=1 -run '^TestConsoleScreenshots$$' ./cmd/gatehoused

.PHONY: build
build: cli ## build bin/gatehoused and the admin CLI bin/gatehouse (version from git describe, or VERSION=…)
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gatehoused ./cmd/gatehoused

.PHONY: install
install: ## install gatehoused and gatehouse into GOBIN (default: $(go env GOPATH)/bin), stamped with VERSION
	$(GO) install -ldflags '$(LDFLAGS)' ./cmd/gatehoused ./cmd/gatehouse
	@echo "installed gatehoused and gatehouse in $$(d=$$($(GO) env GOBIN); echo $${d:-$$($(GO) env GOPATH)/bin})"

# The etcd server (v3.7.3) builds from the module proxy through a tool
# directive in a module of its own (etcd.go.mod): `go install …@v3.7.3` is
# refused because etcd's server module has replace directives. Fault tests
# and `make run-cluster` run it as real processes.
.PHONY: etcd
etcd: bin/etcd ## build the etcd server bin/etcd from etcd.go.mod
bin/etcd: etcd.go.mod etcd.go.sum
	$(GO) build -modfile=etcd.go.mod -o bin/etcd go.etcd.io/etcd/server/v3

.PHONY: cli
cli: ## build the admin CLI bin/gatehouse
	$(GO) build -ldflags '$(LDFLAGS)' -o bin/gatehouse ./cmd/gatehouse

bin/grpcurl: tools.go.mod tools.go.sum
	$(GO) build -modfile=tools.go.mod -o bin/grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl

.PHONY: run
run: build bin/grpcurl ## run the daemon on $(LISTEN) (HTTP/JSON on $(HTTP_ADDR)) with demo data in $(DATA_DIR)
	bin/gatehoused --listen $(LISTEN) --http-addr $(HTTP_ADDR) --data-dir $(DATA_DIR) --demo --log-format text --metrics-addr $(METRICS_ADDR)

# run-cluster runs cmd/gatehouse-cluster: three etcd members (client ports
# 8480, 8482, 8484) and two replicas (gRPC 8472 and 8474, HTTP 8473 and
# 8475, metrics 9472 and 9474), so that it and make run fit side by side.
CLUSTER_DIR  ?= ./data-cluster
CLUSTER_ARGS ?=

.PHONY: run-cluster
run-cluster: build etcd bin/grpcurl ## run a three-member etcd cluster and two gatehoused replicas on it (gRPC 127.0.0.1:8472 and :8474) with demo data in $(CLUSTER_DIR) until Ctrl-C
	$(GO) build -o bin/gatehouse-cluster ./cmd/gatehouse-cluster
	bin/gatehouse-cluster --dir $(CLUSTER_DIR) $(CLUSTER_ARGS)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./internal/...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

.PHONY: soak
soak: ## run mixed load against the daemon for SOAK_TIME (default 10m); report goroutines and memory, fail on growth
	SOAK_TIME=$(SOAK_TIME) $(GO) test -count=1 -timeout 0 -v -run '^TestSoak$$' ./cmd/gatehoused

.PHONY: crash
crash: ## kill the daemon at random points during writes for CRASH_TIME (default 5m), on bbolt and on etcd, and check the store after each
	CRASH_TIME=$(CRASH_TIME) $(GO) test -count=1 -timeout 0 -v -run '^TestCrash_KillDuringWrites(Etcd)?$$' ./cmd/gatehoused

# The fault tests run a few seconds each in make test; here each repeats
# its faults for FAULTS_TIME and stops by itself (-timeout is a backstop).
.PHONY: faults
faults: etcd ## kill etcd members, the leading replica and (make crash on etcd) gatehoused, for FAULTS_TIME each (default 2m); docs/operations.md "Fault tests on etcd"
	FAULTS_TIME=$(FAULTS_TIME) CRASH_TIME=$(FAULTS_TIME) $(GO) test -count=1 -timeout 60m -v -run '^(TestFaults_|TestCrash_KillDuringWritesEtcd$$)' ./cmd/gatehoused

# Benchmarks, generated data and the load test (docs/performance.md).
BENCH             ?= .
BENCHPKG          ?= ./internal/...
BENCHCOUNT        ?= 1
SCALE             ?= large
SEED              ?= 1
LOADTEST_DIR      ?= $(or $(TMPDIR),/tmp)/gatehouse-loadtest-$(SCALE)-$(SEED)
LOADTEST_LISTEN   ?= 127.0.0.1:8479
LOADTEST_DURATION ?= 60s
LOADTEST_LOG_LEVEL ?= warn
LOADTEST_ARGS     ?=
# The etcd mode measures the decision path's CPU on both stores; shedding
# (measured by make overload) would turn a closed loop of 50 callers'
# occasional waits into refused calls, which it counts as failures.
LOADTEST_ETCD_DAEMON_ARGS ?= --shed-queue-target=0
LOADTEST_OVERLOAD ?= 20,200,2000
LOADTEST_METRICS  ?= 127.0.0.1:9479
LOADTEST_DAEMON_ARGS ?=

.PHONY: bench
bench: ## run the Go benchmarks with -benchmem (BENCH, BENCHPKG, BENCHTIME, BENCHCOUNT); decision engine: BENCHPKG=./internal/policy
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) $(BENCHPKG)

# gendata writes its own directory, not make run's store (DATA_DIR):
# serve it with make run DATA_DIR=$(GENDATA_DIR).
GENDATA_DIR       ?= ./data-gen-$(SCALE)-$(SEED)

.PHONY: gendata
gendata: ## fill GENDATA_DIR (default ./data-gen-SCALE-SEED) with a generated tenant population (SCALE=large|small|tiny, SEED); reuses one generated before
	$(GO) run ./cmd/gatehouse-loadtest gendata -data-dir $(GENDATA_DIR) -scale $(SCALE) -seed $(SEED)

.PHONY: loadtest
loadtest: ## load-test a daemon on a generated large store in LOADTEST_DIR: baselines (bare grpc-go health, daemon health), CheckFeature, batches, writes; then make overload; fails on a wrong answer, a failed call or a missed target (LOADTEST_ARGS=-fail-on-miss=false to explore)
	@status=0; \
	$(MAKE) --no-print-directory loadtest-run LOADTEST_RUN_ARGS='-duration $(LOADTEST_DURATION) -json $(LOADTEST_DIR)/loadtest.json $(LOADTEST_ARGS)' || status=$$?; \
	$(MAKE) --no-print-directory overload || status=$$((status ? status : 1)); \
	bin/gatehouse-loadtest reflect -data-dir $(LOADTEST_DIR) -json $(LOADTEST_DIR)/reflect.json || status=$$((status ? status : 1)); \
	exit $$status

.PHONY: overload
overload: ## only the overload mode of the load test: CheckFeature at LOADTEST_OVERLOAD callers (default 20,200,2000) against a daemon with default flags, the daemon and the load tool pinned to separate cores; judged on probe callers in a process of their own; ends with PASS or FAIL
	$(MAKE) --no-print-directory loadtest-run LOADTEST_PIN=1 LOADTEST_RUN_ARGS='-baseline=false -overload $(LOADTEST_OVERLOAD) -overload-rounds 3 -metrics-addr $(LOADTEST_METRICS) -json $(LOADTEST_DIR)/overload.json $(LOADTEST_ARGS)'

.PHONY: hostile
hostile: ## the hostile mode of the load test: a normal tenant's verified CheckFeature load alone and alongside hostile callers, alternating, the daemon and the load tool pinned to separate cores; ends with PASS or FAIL
	$(MAKE) --no-print-directory loadtest-run LOADTEST_PIN=1 LOADTEST_RUN_ARGS='-baseline=false -hostile -json $(LOADTEST_DIR)/hostile.json $(LOADTEST_ARGS)'

.PHONY: loadtest-etcd
loadtest-etcd: $(if $(GATEHOUSE_ETCD_BIN),,bin/etcd) ## the etcd mode of the load test: a 3-member etcd of real processes on loopback holding the large store, replicas on it against a daemon on bbolt (CheckFeature CPU, write latency, replica-to-replica visibility, start-up, memory); fails on a wrong answer or a missed target
	$(GO) build -o bin/gatehoused ./cmd/gatehoused
	$(GO) build -o bin/gatehouse-loadtest ./cmd/gatehouse-loadtest
	bin/gatehouse-loadtest gendata -data-dir $(LOADTEST_DIR) -scale $(SCALE) -seed $(SEED)
	bin/gatehouse-loadtest etcd -data-dir $(LOADTEST_DIR) -gatehoused bin/gatehoused -etcd-bin $(or $(GATEHOUSE_ETCD_BIN),bin/etcd) -json $(LOADTEST_DIR)/etcd.json -daemon-args '$(LOADTEST_ETCD_DAEMON_ARGS)' $(LOADTEST_ARGS)

# loadtest-run generates (or re-stamps) the store, starts the daemon with
# default flags and runs gatehouse-loadtest run against it. With
# LOADTEST_PIN set, the daemon runs on LOADTEST_DAEMON_CPUS and the load
# tool on LOADTEST_CLIENT_CPUS (taskset, Debian util-linux), so that a
# queue forms at the server, where it can be measured, rather than in the
# load tool's own scheduling.
LOADTEST_PIN         ?=
LOADTEST_DAEMON_CPUS ?= 0
LOADTEST_CLIENT_CPUS ?= 1
.PHONY: loadtest-run
loadtest-run:
	$(GO) build -o bin/gatehoused ./cmd/gatehoused
	$(GO) build -o bin/gatehouse-loadtest ./cmd/gatehouse-loadtest
	bin/gatehouse-loadtest gendata -data-dir $(LOADTEST_DIR) -scale $(SCALE) -seed $(SEED)
	@pin_daemon=; pin_client=; \
	if [ -n "$(LOADTEST_PIN)" ]; then \
		command -v taskset >/dev/null || { echo "taskset not found (Debian: apt-get install util-linux)" >&2; exit 1; }; \
		pin_daemon="taskset -c $(LOADTEST_DAEMON_CPUS)"; pin_client="taskset -c $(LOADTEST_CLIENT_CPUS)"; \
	fi; \
	start=$$(date +%s%N); \
	$$pin_daemon bin/gatehoused --listen $(LOADTEST_LISTEN) --data-dir $(LOADTEST_DIR) --log-level $(LOADTEST_LOG_LEVEL) --metrics-addr $(LOADTEST_METRICS) $(LOADTEST_DAEMON_ARGS) \
		2>$(LOADTEST_DIR)/gatehoused.log & pid=$$!; \
	trap 'kill $$pid 2>/dev/null || true; wait $$pid 2>/dev/null || true' EXIT; \
	echo "gatehoused pid $$pid on $(LOADTEST_LISTEN), store $(LOADTEST_DIR), log $(LOADTEST_DIR)/gatehoused.log"; \
	$$pin_client bin/gatehouse-loadtest run -addr $(LOADTEST_LISTEN) -manifest $(LOADTEST_DIR) -pid $$pid -started-at $$start $(LOADTEST_RUN_ARGS)

.PHONY: clean
clean: ## remove build output (not the data directory)
	rm -rf bin
