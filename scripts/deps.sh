#!/usr/bin/env bash
# deps.sh: make sure the programs the tests and the demo run are installed.
#
# Checks for ip, ping, iperf3, nft and wg. When one is missing and we run as
# root with apt-get at hand, installs the Debian packages that ship them
# (apt-get install; on failure apt-get update and one more try). Otherwise
# it names what is missing: a failure under CI (CI non-empty), a warning for
# a developer without root, whose namespace tests skip anyway.
set -euo pipefail

# tool:package pairs.
readonly DEPS=(
	"ip:iproute2"
	"ping:iputils-ping"
	"iperf3:iperf3"
	"nft:nftables"
	"wg:wireguard-tools"
)

missing_pkgs() {
	local dep
	for dep in "${DEPS[@]}"; do
		if ! command -v "${dep%%:*}" >/dev/null 2>&1; then
			printf '%s\n' "${dep#*:}"
		fi
	done
}

apt_install() {
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		-o Dpkg::Use-Pty=0 "$@" </dev/null
}

main() {
	# sbin directories hold ip and nft; a plain user's PATH may lack them.
	export PATH="${PATH}:/usr/local/sbin:/usr/sbin:/sbin"
	local -a pkgs
	mapfile -t pkgs < <(missing_pkgs)
	if ((${#pkgs[@]} == 0)); then
		echo "deps: all tools present"
		return 0
	fi
	echo "deps: missing packages: ${pkgs[*]}"
	if [[ ${EUID} -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: cannot install (need root and apt-get); run: apt-get install ${pkgs[*]}" >&2
		if [[ -n ${CI:-} ]]; then
			return 1
		fi
		echo "deps: continuing; the namespace tests will skip or fail" >&2
		return 0
	fi
	if ! apt_install "${pkgs[@]}"; then
		echo "deps: install failed; updating the package lists and trying again"
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
		apt_install "${pkgs[@]}"
	fi
	mapfile -t pkgs < <(missing_pkgs)
	if ((${#pkgs[@]} != 0)); then
		echo "deps: still missing after install: ${pkgs[*]}" >&2
		return 1
	fi
	echo "deps: installed"
}

main "$@"
