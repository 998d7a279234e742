# Gatehouse — run `make help` for the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
TOOLS     := $(GO) tool -modfile=tools.go.mod
BUF       := $(TOOLS) buf
LISTEN    ?= 127.0.0.1:8470
DATA_DIR  ?= ./data
METRICS_ADDR ?= 127.0.0.1:9470
FUZZTIME  ?= 30s
BENCHTIME ?= 1s

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.PHONY: generate
generate: ## format and lint the protos, regenerate gen/
	$(BUF) format -w
	$(BUF) lint
	rm -rf gen
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
lint: ## gofmt, go vet, buf lint, buf breaking
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(BUF) lint
	$(MAKE) --no-print-directory breaking

.PHONY: test
test: check-generated lint ## everything CI runs: generated code fresh, lint, all tests with -race
	$(GO) test -race -count=1 ./...

.PHONY: build
build: ## build bin/gatehoused
	$(GO) build -o bin/gatehoused ./cmd/gatehoused

bin/grpcurl: tools.go.mod tools.go.sum
	$(GO) build -modfile=tools.go.mod -o bin/grpcurl github.com/fullstorydev/grpcurl/cmd/grpcurl

.PHONY: run
run: build bin/grpcurl ## run the daemon on $(LISTEN) with demo data in $(DATA_DIR)
	bin/gatehoused --listen $(LISTEN) --data-dir $(DATA_DIR) --demo --log-format text --metrics-addr $(METRICS_ADDR)

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each
	@for pkg in $$($(GO) list ./internal/...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

.PHONY: bench
bench: ## run the Go benchmarks with -benchmem
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./internal/...

.PHONY: clean
clean: ## remove build output (not the data directory)
	rm -rf bin
