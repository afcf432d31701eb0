#!/usr/bin/env bash
# Builds the Dockerfile for real, daemonless, on a machine that cannot pull
# the base images: buildah (Debian's package) with the vfs storage driver
# and chroot isolation, and two LOCAL STAND-INS for the pinned bases:
#   GO_IMAGE   -> localhost/standin-golang: this machine's Go toolchain
#                 ($(go env GOROOT)), dash as /bin/sh and its libc
#   BASE_IMAGE -> localhost/standin-static: an empty root with /etc/passwd
#                 and /tmp, like distroless/static's nonroot variant
# Everything else is the real Dockerfile: the stages, the BuildKit cache
# mounts, TARGETOS/TARGETARCH, the labels, USER, ENTRYPOINT. It then checks
# the image's config and runs the binary it holds. Linux/amd64 hosts only
# (the stand-in copies the host's libc). See docs/release.md.
#
#   scripts/image-standin.sh            # VERSION=v0.0.0-standin
set -euo pipefail
cd "$(dirname "$0")/.."
command -v buildah >/dev/null || { echo "image-standin: needs buildah (apt-get install buildah)" >&2; exit 2; }
B=(buildah --storage-driver vfs)
VERSION=${VERSION:-v0.0.0-standin}
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
IMAGE=localhost/kyverno-gate:standin

standin() { # name, then a function that fills the mounted root $1
  local name=$1 fill=$2 c m
  c=$("${B[@]}" from scratch)
  m=$("${B[@]}" mount "$c")
  "$fill" "$m"
  "${B[@]}" umount "$c" >/dev/null
  shift 2
  "${B[@]}" config "$@" "$c"
  "${B[@]}" commit -q --rm "$c" "$name" >/dev/null
}
fill_go() {
  mkdir -p "$1/usr/local" "$1/bin" "$1/lib/x86_64-linux-gnu" "$1/lib64" "$1/etc/ssl/certs" "$1/tmp" "$1/root" "$1/go"
  cp -a "$(go env GOROOT)" "$1/usr/local/go"
  cp /bin/dash "$1/bin/sh"
  cp /lib/x86_64-linux-gnu/libc.so.6 "$1/lib/x86_64-linux-gnu/"
  cp /lib64/ld-linux-x86-64.so.2 "$1/lib64/"
  cp /etc/ssl/certs/ca-certificates.crt "$1/etc/ssl/certs/"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$1/etc/passwd"
  chmod 1777 "$1/tmp"
}
fill_static() {
  mkdir -p "$1/etc" "$1/tmp" "$1/home/nonroot"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > "$1/etc/passwd"
  chmod 1777 "$1/tmp"
}
start=$SECONDS
standin localhost/standin-golang:local fill_go --env PATH=/usr/local/go/bin:/bin --env GOPATH=/go \
  --env GOTOOLCHAIN=local --env "GOPROXY=$(go env GOPROXY)" --env "GOFLAGS=$(go env GOFLAGS)"
standin localhost/standin-static:nonroot fill_static --user 65532:65532
echo "image-standin: stand-ins ready in $((SECONDS - start)) s"

start=$SECONDS
"${B[@]}" bud --isolation chroot --layers \
  --build-arg GO_IMAGE=localhost/standin-golang:local \
  --build-arg BASE_IMAGE=localhost/standin-static:nonroot \
  --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  -t "$IMAGE" .
echo "image-standin: built $IMAGE in $((SECONDS - start)) s"

# What the image promises.
cfg=$("${B[@]}" inspect --type image --format '{{.OCIv1.Config.User}}|{{.OCIv1.Config.Entrypoint}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.version"}}|{{index .OCIv1.Config.Labels "org.opencontainers.image.revision"}}' "$IMAGE")
echo "image-standin: user|entrypoint|version|revision = $cfg"
[ "$cfg" = "999:999|[/usr/local/bin/kyverno-gate]|$VERSION|$REVISION" ] || { echo "image-standin: unexpected image config" >&2; exit 1; }
c=$("${B[@]}" from "$IMAGE")
m=$("${B[@]}" mount "$c")
# vfs copies every layer whole: leave no image behind (the cache mounts,
# under /var/tmp/buildah-cache, keep the next build's compile warm).
trap '"${B[@]}" umount "$c" >/dev/null; "${B[@]}" rm "$c" >/dev/null
  "${B[@]}" rmi -f "$IMAGE" localhost/standin-golang:local localhost/standin-static:nonroot >/dev/null
  "${B[@]}" rmi --prune >/dev/null 2>&1 || true' EXIT
test -f "$m/home/argocd/cmp-server/config/plugin.yaml"
cmp "$m/home/argocd/cmp-server/config/plugin.yaml" plugin.yaml
out=$("$m/usr/local/bin/kyverno-gate" version)
echo "$out"
case $out in "kyverno-gate $VERSION"*) ;; *) echo "image-standin: the image's binary is not $VERSION" >&2; exit 1 ;; esac
echo "image-standin: ok"
