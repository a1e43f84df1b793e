# edxbus — common tasks. Only Go is needed for `make run` and `make build`;
# `make test` uses a local redis-server and PostgreSQL when they are running
# (see .ci/run for how CI installs them).
GO       ?= go
BIN      ?= bin/edxbus
PKGS     ?= ./...
# Every test in one go; generous so the slowest package (broker) fits on 2 cores.
TESTFLAGS ?= -count=1 -timeout 15m

.PHONY: all build test test-race lint vet fmt bench fuzz run integration clean generate

all: build

build:
	$(GO) build -o $(BIN) ./cmd/edxbus

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

generate:
	$(GO) generate ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

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

clean:
	rm -rf bin
