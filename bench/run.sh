#!/usr/bin/env bash
# Side-by-side benchmarks (issue 7): kyverno-gate against its anchors, on the
# same data, in one run. Prints a report and writes it to bench/out/results.md
# (raw figures in bench/out/raw.tsv, Go benchmark output in
# bench/out/gobench.txt, the large generate's stderr in
# bench/out/generate.stderr).
#
# Usage: bench/run.sh [corpus]   (default: ../shared/corpus/kyverno-policies)
#
# Environment:
#   BENCH_RUNS      runs of each command; the best is kept (default 3)
#   BENCH_LONG_RUNS runs of the long ones (the corpus tests, the large
#                   generate; default 2, at most BENCH_RUNS), to stay
#                   within 15 minutes on 2 cores
#   BENCH_SCALE_RUNS runs of each command at 2x, 4x and 7x the corpus (default 1:
#                   kustomize alone takes ~50 s at 7x)
#   BENCH_SCALES    the scales of the growth table (default "1 2 4 7"; 1 and 7
#                   are always made, the targets are stated at them)
#   BENCH_GO_COUNT  runs of each scaling Go benchmark; the best is kept (default 2)
#   BENCH_GO=1      also run the Go benchmarks (in-process scaling at 1x/2x/4x,
#                   micro-benchmarks; default off)
#
# Anchors, built from the Go module proxy once and reused while their inputs
# do not change: upstream `kyverno` v1.19.1 (bench/kyverno-upstream, pinned
# by go.mod) and the kustomize CLI at the release that uses our kustomize
# API version (sigs.k8s.io/kustomize/kustomize/v5; `kubectl kustomize` is
# measured too when kubectl is installed). The large repository is generated
# from the corpus into a temporary folder (bench/largerepo) and removed at
# the end; the corpus is never copied into the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
corpus_arg=${1:-${KYVERNO_POLICIES:-../shared/corpus/kyverno-policies}}
if [[ ! -d "$corpus_arg" ]]; then
  echo "bench/run.sh: no kyverno/policies checkout at $corpus_arg; pass its path (bench/run.sh DIR, or KYVERNO_POLICIES=DIR make bench), e.g. a clone of https://github.com/kyverno/policies" >&2
  exit 2
fi
corpus=$(cd "$corpus_arg" && pwd)
out=bench/out
mkdir -p "$out" bin
runs=${BENCH_RUNS:-3}
long=${BENCH_LONG_RUNS:-2}
(( long > runs )) && long=$runs
gocount=${BENCH_GO_COUNT:-2}
work=$(mktemp -d "${TMPDIR:-/tmp}/kyverno-gate-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
log() { echo "bench: $*" >&2; }
load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- builds -------------------------------------------------------------
# The build cache makes these relinks (30-90 s each for the binaries that
# link Kyverno); a cold cache compiles Kyverno once (~12 min on 2 cores).
log "building kyverno-gate and the stage driver..."
go build -ldflags "-s -w" -o bin/kyverno-gate ./cmd/kyverno-gate
go build -ldflags "-s -w" -o bin/bench-stages ./bench/stages
go build -o bin/bench-largerepo ./bench/largerepo

# stamp FILE INPUTS...: true when FILE exists and was built from the same inputs.
stamp_of() { { go version; cat "$@"; } | sha256sum | cut -c1-16; }
fresh() {
  local bin=$1; shift
  [[ -x $bin && -f $bin.stamp && $(cat "$bin.stamp") == "$(stamp_of "$@")" ]]
}
if fresh bin/kyverno-upstream go.mod go.sum bench/kyverno-upstream/main.go; then
  log "upstream kyverno: reusing bin/kyverno-upstream"
else
  log "building upstream kyverno v1.19.1 from the module proxy..."
  go build -ldflags "-s -w" -o bin/kyverno-upstream ./bench/kyverno-upstream
  stamp_of go.mod go.sum bench/kyverno-upstream/main.go > bin/kyverno-upstream.stamp
fi
kapi=$(go list -m -f '{{.Version}}' sigs.k8s.io/kustomize/api)
case $kapi in # the kustomize CLI release built on our kustomize API
  v0.21.1) kcli=v5.8.1 ;;
  v0.21.0) kcli=v5.8.0 ;;
  v0.20.1) kcli=v5.7.1 ;;
  *) kcli="" ;;
esac
kustomize=""
if [[ -n $kcli ]]; then
  if [[ -x bin/kustomize && $(cat bin/kustomize.version 2>/dev/null) == "$kcli" ]]; then
    log "kustomize: reusing bin/kustomize $kcli"
  else
    log "building kustomize $kcli (API $kapi) from the module proxy..."
    GOBIN=$PWD/bin GOFLAGS= go install "sigs.k8s.io/kustomize/kustomize/v5@$kcli"
    echo "$kcli" > bin/kustomize.version
  fi
  kustomize=bin/kustomize
fi
kubectl=$(command -v kubectl || true)
if [[ -z $kustomize && -z $kubectl ]]; then
  echo "bench: no kustomize anchor: kustomize API $kapi has no known CLI release and kubectl is absent" >&2
  exit 2
fi

# --- data ---------------------------------------------------------------
: > "$out/largerepo.txt"
scales=${BENCH_SCALES:-1 2 4 7}
[[ " $scales " == *" 1 "* ]] || scales="1 $scales"
[[ " $scales " == *" 7 "* ]] || scales="$scales 7"
gen_scales=$scales
[[ ${BENCH_GO:-0} != 0 ]] && gen_scales=$(printf '%s\n' $scales 2 4 | sort -nu | tr '\n' ' ')
srun=${BENCH_SCALE_RUNS:-1}
log "generating the large repository ($gen_scales x the corpus) in $work..."
for n in $gen_scales; do
  bin/bench-largerepo -corpus "$corpus" -o "$work/x$n" -scale "$n" 2>>"$out/largerepo.txt"
done
x1=$work/x1
overlay=$x1/overlays/production
mkdir -p "$work/trivial"
printf 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\ndata:\n  a: b\n' > "$work/trivial/configmap.yaml"
# The base lists policy files outside its own folder, which kustomize's
# default load restrictor refuses; kyverno-gate confines reads to the
# repository root instead (render.Options.Root).
anchor_kustomize="$kubectl kustomize --load-restrictor LoadRestrictionsNone"
[[ -n $kustomize ]] && anchor_kustomize="$kustomize build --load-restrictor LoadRestrictionsNone"
$anchor_kustomize "$overlay" > "$work/head.yaml"

# --- measurements -------------------------------------------------------
# measure KEY WHAT CMD...: best wall time over $runs runs and the peak RSS
# of that run; the exit status is ignored (a rejected verdict is still a
# measured run). The best run's stdout and stderr are kept in $work/KEY.*.
: > "$out/raw.tsv.tmp"
# Columns of raw.tsv: key, what, wall s, peak MB, CPU s (user + system),
# load average (1 min) when the best run started.
measure_n() {
  local n=$1 key=$2 what=$3; shift 3
  local best="" rss="" cpu="" load=""
  for _ in $(seq "$n"); do
    local l; l=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f "%e %M %U %S" -o "$work/time" "$@" >"$work/run.out" 2>"$work/run.err" || true
    read -r secs kb us ss < <(tail -n 1 "$work/time")
    if [[ -z "$best" ]] || awk "BEGIN{exit !($secs < $best)}"; then
      best=$secs rss=$kb load=$l cpu=$(awk "BEGIN{printf \"%.2f\", $us + $ss}")
      cp "$work/run.out" "$work/$key.out"
      cp "$work/run.err" "$work/$key.err"
    fi
  done
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$what" "$best" "$((rss / 1024))" "$cpu" "$load" | tee -a "$out/raw.tsv.tmp" >&2
}
measure() { measure_n "$runs" "$@"; }
# put KEY WHAT SECONDS MB: a figure computed rather than measured.
put() { printf '%s\t%s\t%s\t%s\t-\t-\n' "$@" | tee -a "$out/raw.tsv.tmp" >&2; }

log "start-up (trivial generate of one ConfigMap)..."
sruns=$((runs * 5 > 10 ? runs * 5 : 10))
measure_n "$sruns" startup.ours "kyverno-gate generate (one ConfigMap)" \
  bin/kyverno-gate generate "$work/trivial" --allow-no-tests --baseline none
measure_n "$sruns" startup.upstream "upstream kyverno version (bare start-up)" bin/kyverno-upstream version
measure_n "$sruns" startup.kustomize "kustomize build ${kcli:-(kubectl)} (one ConfigMap)" $anchor_kustomize "$work/trivial"

kubectl_kv=""
[[ -n $kubectl ]] && kubectl_kv=$("$kubectl" version --client 2>/dev/null | sed -n 's/^Kustomize Version: //p')
for n in $scales; do
  r=$runs; [[ $n != 1 ]] && r=$srun
  log "render of the large overlay at ${n}x (ours, kustomize build, kubectl kustomize; best of $r)..."
  ov=$work/x$n/overlays/production
  sfx=""; [[ $n != 1 ]] && sfx=".x$n"
  measure_n "$r" "render.ours$sfx" "kyverno-gate render, ${n}x (in-process driver)" bin/bench-stages -root "$work/x$n" render "$ov"
  if [[ -n $kustomize ]]; then
    measure_n "$r" "render.kustomize$sfx" "kustomize build $kcli, ${n}x (same overlay)" \
      "$kustomize" build --load-restrictor LoadRestrictionsNone "$ov"
  fi
  if [[ -n $kubectl ]]; then
    measure_n "$r" "render.kubectl$sfx" "kubectl kustomize $kubectl_kv, ${n}x (same overlay)" \
      "$kubectl" kustomize --load-restrictor LoadRestrictionsNone "$ov"
  fi
done

log "test gate on the corpus (upstream, then ours)..."
measure_n "$long" test.upstream "upstream kyverno test (corpus)" bin/kyverno-upstream test "$corpus"
measure_n "$long" test.ours "kyverno-gate test (corpus)" bin/kyverno-gate test "$corpus" --log-level error

log "weakening diff of two large renderings..."
measure diff.ours "kyverno-gate weakening diff (process)" bin/bench-stages -root "$x1" diff "$overlay" "$x1/baseline.yaml"
diff_inproc=$(awk -F'\t' '$1=="load"||$1=="diff"{s+=$2} END{printf "%.3f", s}' "$work/diff.ours.out")
diff_only=$(awk -F'\t' '$1=="diff"{print $2}' "$work/diff.ours.out")
put diff.inproc "kyverno-gate load both + diff (in-process)" "$diff_inproc" "$(awk -F'\t' '$1=="diff.ours"{print $4}' "$out/raw.tsv.tmp")"
measure diff.anchor "diff -u of the two renderings (text)" diff -u "$x1/baseline.yaml" "$work/head.yaml"

log "full generate of the large overlay (render + validate + tests + baseline diff)..."
measure_n "$long" generate.ours "kyverno-gate generate (large overlay, tests, baseline)" \
  bin/kyverno-gate generate "$overlay" --tests policies --baseline file:baseline.yaml --timeout 10m --cache=false
cp "$work/generate.ours.err" "$out/generate.stderr"
r=$(awk -F'\t' '$1=="render.kustomize"{print $3}' "$out/raw.tsv.tmp")
t=$(awk -F'\t' '$1=="test.upstream"{print $3}' "$out/raw.tsv.tmp")
rm_=$(awk -F'\t' '$1=="render.kustomize"{print $4}' "$out/raw.tsv.tmp")
tm=$(awk -F'\t' '$1=="test.upstream"{print $4}' "$out/raw.tsv.tmp")
put generate.anchor "kustomize build + upstream kyverno test (sum)" "$(awk "BEGIN{printf \"%.2f\", $r + $t}")" "$((rm_ > tm ? rm_ : tm))"

log "the whole pipeline in-process at each scale (bench/stages generate: the process's time and peak RSS, and each gate's time)..."
: > "$out/stages.tsv"
for n in $scales; do
  sfx=""; [[ $n != 1 ]] && sfx=".x$n"
  measure_n 1 "stages$sfx" "bench/stages generate, ${n}x (the whole pipeline, in-process)" \
    bin/bench-stages -root "$work/x$n" generate "$work/x$n/overlays/production" tests=policies baseline=file:baseline.yaml timeout=30m
  awk -F'\t' -v n="$n" '{sub(/^gate /, "", $1); print n "\t" $1 "\t" $2}' "$work/stages$sfx.out" >> "$out/stages.tsv"
  cp "$work/stages$sfx.err" "$out/generate$sfx.stages.stderr"
done
cp "$work/stages.out" "$work/breakdown.out"

# Re-generation with the result cache (parameter cache; the runs above are
# cold): fill it at 1x and 7x, then measure a run with nothing changed, and
# at 7x one after a commit that edits one policy (the title of the first
# policy the base lists: its rendered document changes, so the suites that
# run it miss).
log "re-generation with the result cache (fill, nothing changed; at 7x also one policy edited)..."
cdir=$work/cache
for n in 1 7; do
  args=(-cache "$cdir" -root "$work/x$n" generate "$work/x$n/overlays/production" tests=policies baseline=file:baseline.yaml timeout=30m)
  bin/bench-stages "${args[@]}" >/dev/null 2>&1 || true
  measure_n 1 "warm.x$n.same" "bench/stages generate, ${n}x, again, nothing changed (cache warm)" bin/bench-stages "${args[@]}"
  if [[ $n == 7 ]]; then
    edited=""
    while read -r f; do
      if grep -q 'policies.kyverno.io/title:' "$work/x7/base/$f"; then edited=$work/x7/base/$f; break; fi
    done < <(sed -n 's/^- \(\.\.\/policies\/c1\/.*\.yaml\)$/\1/p' "$work/x7/base/kustomization.yaml")
    [[ -n $edited ]] || { echo "bench: no policy with a title in the 7x base to edit" >&2; exit 2; }
    sed -i '0,/policies.kyverno.io\/title:.*/s//& (edited)/' "$edited"
    log "edited ${edited#"$work"/}"
    measure_n 1 warm.x7.changed "bench/stages generate, 7x, after a one-policy commit (cache warm)" bin/bench-stages "${args[@]}"
  fi
done

mv "$out/raw.tsv.tmp" "$out/raw.tsv"

# --- Go benchmarks --------------------------------------------------------
if [[ ${BENCH_GO:-0} != 0 ]]; then
  log "Go benchmarks (scaling at 1x/2x/4x, micro-benchmarks)..."
  mkdir -p "$work/tests"
  go test -c -o "$work/tests/" ./render ./kyverno ./gate/diff ./gate/scope ./gate/kyvernotest
  export KYVERNO_GATE_LARGEREPO=$work KYVERNO_GATE_CORPUS=$corpus
  : > "$out/gobench.txt"
  gobench() { # PKGDIR BINARY ARGS...
    local dir=$1 bin=$2; shift 2
    (cd "$dir" && "$work/tests/$bin" -test.run '^$' -test.benchmem "$@") | { grep -E '^(Benchmark|goos|goarch|cpu|pkg)' || true; } | tee -a "$out/gobench.txt" >&2
  }
  gobench render render.test -test.bench 'BenchmarkRender' -test.benchtime 1x -test.count "$gocount"
  gobench kyverno kyverno.test -test.bench 'BenchmarkLoad' -test.benchtime 1x -test.count "$gocount"
  gobench gate/diff diff.test -test.bench 'BenchmarkDiff' -test.benchtime 1x -test.count "$gocount"
  gobench gate/kyvernotest kyvernotest.test -test.bench 'BenchmarkTestGate' -test.benchtime 1x -test.count "$gocount"
  gobench gate/diff diff.test -test.bench 'BenchmarkScope' -test.benchtime 300ms
  gobench gate/scope scope.test -test.bench 'BenchmarkGlobCovers' -test.benchtime 300ms
fi

# --- report ---------------------------------------------------------------
get() { awk -F'\t' -v k="$1" -v c="$2" '$1==k{print $c}' "$out/raw.tsv"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }'; }
row() { # KEY ANCHOR-KEY
  local k=$1 a=$2
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | **%s** | %s | %s |\n' "$(get "$k" 2)" "$(get "$k" 3)" "$(get "$k" 5)" "$(get "$k" 4)" \
    "$(get "$a" 2)" "$(get "$a" 3)" "$(get "$a" 5)" "$(get "$a" 4)" "$(ratio "$(get "$k" 3)" "$(get "$a" 3)")" "$(ratio "$(get "$k" 4)" "$(get "$a" 4)")" "$(get "$k" 6)"
}
verdict() { if awk "BEGIN{exit !($1)}"; then echo met; else echo "**missed**"; fi; }
# best ns/op of a Go benchmark name (e.g. BenchmarkLoad/x2-2)
ns() { awk -v n="$1" '$1==n{for(i=2;i<NF;i++) if ($(i+1)=="ns/op") print $i}' "$out/gobench.txt" | sort -g | head -n 1; }
allocs() { awk -v n="$1" '$1==n{for(i=2;i<NF;i++) if ($(i+1)=="allocs/op") print $i}' "$out/gobench.txt" | sort -g | head -n 1; }
procs=$(go env GOMAXPROCS 2>/dev/null || true); procs=${procs:-$(nproc)}
suf="-$(nproc)"; [[ $(nproc) == 1 ]] && suf=""
elapsed=$(( $(date +%s) - started ))
{
  echo "# kyverno-gate benchmarks"
  echo
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/{printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3), $(date -u +%Y-%m-%d); load average at start $load_at_start."
  echo "Data: kyverno/policies ($(find "$corpus" -name kyverno-test.yaml | wc -l) test files); the large overlay lists $(sed -n 's/^ *"objects": \([0-9]*\),/\1/p' "$x1/summary.json") policies (every policy file kustomize accepts; see bench/out/largerepo.txt), patched to Enforce, with origin annotations; baseline: a saved rendering in which some policies were Audit or absent."
  echo "Each command: best of $runs runs at 1x (the corpus tests and the large generate: best of $long; start-up: best of $sruns; at 2x, 4x, 7x: best of $srun); CPU s is user + system time; load is the 1-minute load average when the best run started; peak MB is the process's peak RSS (/usr/bin/time), which for the Kyverno-linked binaries includes ~145 MB of the binary's own file-backed pages."
  echo
  echo "| ours | s | CPU s | peak MB | anchor | s | CPU s | peak MB | time ours/anchor | memory ours/anchor | load |"
  echo "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|"
  row startup.ours startup.upstream
  for n in $scales; do
    sfx=""; [[ $n != 1 ]] && sfx=".x$n"
    [[ -n $(get "render.kustomize$sfx" 3) ]] && row "render.ours$sfx" "render.kustomize$sfx"
    [[ -n $(get "render.kubectl$sfx" 3) ]] && row "render.ours$sfx" "render.kubectl$sfx"
  done
  row test.ours test.upstream
  row diff.ours diff.anchor
  row diff.inproc diff.anchor
  row generate.ours generate.anchor
  for n in $scales; do
    sfx=""; [[ $n != 1 ]] && sfx=".x$n"
    printf '| %s | %s | %s | %s | | | | | | | %s |\n' "$(get "stages$sfx" 2)" "$(get "stages$sfx" 3)" "$(get "stages$sfx" 5)" "$(get "stages$sfx" 4)" "$(get "stages$sfx" 6)"
  done
  echo
  echo "Start-up anchors: $(get startup.kustomize 2) $(get startup.kustomize 3) s / $(get startup.kustomize 4) MB. The diff has no upstream equivalent: its anchor is the textual diff a reviewer would read; the diff alone (loaded objects in, changes out) took ${diff_only:-?} s."
  echo
  echo "## Targets (issue 18; 2 cores)"
  echo
  echo "| target | measured | verdict |"
  echo "|---|---|---|"
  g7=$(get stages.x7 3); g7m=$(get stages.x7 4)
  echo "| x7 full generate < 60 s and < 1 GiB peak RSS (cold; the pipeline in-process, bench/stages) | $g7 s, $g7m MB, CPU $(get stages.x7 5) s (load $(get stages.x7 6)) | $(verdict "$g7 < 60 && $g7m < 1024") |"
  g=$(get generate.ours 3); gm=$(get generate.ours 4)
  echo "| x1 full generate < 5 s and < 512 MB (cold: \`--cache=false\`) | $g s, $gm MB (load $(get generate.ours 6)); warm, nothing changed: $(get warm.x1.same 3) s | $(verdict "$g < 5 && $gm < 512") |"
  for n in $scales; do
    sfx=""; [[ $n != 1 ]] && sfx=".x$n"
    ro=$(get "render.ours$sfx" 3)
    for a in kubectl kustomize; do
      rk=$(get "render.$a$sfx" 3)
      [[ -z $rk ]] && continue
      name="kubectl kustomize"; [[ $a == kustomize ]] && name="kustomize build $kcli"
      if [[ $n == 7 ]]; then
        echo "| render faster than $name at x7 | $ro s vs $rk s ($(ratio "$rk" "$ro")x) | $(verdict "$ro < $rk") |"
      else
        echo "| render no slower than $name at x$n | $ro s vs $rk s | $(verdict "$ro <= $rk") |"
      fi
    done
  done
  tu=$(get test.upstream 3); to=$(get test.ours 3); tuc=$(get test.upstream 5); toc=$(get test.ours 5)
  echo "| test gate ≥ 10x faster than upstream \`kyverno test\` on the corpus (wall) | $(ratio "$tu" "$to")x ($to s vs $tu s; CPU $toc s vs $tuc s, $(ratio "$tuc" "$toc")x) | $(verdict "$tu >= 10 * $to") |"
  w7=$(get warm.x7.changed 3)
  echo "| re-generation after a one-policy commit at x7 < 5 s (result cache warm) | $w7 s, $(get warm.x7.changed 4) MB (load $(get warm.x7.changed 6)); nothing changed: $(get warm.x7.same 3) s; cold: $g7 s | $(verdict "$w7 < 5") |"
  so=$(get startup.ours 3)
  echo "| start-up of a trivial generate < 100 ms | $(awk "BEGIN{printf \"%.0f\", $so * 1000}") ms | $(verdict "$so < 0.1") |"
  echo "| \`make bench\` < 25 min | this run: $((elapsed / 60)) min $((elapsed % 60)) s | $(verdict "$elapsed < 1500") |"
  echo
  echo "## Cost growth per stage"
  echo
  echo "The whole pipeline in-process (bench/stages generate, one run each), seconds per gate; the exponent k"
  echo "is the least-squares slope of log(seconds) over log(scale) (linear: 1.00). Render and the anchors"
  echo "are the processes measured above."
  echo
  hdr="| stage |"; sep="|---|"
  for n in $scales; do hdr="$hdr x$n |"; sep="$sep---:|"; done
  echo "$hdr k |"; echo "$sep---:|"
  fit() { awk '{x=log($1); y=log($2); sx+=x; sy+=y; sxx+=x*x; sxy+=x*y; n++} END{ if (n < 2 || n*sxx-sx*sx == 0) print "-"; else printf "%.2f", (n*sxy-sx*sy)/(n*sxx-sx*sx)}'; }
  growth() { # LABEL then lines "scale seconds" on stdin
    local label=$1 line="| $1 |" data; data=$(cat)
    for n in $scales; do line="$line $(awk -v n="$n" '$1==n{printf "%.2f", $2}' <<<"$data") |"; done
    echo "$line $(awk '$2 > 0.005' <<<"$data" | fit) |"
  }
  for a in ours kustomize kubectl; do
    label="render ($a, process)"; [[ $a == ours ]] && label="render (kyverno-gate, process)"
    [[ -z $(get render.$a 3) ]] && continue
    for n in $scales; do sfx=""; [[ $n != 1 ]] && sfx=".x$n"; v=$(get "render.$a$sfx" 3); [[ -n $v ]] && echo "$n $v"; done | growth "$label"
  done
  for st in $(cut -f2 "$out/stages.tsv" | awk '!seen[$0]++'); do
    awk -F'\t' -v s="$st" '$2==s{print $1, $3}' "$out/stages.tsv" | growth "$st"
  done
  echo
  echo "## Where the large generate spends its time"
  echo
  echo "One in-process run of the same pipeline at 1x (bench/stages), seconds:"
  echo
  echo '```'
  cat "$work/breakdown.out"
  echo '```'
  if [[ -s $out/gobench.txt ]]; then
    echo
    echo "## Scaling (Go benchmarks, best of $gocount, one operation each)"
    echo
    echo "| stage | 1x | 2x | 4x | 2x/1x | 4x/1x | allocs/op 1x | allocs/op 4x |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    for b in BenchmarkRender/ours BenchmarkRender/krusty BenchmarkLoad BenchmarkDiff BenchmarkTestGate; do
      a=$(ns "$b/x1$suf"); m=$(ns "$b/x2$suf"); d=$(ns "$b/x4$suf")
      [[ -z $a ]] && continue
      s() { awk -v v="$1" 'BEGIN{ if (v == "") print "-"; else printf "%.3f s", v / 1e9 }'; }
      echo "| $b | $(s "$a") | $(s "$m") | $(s "$d") | $(ratio "$m" "$a") | $(ratio "$d" "$a") | $(allocs "$b/x1$suf") | $(allocs "$b/x4$suf") |"
    done
    echo
    echo "Linear is 2.00 and 4.00. Micro-benchmarks (per rule of the corpus for BenchmarkScope):"
    echo
    echo '```'
    grep -E '^Benchmark(Scope|GlobCovers)' "$out/gobench.txt" | awk '{printf "%-44s %12s ns/op %8s B/op %6s allocs/op\n", $1, $3, $5, $7}'
    echo '```'
  fi
  echo
  echo "This run of bench/run.sh took $((elapsed / 60)) min $((elapsed % 60)) s with a warm build cache (anchors reused if already built); a cold cache adds the one-time Kyverno compile (~12 min on 2 cores) and the anchors' builds."
} > "$out/results.md"
cat "$out/results.md"
