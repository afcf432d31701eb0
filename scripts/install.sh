#!/bin/sh
# Installs a kyverno-gate release binary (Linux, amd64 or arm64):
#   curl -fsSL https://raw.githubusercontent.com/kyverno-gate/kyverno-gate/v0.1.0/scripts/install.sh | sh -s -- v0.1.0
# It downloads the tarball and SHA256SUMS of that release, checks the
# tarball's checksum and, when cosign is on PATH, SHA256SUMS's keyless
# signature against kyverno-gate's release workflow; then installs
# kyverno-gate into BINDIR (default: /usr/local/bin if writable, else
# ~/.local/bin). KYVERNO_GATE_URL replaces the release URL (a mirror, or a
# folder made by `make release-build`: file:///path/to/dist).
set -eu
version=${1:?usage: install.sh vX.Y.Z}
url=${KYVERNO_GATE_URL:-https://github.com/kyverno-gate/kyverno-gate/releases/download/$version}
case $(uname -s) in Linux) os=linux ;; *) echo "install.sh: release binaries are for Linux; build from a checkout (make build)" >&2; exit 1 ;; esac
case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "install.sh: no release binary for $(uname -m)" >&2; exit 1 ;;
esac
if [ -z "${BINDIR:-}" ]; then
  if [ -w /usr/local/bin ]; then BINDIR=/usr/local/bin; else BINDIR=$HOME/.local/bin; fi
fi
name=kyverno-gate_${version}_${os}_${arch}.tar.gz
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
for f in "$name" SHA256SUMS; do
  curl -fsSL -o "$f" "$url/$f"
done
if command -v cosign >/dev/null 2>&1; then
  curl -fsSL -o SHA256SUMS.sigstore.json "$url/SHA256SUMS.sigstore.json"
  cosign verify-blob --bundle SHA256SUMS.sigstore.json \
    --certificate-identity "https://github.com/kyverno-gate/kyverno-gate/.github/workflows/release.yml@refs/tags/$version" \
    --certificate-oidc-issuer https://token.actions.githubusercontent.com SHA256SUMS >&2
else
  echo "install.sh: cosign is not on PATH: the checksum is checked, the signature of SHA256SUMS is not" >&2
fi
grep " $name\$" SHA256SUMS > sum || { echo "install.sh: $name is not in SHA256SUMS" >&2; exit 1; }
sha256sum -c sum >&2
tar -xzf "$name" kyverno-gate
mkdir -p "$BINDIR"
install -m 0755 kyverno-gate "$BINDIR/kyverno-gate"
echo "install.sh: installed $BINDIR/kyverno-gate ($("$BINDIR/kyverno-gate" --version | head -n 1))" >&2
