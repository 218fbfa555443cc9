# ackprobe: see README.md. Targets a newcomer would guess.
GO        ?= go
PKG       := ./...
BIN       := bin/ackprobe
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
LDFLAGS   := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
HELM_VERSION := v3.22.0
DOCKER    ?= docker
IMAGE     ?= ackprobe
# helm, installed with go install, lives here; the deploy tests look it up.
export PATH := $(PATH):$(shell $(GO) env GOPATH)/bin

.PHONY: all build run canary test test-short test-deploy tools image soak bench bench-natscli lint fmt cover golden fuzz clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/ackprobe

## run: build and run the classic comparison against an embedded server,
## always (never a selected nats context); ARGS adds probe flags.
run: build
	./$(BIN) compare --embedded $(ARGS)

## canary: build and run the canary against an embedded server; metrics on
## http://localhost:9464/metrics, status on /status (Ctrl-C stops it).
canary: build
	./$(BIN) canary --embedded --interval 2s $(ARGS)

## test: the whole suite with the race detector (what CI runs).
test:
	$(GO) test -race -count=1 -timeout 20m $(PKG)

test-short:
	$(GO) test -count=1 -short $(PKG)

## test-deploy: the Kubernetes manifests, Helm chart, Prometheus rules and
## Grafana dashboard, with promtool and helm (make tools installs them).
test-deploy:
	$(GO) test -count=1 ./deploy/

## tools: the external tools the tests run: promtool and prometheus
## (Debian's prometheus package) and helm (pinned, with go install).
tools:
	command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq prometheus)
	command -v helm >/dev/null || $(GO) install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

## image: the container image (Dockerfile: distroless, non-root).
image:
	$(DOCKER) build --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) -t $(IMAGE):$(VERSION) .

## bench: ackprobe's probe against a plain nats.go loop on a separate nats-server.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3s -count 1 -timeout 30m ./internal/bench/

## soak: 5,000 real canary rounds back to back; the live heap after the
## first 500 and after the last should match.
soak:
	$(GO) test -run '^$$' -bench BenchmarkCanaryRounds -benchtime 5000x -count 1 -timeout 30m ./internal/canary/

## bench-natscli: `nats bench js consume --doubleack` on the same kind of server, for reference.
bench-natscli:
	./scripts/bench-natscli.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet $(PKG)
	$(GO) run $(STATICCHECK) $(PKG)

fmt:
	gofmt -w $$(git ls-files '*.go')

cover:
	$(GO) test -count=1 -coverprofile=coverage.out $(PKG)
	$(GO) tool cover -func=coverage.out | tail -1

## golden: refresh the rendering golden files after an intended change.
golden:
	$(GO) test -count=1 ./internal/report/ -update

## fuzz: run every fuzz target for FUZZTIME each (new findings land in testdata/fuzz).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFlagValues$$' -fuzztime $(FUZZTIME) ./cmd/ackprobe/
	$(GO) test -run '^$$' -fuzz '^FuzzValidateName$$' -fuzztime $(FUZZTIME) ./internal/probe/
	$(GO) test -run '^$$' -fuzz '^FuzzParseAckMetric$$' -fuzztime $(FUZZTIME) ./internal/probe/
	$(GO) test -run '^$$' -fuzz '^FuzzRender$$' -fuzztime $(FUZZTIME) ./internal/report/
	$(GO) test -run '^$$' -fuzz '^FuzzFrames$$' -fuzztime $(FUZZTIME) ./internal/faults/

clean:
	rm -rf bin coverage.out
