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

pkgs=$("${GO}" list "${1:-./...}")
count=0
for pkg in ${pkgs}; do
	# A package that does not build fails here, not silently below.
	list=$("${GO}" test -list '^Fuzz' "${pkg}")
	for target in $(grep -E '^Fuzz[[:alnum:]_]*$' <<<"${list}" || true); do
		echo "fuzz: ${pkg} ${target} for ${FUZZTIME}"
		"${GO}" test -run '^$' -fuzz="^${target}\$" -fuzztime="${FUZZTIME}" "${pkg}"
		count=$((count + 1))
	done
done

echo "fuzz: ran ${count} fuzz targets for ${FUZZTIME} each"
