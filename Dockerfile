# kyverno-gate: the CLI, and the Argo CD Config Management Plugin sidecar.
#
# The entrypoint is the CLI (`docker run IMAGE check ...` in CI works as at a
# terminal). As the sidecar of argocd-repo-server, the install manifests
# (examples/install) override the command with Argo CD's own cmp-server,
# which the repo-server's copyutil init container places in the shared
# /var/run/argocd volume; it reads the baked-in plugin.yaml and runs
# `kyverno-gate generate` for each Application.
#
# Build (BuildKit; multi-arch from one builder, the Go build cross-compiles):
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v0.1.0 --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t IMAGE .
# VERSION has no default: an image that says "dev" cannot be built by mistake.
#
# Base images are pinned by digest with the tag beside it (docs/release.md
# says which digests were verified and how to bump them).
ARG GO_IMAGE=golang:1.26.8-bookworm@sha256:a688600ca24f8a4d3ca77f95b0dd40704a9fc787c826660eb7ba0b641b8b175d
ARG BASE_IMAGE=gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639

# The build runs on the builder's own platform and cross-compiles (static,
# CGO off): no emulation, and one module and build cache for both targets.
FROM --platform=$BUILDPLATFORM ${GO_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod,sharing=locked \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod,sharing=locked \
    --mount=type=cache,target=/root/.cache/go-build,sharing=locked \
    test -n "${VERSION}" || { echo "set --build-arg VERSION=<release>" >&2; exit 1; }; \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
      go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/kyverno-gate ./cmd/kyverno-gate

# Static binary, no shell, no package manager.
FROM ${BASE_IMAGE}
ARG VERSION
ARG REVISION=unknown
ARG CREATED
LABEL org.opencontainers.image.title="kyverno-gate" \
      org.opencontainers.image.description="Render, vet and serve Kyverno policies for Argo CD; refuse the change that weakens them" \
      org.opencontainers.image.source="https://github.com/kyverno-gate/kyverno-gate" \
      org.opencontainers.image.url="https://github.com/kyverno-gate/kyverno-gate" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/kyverno-gate /usr/local/bin/kyverno-gate
COPY plugin.yaml /home/argocd/cmp-server/config/plugin.yaml
# plugin.yaml runs `kyverno-gate` from PATH. Read-only root: the process
# writes only under HOME and TMPDIR, both /tmp (mount an emptyDir there, as
# examples/install does); Argo CD runs plugin sidecars as uid 999.
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/tmp \
    TMPDIR=/tmp
USER 999:999
ENTRYPOINT ["/usr/local/bin/kyverno-gate"]
