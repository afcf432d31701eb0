# kyverno-gate as an Argo CD Config Management Plugin sidecar image.
# The entrypoint is Argo CD's own cmp-server, which the repo-server's copyutil
# init container places in the shared /var/run/argocd volume; it reads
# plugin.yaml and runs `kyverno-gate generate` for each Application.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/kyverno-gate ./cmd/kyverno-gate

# Static binary, no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
# plugin.yaml runs `kyverno-gate` from PATH.
COPY --from=build /out/kyverno-gate /usr/local/bin/kyverno-gate
ENV PATH=/usr/local/bin:/usr/bin:/bin
COPY plugin.yaml /home/argocd/cmp-server/config/plugin.yaml
# Argo CD runs plugin sidecars as uid 999 and needs a writable HOME; mount
# an emptyDir on /tmp (see examples/install).
ENV HOME=/tmp
USER 999:999
ENTRYPOINT ["/var/run/argocd/argocd-cmp-server"]
