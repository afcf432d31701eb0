#!/usr/bin/env bash
# Runs the module's Go fuzz targets (func FuzzXxx(f *testing.F) in *_test.go),
# each for FUZZTIME, one `go test -fuzz` per target: go test fuzzes only one
# target of one package per invocation. See docs/fuzzing.md.
#
# Usage: scripts/fuzz.sh [regexp]    run the targets whose "pkg.FuzzName" matches
#
#   FUZZTIME=60s          time per target (default 10s), seeds included; "500x"
#                         counts executions instead
#   FUZZMINIMIZETIME=1s   time to minimise each new input (default 1s, 0 for none;
#                         go test's default of 60s can eat a short run)
#   FUZZ_SKIP=regexp      skip the targets whose "pkg.FuzzName" matches
#   FUZZ_REPORT=file      also write the summary table (Markdown) there
#   KYVERNO_GATE_FUZZ_SEEDS=n  corpus files each target takes as seeds (default
#                         300; internal/fuzzseed), all run before fuzzing starts
#
# A failing target leaves its input in <pkg>/testdata/fuzz/<FuzzName>/ (where
# `go test` then runs it as a seed); the script runs the other targets and
# exits 1 at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
fuzztime=${FUZZTIME:-10s}
minimize=${FUZZMINIMIZETIME:-1s}
only=${1:-.}
skip=${FUZZ_SKIP:-}
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

# Every target, as "<package dir> <FuzzName>", from the sources: listing them
# with `go test -list` would compile every test binary first.
mapfile -t targets < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' \
	--exclude-dir=e2e --exclude-dir=testdata . |
	sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]+).*|\1 \2|' | sort)

failed=0
rows=()
total_start=$SECONDS
for t in "${targets[@]}"; do
	pkg=${t% *} name=${t#* }
	id="$pkg.$name"
	[[ $id =~ $only ]] || continue
	if [[ -n $skip && $id =~ $skip ]]; then continue; fi
	start=$SECONDS
	out="$log/${id//\//_}.log"
	echo "== $id ($fuzztime)"
	# -vet=off: make test vets the same sources; vet here would build every
	# dependency a second time, uninstrumented.
	run() {
		$GO test -vet=off -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" -fuzzminimizetime="$minimize" \
			-timeout=60m "./$pkg" >"$out" 2>&1
	}
	# Go's fuzzer can end a run with a bare "context deadline exceeded"
	# when the fuzz time runs out (a race in its coordinator at the
	# -fuzztime boundary, seen on loaded machines): no
	# input failed and no crasher was written, so the target runs again
	# once. A real failure writes testdata/fuzz/<name>/ and fails again.
	if run || { grep -q '^    context deadline exceeded$' "$out" && ! grep -q 'Failing input written' "$out" &&
		echo "   (the fuzzer stopped on its own deadline, no failing input: running it again)" && run; }; then
		result=ok
	else
		result=FAIL
		failed=1
		grep -vE '^fuzz: elapsed' "$out" | tail -n 40
	fi
	last=$(grep -E '^fuzz: elapsed' "$out" | tail -n 1)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	interesting=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
	secs=$((SECONDS - start))
	echo "   $result: ${execs:-?} executions, ${interesting:-?} new interesting inputs, ${secs} s with build"
	rows+=("| \`$pkg\` | \`$name\` | ${execs:-?} | ${interesting:-?} | $result | $secs |")
done

summary() {
	echo "| package | target | executions | new interesting | result | seconds (with build) |"
	echo "|---|---|---:|---:|---|---:|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "FUZZTIME=$fuzztime per target, FUZZMINIMIZETIME=$minimize, ${KYVERNO_GATE_FUZZ_SEEDS:-300} corpus seeds; $((SECONDS - total_start)) s in all; $($GO version)."
}
echo
summary
if [[ -n ${FUZZ_REPORT:-} ]]; then summary >"$FUZZ_REPORT"; fi
exit $failed
