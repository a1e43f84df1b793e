# edxbus — common tasks. Only Go is needed for `make run` and `make build`;
# `make test` uses a local redis-server and PostgreSQL when they are running
# (see .ci/run for how CI installs them).
GO       ?= go
BIN      ?= bin/edxbus
BENCH_BIN ?= bin/edxbus-bench
PKGS     ?= ./...
# Every test in one go; generous so the slowest package (broker) fits on 2 cores.
TESTFLAGS ?= -count=1 -timeout 15m

.PHONY: all build bench-build test test-race lint vet fmt bench fuzz run integration clean generate docs compose-up compose-down compose-test

all: build

build:
	$(GO) build -o $(BIN) ./cmd/edxbus

# The bench is a binary of its own: its plotting stays out of edxbus.
bench-build:
	$(GO) build -o $(BENCH_BIN) ./cmd/edxbus-bench

test:
	$(GO) test $(TESTFLAGS) $(PKGS)

test-race:
	$(GO) test -race $(TESTFLAGS) $(PKGS)

vet:
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

lint: vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) run ./internal/modcheck

generate:
	$(GO) generate ./...

# The figures of docs/benchmarks.md: the Go benchmarks, then `edxbus-bench` runs
# on embedded defaults; BENCH_REDIS_URL (e.g. redis://127.0.0.1:6379/15) adds
# runs against that Redis (60 s at 1,000 events/s, 20k and 200k flat out), and
# BENCH_POSTGRES_DSN with it a flat-out run on PostgreSQL, BENCH_MYSQL_DSN one on MySQL/MariaDB.
BENCH_REDIS_URL ?=
BENCH_POSTGRES_DSN ?=
BENCH_MYSQL_DSN ?=
bench: bench-build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(BENCH_BIN) --events 10000 --rate 500 --report-dir docs/bench-steady
	$(BENCH_BIN) --events 20000 --report-dir docs/bench
	$(BENCH_BIN) --duration 60s --rate 1000 --report-dir docs/bench-duration
	$(BENCH_BIN) --events 200000 --report-dir docs/bench-200k
	$(if $(BENCH_REDIS_URL),$(BENCH_BIN) --duration 60s --rate 1000 --redis-url $(BENCH_REDIS_URL) --report-dir docs/bench-duration-redis)
	$(if $(BENCH_REDIS_URL),$(BENCH_BIN) --events 20000 --redis-url $(BENCH_REDIS_URL) --report-dir docs/bench-redis)
	$(if $(BENCH_REDIS_URL),$(BENCH_BIN) --events 200000 --redis-url $(BENCH_REDIS_URL) --report-dir docs/bench-200k-redis)
	$(if $(and $(BENCH_REDIS_URL),$(BENCH_POSTGRES_DSN)),$(BENCH_BIN) --events 20000 --redis-url $(BENCH_REDIS_URL) --store-dsn $(BENCH_POSTGRES_DSN) --report-dir docs/bench-redis-postgres)
	$(if $(and $(BENCH_REDIS_URL),$(BENCH_MYSQL_DSN)),$(BENCH_BIN) --events 20000 --redis-url $(BENCH_REDIS_URL) --store-dsn $(BENCH_MYSQL_DSN) --report-dir docs/bench-redis-mysql)

# Short fuzzing pass over every fuzz target (FUZZTIME per target).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list $(PKGS)); do \
	  for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$target"; \
	    $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

run: build
	$(BIN) run --demo

integration:
	$(GO) test $(TESTFLAGS) -v ./integration/...

# Regenerate the configuration reference between the README's markers.
docs: build
	@$(BIN) docs > .config-reference.md
	@awk 'BEGIN{ref=""; while ((getline line < ".config-reference.md") > 0) ref = ref line "\n"} \
	  /<!-- config-reference:begin -->/ {print; printf "%s", ref; skip=1; next} \
	  /<!-- config-reference:end -->/ {skip=0} !skip {print}' README.md > README.md.new
	@mv README.md.new README.md && rm -f .config-reference.md
	@echo "README.md configuration reference updated"

COMPOSE ?= docker compose -p edxbus -f docker-compose.pulsar.yml

compose-up:
	$(COMPOSE) up -d --build --wait

compose-down:
	$(COMPOSE) down -v

# The integration suite against the compose stack's services.
compose-test:
	EDXBUS_PULSAR_URL=pulsar://127.0.0.1:6650 EDXBUS_PULSAR_ADMIN_URL=http://127.0.0.1:8080 \
	EDXBUS_REDIS_URL=redis://127.0.0.1:6379/0 \
	EDXBUS_STORE_DSN='postgres://edxbus:edxbus@127.0.0.1:5432/discovery?sslmode=disable' \
	EDXBUS_TEST_REDIS_URL=redis://127.0.0.1:6379/0 \
	$(GO) test $(TESTFLAGS) -v ./integration/...

clean:
	rm -rf bin
