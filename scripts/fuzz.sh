#!/usr/bin/env bash
# fuzz.sh: give every Go fuzz target in the module a short run.
#
# Lists the Fuzz functions of each package with "go test -list" and runs
# each one alone for FUZZTIME (default 5s). Stops at the first target that
# finds a failure; go test then saves the input under testdata/fuzz/.
# Usage: scripts/fuzz.sh [package pattern, default ./...]
set -euo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}

cd "$(dirname "${BASH_SOURCE[0]}")/.."

# run_target runs one target. The fuzzer can fail with "context deadline
# exceeded" when a worker is slow to stop at the end of the time (a target
# that runs a live device is prone to it); that failure comes with no failing
# input, so it is retried, twice at most. Workers stop executing while they
# minimize an input that found new coverage, by default for up to a minute,
# which makes such timeouts likelier in a run of a few seconds: minimizing is
# capped at 1 s (a failing input is then saved less reduced).
# A real finding says "Failing input written to" and fails at once.
run_target() {
	local pkg=$1 target=$2 out
	for attempt in 1 2 3; do
		if out=$("${GO}" test -run '^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME}" \
			-fuzzminimizetime=1s "${pkg}" 2>&1); then
			printf '%s\n' "${out}"
			return 0
		fi
		printf '%s\n' "${out}"
		if grep -q 'Failing input written to' <<<"${out}" ||
			! grep -q 'context deadline exceeded' <<<"${out}"; then
			return 1
		fi
		echo "fuzz: ${target}: the fuzzer timed out stopping, with no failing input; again (${attempt})"
	done
	return 1
}

pkgs=$("${GO}" list "${1:-./...}")
count=0
for pkg in ${pkgs}; do
	# A package that does not build fails here, not silently below.
	list=$("${GO}" test -list '^Fuzz' "${pkg}")
	for target in $(grep -E '^Fuzz[[:alnum:]_]*$' <<<"${list}" || true); do
		echo "fuzz: ${pkg} ${target} for ${FUZZTIME}"
		run_target "${pkg}" "${target}"
		count=$((count + 1))
	done
done

echo "fuzz: ran ${count} fuzz targets for ${FUZZTIME} each"
