# otelcol-audit — the two commands a new user needs are `make run` and `make test`.
GO        ?= go
BIN       := bin/otelcol-audit
export CGO_ENABLED := 1

.PHONY: all build run test unit check-generated check-format generate bench soak deps clean

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

## test: every test (unit, component, end-to-end) plus generated-code and format checks
test: build check-generated check-format
	$(GO) vet ./...
	OTELCOL_AUDIT_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 30m ./...

## generate: regenerate cmd/otelcol-audit/components.go from builder-config.yaml
generate:
	./scripts/gen-components.sh

check-generated:
	./scripts/gen-components.sh --check

check-format:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

## bench: the benchmarks, as ratios against baselines measured in the same run
bench: deps
	$(GO) test -run '^$$' -bench . -benchmem ./...

## soak: the long forms of the reliability tests on the built binary (50 kill -9 cycles,
## 3 disk-full rounds, 20 rounds of the abuse corpus)
soak: build
	OTELCOL_AUDIT_SOAK=1 OTELCOL_AUDIT_BIN=$(abspath $(BIN)) $(GO) test -count=1 -timeout 2h -v \
		-run '^(TestCrashRecovery|TestDiskFull|TestReceiverAbuse|TestAuditLoadAgainstCollector)$$' ./cmd/otelcol-audit

clean:
	rm -rf bin build
