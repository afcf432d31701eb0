# kyverno-gate — see README.md. Targets a new user needs: demo, test.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# No -trimpath here: tests and builds then share one build cache, which
# matters because Kyverno is a very large dependency. The image build
# (Dockerfile) adds -trimpath and CGO_ENABLED=0.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.revision=$(REVISION)
EXAMPLE := examples/policy-repo

.PHONY: build test demo bench e2e live clean plugin.yaml

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/kyverno-gate ./cmd/kyverno-gate

# Every test of the module (unit, golden, corpus agreement).
test:
	$(GO) test ./...

# Run the plugin command on the bundled example, as Argo CD would.
demo: build
	bin/kyverno-gate generate $(EXAMPLE)/overlays/production

# End-to-end: the real argocd-cmp-server (Argo CD v3.6.1, its own Go module
# under e2e/, Go 1.27 toolchain from the module proxy) runs plugin.yaml with
# bin/kyverno-gate on its PATH; the tests speak its gRPC protocol as the
# repo-server does. A cold build of Argo CD takes ~30 min on 2 cores, then
# the build cache keeps it to a relink. See docs/e2e.md.
E2E_GOTOOLCHAIN ?= go1.27.3
e2e: build
	cd e2e && GOTOOLCHAIN=$(E2E_GOTOOLCHAIN) $(GO) test -vet=off -count=1 ./...

# Live-cluster tests (issue 15; docs/live.md): live/build.sh builds kube-apiserver,
# etcd and kubectl v1.36.3 from the tools module live/ (its own go.mod; the
# binaries are cached by version under ~/.cache/kyverno-gate/live, so a warm
# run builds nothing), then the `live`-tagged tests (TestLive*) run against a
# real API server on loopback. Not part of `go test ./...`.
.PHONY: live
LIVE_PACKAGES := ./internal/kubetest ./cluster ./drift ./cmd/kyverno-gate
live:
	bin=$$(GO=$(GO) live/build.sh) && LIVE_BIN=$$bin $(GO) test -tags live -count=1 -p 2 -run '^TestLive' $(LIVE_PACKAGES)

# The whole Argo CD loop (e2e/loop, build tag loop): three real
# kube-apiservers with etcd (live/, internal/kubetest), Redis
# (redis-server), and Argo CD v3.6.1's application controller, repo-server
# and cmp-server running plugin.yaml with bin/kyverno-gate; the example's
# Applications sync from a git repository the tests push to. The live
# binaries are built (or found in their cache) by the main module's Go
# before the Go 1.27 toolchain is switched on. See docs/e2e.md.
.PHONY: loop
loop: build
	live=$$(GO=$(GO) live/build.sh) && cd e2e && LIVE_BIN=$$live GOTOOLCHAIN=$(E2E_GOTOOLCHAIN) \
	  $(GO) test -tags loop -vet=off -count=1 -timeout 30m -v -run '^TestLoop$$' ./loop

# Every Go fuzz target, FUZZTIME each (scripts/fuzz.sh; docs/fuzzing.md).
# .ci/run runs the same script for 10 s per target.
.PHONY: fuzz
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# Side-by-side benchmarks against upstream kyverno (writes bench/out/results.md).
bench:
	bench/run.sh

# Regenerate plugin.yaml from the parameter table (a test checks they agree).
plugin.yaml: build
	bin/kyverno-gate plugin-config > plugin.yaml

# Rewrite the example's lock files (examples/policy-repo/overlays/*/
# kyverno-gate.lock.yaml) after a vetted change of its policies; a test
# fails when they are stale. lock compares with the old lock, so a
# weakening must carry its approval first.
.PHONY: locks
locks: build
	cd $(EXAMPLE) && ../../bin/kyverno-gate lock --log-level warn overlays/*

# Release binaries as the release workflow publishes them (no push): one
# static build per platform, -trimpath, CGO off, version stamped, in
# reproducible tarballs, and SHA256SUMS. .ci/run runs it for both
# architectures; .github/workflows/release.yml runs it on a tag.
.PHONY: release-build
DIST ?= dist
RELEASE_PLATFORMS ?= linux/amd64 linux/arm64
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
release-build:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(RELEASE_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=kyverno-gate_$(VERSION)_$${os}_$${arch}; \
	  echo "building $$name"; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(DIST)/$$name/kyverno-gate ./cmd/kyverno-gate; \
	  tar -C $(DIST)/$$name --sort=name --mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner -cf - kyverno-gate | gzip -n > $(DIST)/$$name.tar.gz; \
	  rm -r $(DIST)/$$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz > SHA256SUMS && cat SHA256SUMS

# Every GitHub Actions workflow, the project's and the example's, checked
# by actionlint (built from the Go module proxy; it runs shellcheck on
# run: scripts when shellcheck is on PATH).
.PHONY: lint-workflows
ACTIONLINT_VERSION ?= v1.7.12
lint-workflows:
	$(GO) run github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION) \
	  .github/workflows/*.yml examples/policy-repo/.github/workflows/*.yml

clean:
	rm -rf bin dist
