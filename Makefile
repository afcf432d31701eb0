# kyverno-gate — see README.md. Targets a new user needs: demo, test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# No -trimpath here: tests and builds then share one build cache, which
# matters because Kyverno is a very large dependency. The image build
# (Dockerfile) adds -trimpath and CGO_ENABLED=0.
LDFLAGS := -s -w -X main.version=$(VERSION)
EXAMPLE := examples/policy-repo

.PHONY: build test demo bench e2e clean plugin.yaml

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/kyverno-gate ./cmd/kyverno-gate

# Every test of the module (unit, golden, corpus agreement).
test:
	$(GO) test ./...

# Run the plugin command on the bundled example, as Argo CD would.
demo: build
	bin/kyverno-gate generate $(EXAMPLE)/overlays/production

# Side-by-side benchmarks against upstream kyverno (writes bench/out/results.md).
bench:
	bench/run.sh

# Regenerate plugin.yaml from the parameter table (a test checks they agree).
plugin.yaml: build
	bin/kyverno-gate plugin-config > plugin.yaml

clean:
	rm -rf bin
