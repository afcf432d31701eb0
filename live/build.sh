#!/usr/bin/env bash
# Builds kube-apiserver, etcd and kubectl for the live tests from this tools
# module (k8s.io/kubernetes and etcd's server module from the Go module
# proxy) into a cache folder keyed by their versions and this module's
# inputs, and prints that folder. A folder that already holds the three
# binaries is reused as it is: a warm run builds nothing.
#
#   LIVE_BIN_CACHE  where the keyed folders go (default: ~/.cache/kyverno-gate/live)
set -euo pipefail
cd "$(dirname "$0")"
GO=${GO:-go}
k8s=$(awk '$1 == "k8s.io/kubernetes" {print $2; exit}' go.mod)
etcd=$(awk '$1 == "go.etcd.io/etcd/server/v3" {print $2; exit}' go.mod)
gov=$($GO env GOVERSION)
inputs=$(cat go.mod go.sum build.sh cmd/*/main.go | sha256sum | cut -c1-12)
cache=${LIVE_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kyverno-gate/live}
dir="$cache/kubernetes-$k8s-etcd-$etcd-$gov-$inputs"
if [ -x "$dir/kube-apiserver" ] && [ -x "$dir/etcd" ] && [ -x "$dir/kubectl" ]; then
  echo "$dir"
  exit 0
fi
minor=${k8s#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags="$ldflags -X $p.gitVersion=$k8s -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
tmp="$dir.tmp.$$"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "live/build.sh: building kube-apiserver $k8s, etcd $etcd and kubectl into $dir (a cold build takes ~15 min on 2 cores)" >&2
nice -n 10 $GO build -ldflags "$ldflags" -o "$tmp/" ./cmd/kube-apiserver ./cmd/etcd ./cmd/kubectl
mv "$tmp" "$dir"
trap - EXIT
echo "$dir"
