# Makefile for hoprd. "make help" lists the targets.

GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
FUZZTIME ?= 5s
LDFLAGS  := -X main.version=$(VERSION)

# The namespace tests need root; unit runs leave them out.
E2E_TESTS := ^(TestNetns|TestE2E)

.DEFAULT_GOAL := build
.PHONY: help build install test deps vet test-unit test-e2e fuzz demo bench clean

help: ## show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

build: ## build bin/hoprd
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/hoprd ./cmd/hoprd

install: build ## install hoprd into $(DESTDIR)$(BINDIR)
	install -D -m 0755 bin/hoprd $(DESTDIR)$(BINDIR)/hoprd

test: deps vet test-unit test-e2e fuzz ## everything CI runs

deps: ## install missing Debian packages the tests use (as root)
	bash scripts/deps.sh

vet: ## go vet
	$(GO) vet ./...

test-unit: ## unit tests with the race detector
	$(GO) test -race -count=1 -skip '$(E2E_TESTS)' ./...
	$(GO) test -count=1 -run 'Allocs' ./device/... ./bind/  # pins that -race cannot check

test-e2e: build ## namespace and end-to-end tests against bin/hoprd (root)
	HOPRD_BIN=$(CURDIR)/bin/hoprd $(GO) test -count=1 -v -timeout 15m \
		-run '$(E2E_TESTS)' ./cmd/hoprd

fuzz: ## run every fuzz target for FUZZTIME (5s)
	GO=$(GO) FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

demo: deps build ## three daemons in namespaces, pinging (root)
	HOPRD=bin/hoprd bash scripts/demo.sh

bench: ## hoprd against wireguard-go and the bare link (root, ~10 min; docs/performance.md)
	GO=$(GO) bash scripts/bench.sh

clean: ## remove build output
	rm -rf bin
