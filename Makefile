# otelcol-audit — the two commands a new user needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/otelcol-audit
export CGO_ENABLED := 1

.PHONY: all build run test unit fuzz check-generated check-format generate bench bench-micro soak deps clean

all: build

## deps: install what the build needs on a fresh Debian machine (a C compiler for DuckDB's cgo)
deps:
	@./scripts/install-deps.sh

## build: the collector, the auditctl command line and the auditload load generator
build: deps
	$(GO) build -o $(BIN) ./cmd/otelcol-audit
	$(GO) build -o bin/auditctl ./cmd/auditctl
	$(GO) build -o bin/auditload ./cmd/auditload

## run: build and start the collector on its embedded default configuration
run: build
	./$(BIN)

## test: every test (unit, component, end-to-end) plus generated-code and format checks,
## and every fuzz target for a bounded time
test: build check-generated check-format
	$(GO) vet ./...
	OTELCOL_AUDIT_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz

## fuzz: each fuzz target (every `func Fuzz…` in a _test.go) for FUZZTIME, from its seed corpus
FUZZTIME ?= 15s
fuzz:
	@grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u | while read -r dir; do \
		for target in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go | cut -c6-); do \
			echo "fuzz $$dir $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$dir || exit 1; \
		done; \
	done

## generate: regenerate cmd/otelcol-audit/components.go from builder-config.yaml, and
## each component's internal/metadata package and generated tests from its metadata.yaml
generate:
	./scripts/gen-components.sh
	./scripts/gen-metadata.sh

check-generated:
	./scripts/gen-components.sh --check
	./scripts/gen-metadata.sh --check

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: the README's figures, as ratios against baselines measured in the same run: the
## built collector on bench/configs driven by auditload over loopback, the query
## benchmark on 1M and 10M spans, verification vs sha256sum (cmd/auditbench; about 45
## minutes: the two 5-minute memory runs, the 10M query runs, and the first time the 10M
## trail's generation). Results go to bench/results/<date>-<commit>.md and .json.
## AUDIT_BENCH_RSS_DURATION=2m and AUDIT_BENCH_SPANS=1000000 for a shorter run;
## BENCH_FLAGS="-only memory" for one figure.
bench: build
	$(GO) build -o bin/auditbench ./cmd/auditbench
	./bin/auditbench $(BENCH_FLAGS)

## bench-micro: every package's Go benchmarks (in-process, one pass each)
bench-micro: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

## soak: the long forms of the reliability tests on the built binary (50 kill -9 cycles,
## 3 disk-full rounds, 20 rounds of the abuse corpus, tampering with a larger trail)
soak: build
	OTELCOL_AUDIT_SOAK=1 OTELCOL_AUDIT_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 2h -v \
		-run '^(TestCrashRecovery|TestDiskFull|TestReceiverAbuse|TestAuditLoadAgainstCollector|TestTamperUnderLoad)$$' ./cmd/otelcol-audit

clean:
	rm -rf bin build
