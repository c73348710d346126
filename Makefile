# Backplane's developer entry points. Every tool is pinned in tools/go.mod and run with
# `go tool`, so a fresh machine needs only Go: the first use builds each tool.

GO        ?= go
TOOL      := $(GO) tool -modfile=tools/go.mod
BUF       := $(TOOL) buf
GOLANGCI  := $(TOOL) golangci-lint
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
BIN       := bin/backplane
GOTESTFLAGS ?=
# The Go SDK is a module of its own (partners require it alone), so `./...` at the root
# does not reach it: every target that builds, tests or lints Go code runs it there too.
SDK_GO    := sdk/go
# The TypeScript SDK is an npm package; its tools (tsc, openapi-typescript) are pinned in
# its package.json and package-lock.json.
SDK_TS    := sdk/ts
NPM_CI    := npm ci --prefer-offline --no-audit --no-fund --loglevel=error
# The example web app (esbuild, playwright-core), tested in Debian's Chromium.
WEB       := examples/web

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# DEV_ARGS are passed to `backplane dev`: `make run DEV_ARGS=--reset` starts from an
# empty dev database and mailbox.
DEV_ARGS ?=

.PHONY: run
run: ## Start the whole system on embedded defaults (backplane dev); the first build takes minutes.
	@echo "==> building $(BIN) (the first build compiles every dependency: a few minutes; each package is listed as it compiles)"
	$(GO) build -v -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/backplane
	@echo "==> starting backplane dev: REST http://localhost:8080, gRPC localhost:9090, admin http://localhost:8081 (Ctrl-C stops it)"
	./$(BIN) dev $(DEV_ARGS)

.PHONY: build
build: ## Build bin/backplane.
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/backplane

.PHONY: test
test: lint check-generated lint-openapi ## Lint, check generated code and the OpenAPI document, run every test with the race detector.
	$(GO) test -race -count=1 $(GOTESTFLAGS) ./...
	$(GO) -C $(SDK_GO) test -race -count=1 $(GOTESTFLAGS) ./...
	$(MAKE) test-sdk-ts test-web

.PHONY: sdk-ts-deps
sdk-ts-deps: ## Install the TypeScript SDK's pinned packages (npm ci, from npm's cache when it can).
	$(NPM_CI) --prefix $(SDK_TS)

.PHONY: test-sdk-ts
test-sdk-ts: sdk-ts-deps build ## Build the TypeScript SDK with tsc and run its tests (node --test) against a real backplane dev.
	npm --prefix $(SDK_TS) run build
	BACKPLANE_BIN=$(CURDIR)/$(BIN) npm --prefix $(SDK_TS) test

.PHONY: web-deps
web-deps: sdk-ts-deps ## Install the example web app's pinned packages (esbuild, playwright-core; the SDK from sdk/ts).
	$(NPM_CI) --prefix $(WEB)

.PHONY: test-web
test-web: web-deps build ## Build the example web app and drive it in headless Chromium against backplane dev (CHROMIUM=/usr/bin/chromium).
	BACKPLANE_BIN=$(CURDIR)/$(BIN) npm --prefix $(WEB) test

.PHONY: test-short
test-short: ## Run the Go tests only, without lint or race detector.
	$(GO) test -count=1 ./...
	$(GO) -C $(SDK_GO) test -count=1 ./...

.PHONY: bench
bench: ## Run the benchmarks (each beside its baseline in the same run).
	$(GO) test -run='^$$' -bench=. -benchmem -count=1 ./...
	$(GO) -C $(SDK_GO) test -run='^$$' -bench=. -benchmem -count=1 ./...

# BENCH_E2E_ARGS are passed to bench/e2e: `make bench-e2e BENCH_E2E_ARGS='-d 30s -rounds 3'`;
# `-base-bin path` measures another build beside this one, `-cpuprofile file` profiles dev,
# `-serve-cpuprofile file` the serve topology's gateway.
# -mod=mod: bench/e2e replaces Backplane's module with this tree, so its go.sum follows the
# root's dependencies when they change.
BENCH_E2E_ARGS ?=

.PHONY: bench-e2e
bench-e2e: build ## Measure the built product (backplane dev) beside a bare grpc-gateway echo and PocketBase, in one run (not part of make test).
	$(GO) -C bench/e2e test -mod=mod -count=1 ./...
	$(GO) -C bench/e2e run -mod=mod . -bin $(CURDIR)/$(BIN) $(BENCH_E2E_ARGS)

.PHONY: protodeps
protodeps: ## Write the imported protos (google/api, buf/validate, openapiv3) into .protodeps/.
	$(GO) run ./cmd/protodeps -out .protodeps

.PHONY: generate
generate: protodeps sdk-ts-deps ## Regenerate gen/ from proto/, each service's dbsqlc/ from its SQL (afresh: nothing stale stays), and the TypeScript SDK's types.
	$(BUF) format -w proto
	$(BUF) generate
	tools/generate-sqlc.sh
	npm --prefix $(SDK_TS) run --silent generate

.PHONY: check-generated
check-generated: protodeps sdk-ts-deps ## Fail when generated code differs from what its sources generate (the tree is not written).
	tools/check-generated.sh

.PHONY: breaking
breaking: protodeps ## buf breaking: proto/ against its merge-base with main (on main: HEAD^). BREAKING_AGAINST=<rev> overrides.
	tools/breaking.sh

.PHONY: test-scripts
test-scripts: protodeps sdk-ts-deps ## Test the shell tools (the generated-code drift check and the sqlc step of generate).
	tools/check-generated_test.sh

.PHONY: lint
lint: protodeps ## buf lint and format check, golangci-lint (vet, staticcheck, gosec, errcheck, gofmt, ...).
	$(BUF) lint
	$(BUF) format -d --exit-code proto
	$(GOLANGCI) run ./...
	$(GO) -C $(SDK_GO) mod tidy -diff
	$(GO) -C $(SDK_GO) tool -modfile=../../tools/go.mod golangci-lint run --config ../../.golangci.yml ./...
	@# gofmt over every committed file, also those no build on this platform compiles,
	@# which golangci-lint does not see.
	@out="$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/'))"; \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# Redocly CLI is pinned exactly in tools/openapi-lint/package.json and its lock file;
# npm ci installs it from npm's cache when it is there (a cold install took 2 s).
OPENAPI_LINT := tools/openapi-lint

.PHONY: lint-openapi
lint-openapi: ## Lint gen/openapi/backplane.openapi.json with Redocly CLI (zero findings allowed).
	$(NPM_CI) --prefix $(OPENAPI_LINT)
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		$(OPENAPI_LINT)/node_modules/.bin/redocly lint --config $(OPENAPI_LINT)/redocly.yaml \
		--format=stylish gen/openapi/backplane.openapi.json

.PHONY: tools
tools: ## Build every pinned tool ahead of time.
	$(GO) build -modfile=tools/go.mod -o /dev/null tool

.PHONY: clean
clean: ## Remove build output and dev data.
	rm -rf bin .data .protodeps $(SDK_TS)/dist $(WEB)/dist $(WEB)/test-results

# --- Production image and Helm chart (deploy/) ------------------------------------------

DEPLOY_TOOL := $(GO) -C deploy/tools tool
IMAGE       ?= backplane:$(VERSION)
# docker, else podman; override with ENGINE=... (e.g. ENGINE="docker buildx").
ENGINE      ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

.PHONY: static
static: ## Build a static bin/backplane for the image (CGO off, -trimpath, version stamped).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/backplane

.PHONY: image
image: ## Build the container image (IMAGE=backplane:VERSION) with docker or podman.
	@if [ -z "$(ENGINE)" ]; then \
		echo "make image needs a container engine: install docker or podman (or set ENGINE=...)"; exit 1; fi
	@if ! $(ENGINE) info >/dev/null 2>&1; then \
		echo "make image: $(ENGINE) is installed but its engine is not answering ('$(ENGINE) info' fails)"; exit 1; fi
	$(ENGINE) build \
		--build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
		-t $(IMAGE) .

.PHONY: deploy-tools
deploy-tools: ## Build helm, kubeconform and promtool (pinned in deploy/tools/go.mod).
	$(DEPLOY_TOOL) -n helm >/dev/null
	$(DEPLOY_TOOL) -n kubeconform >/dev/null
	GOFLAGS="$$GOFLAGS -tags=remove_all_sd" $(DEPLOY_TOOL) -n promtool >/dev/null

.PHONY: helm-test
helm-test: deploy-tools ## Lint, render and validate the Helm chart; check the alert rules.
	$(GO) test -count=1 ./deploy/...

# The deploy tests build the tools themselves when needed; building them first keeps that
# cold build (a few minutes) out of the tests' time limit. The same goes for grpcurl,
# which the README's quickstart runs (cmd/backplane/readme_test.go).
test: deploy-tools quickstart-tools

.PHONY: quickstart-tools
quickstart-tools: ## Build grpcurl (pinned in tools/go.mod), which the README's quickstart runs.
	$(TOOL) grpcurl -version
