#!/usr/bin/env bash
# Side-by-side benchmarks: kyverno-gate against its anchors, on the same data,
# in one run. Prints a table and writes it to bench/out/results.md.
# Usage: bench/run.sh [corpus]   (default: ../shared/corpus/kyverno-policies)
set -euo pipefail
cd "$(dirname "$0")/.."
corpus=$(cd "${1:-../shared/corpus/kyverno-policies}" && pwd)
out=bench/out
mkdir -p "$out" bin
runs=${BENCH_RUNS:-3}

echo "building kyverno-gate and upstream kyverno (v1.19.1 from the module proxy)..." >&2
go build -o bin/kyverno-gate ./cmd/kyverno-gate
go build -o bin/kyverno-upstream ./bench/kyverno-upstream

# measure NAME CMD...: best wall time and its peak RSS over $runs runs.
# The exit status is ignored: a strict verdict is still a measured run.
measure() {
  local name=$1; shift
  local best="" rss=""
  for _ in $(seq "$runs"); do
    /usr/bin/time -f "%e %M" -o "$out/.time" "$@" >/dev/null 2>"$out/.stderr" || true
    read -r secs kb < <(tail -n 1 "$out/.time")
    if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < $best)}"; then best=$secs; rss=$kb; fi
  done
  printf '%s\t%s\t%s\n' "$name" "$best" "$((rss / 1024))"
}

{
  measure "upstream kyverno test (corpus)" bin/kyverno-upstream test "$corpus"
  measure "kyverno-gate test (corpus)" bin/kyverno-gate test "$corpus" --log-level error
} > "$out/raw.tsv"

{
  echo "# kyverno-gate benchmarks"
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d)."
  echo "Corpus: kyverno/policies, $(find "$corpus" -name kyverno-test.yaml | wc -l) test files. Best of $runs runs."
  echo
  echo "| what | seconds | peak MB | ratio ours/anchor |"
  echo "|---|---:|---:|---:|"
  up=$(awk -F'\t' 'NR==1{print $2}' "$out/raw.tsv")
  while IFS=$'\t' read -r name secs mb; do
    ratio=$(awk "BEGIN{printf \"%.2f\", $secs / $up}")
    echo "| $name | $secs | $mb | $ratio |"
  done < "$out/raw.tsv"
  echo
  echo "Speed-up of the test gate: $(awk -F'\t' 'NR==1{u=$2} NR==2{printf "%.1fx", u/$2}' "$out/raw.tsv")"
} > "$out/results.md"
cat "$out/results.md"
