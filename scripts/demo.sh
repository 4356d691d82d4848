#!/usr/bin/env bash
# demo.sh: three hoprd hosts in network namespaces, talking over the overlay.
#
#   hopa-*        hopb-*        hopc-*       each: hop0 (overlay), eth0 (underlay)
#     | veth        | veth        | veth
#   hopsw-*: bridge br0
#
# underlay 192.0.2.1-3/24, overlay 100.64.0.1-3/24 and fd7a:686f:7072::1-3/64.
# Builds hoprd (or uses $HOPRD), writes keys and configs to a temp dir,
# starts the three daemons with hop_interval 1s, pings across the overlay,
# shows "hoprd status" twice a few seconds apart so the hops can be seen
# moving, and takes everything down on exit (or on Ctrl-C).
# Set DEMO_HOLD=1 to keep the hosts up until Ctrl-C. Needs root.
set -euo pipefail
# Config and key files must not be writable by group or others (hoprd
# refuses them), whatever the caller's umask.
umask 077

readonly ROLES=(a b c)
readonly PORT=51820
readonly HOP_INTERVAL=1s
readonly IFACE=hop0

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ${EUID} -ne 0 ]]; then
	echo "demo: needs root (network namespaces, TUN)" >&2
	exit 1
fi
for tool in ip ping; do
	if ! command -v "${tool}" >/dev/null; then
		echo "demo: ${tool} is missing: run scripts/deps.sh" >&2
		exit 1
	fi
done

# Names follow the test harness (hop<role>-<pid>-<tag>), so the tests sweep
# away what a killed demo leaves behind.
tag="$$-$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')"
tmp=$(mktemp -d /tmp/hoprd-demo.XXXXXX)
switch_ns="hopsw-${tag}"
declare -A ns pid pub
for r in "${ROLES[@]}"; do
	ns[$r]="hop${r}-${tag}"
done
failures=0

cleanup() {
	local r i
	trap - EXIT INT TERM
	set +e
	for r in "${ROLES[@]}"; do
		[[ -n ${pid[$r]:-} ]] && kill -TERM "${pid[$r]}" 2>/dev/null
	done
	for r in "${ROLES[@]}"; do
		[[ -z ${pid[$r]:-} ]] && continue
		for ((i = 0; i < 50; i++)); do
			kill -0 "${pid[$r]}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${pid[$r]}" 2>/dev/null
		wait "${pid[$r]}" 2>/dev/null
	done
	for r in "${ROLES[@]}"; do
		ip netns del "${ns[$r]}" 2>/dev/null
	done
	ip netns del "${switch_ns}" 2>/dev/null
	rm -rf "${tmp}"
	echo "demo: torn down"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n== %s\n' "$*"; }

if [[ -z ${HOPRD:-} ]]; then
	step "building hoprd"
	HOPRD="${tmp}/hoprd"
	go build -o "${HOPRD}" ./cmd/hoprd
fi
HOPRD=$(realpath "${HOPRD}")

step "underlay: switch ${switch_ns} and hosts ${ns[a]} ${ns[b]} ${ns[c]}"
ip netns add "${switch_ns}"
ip -n "${switch_ns}" link set lo up
ip -n "${switch_ns}" link add br0 type bridge stp_state 0
ip -n "${switch_ns}" link set br0 up
n=1
for r in "${ROLES[@]}"; do
	ip netns add "${ns[$r]}"
	ip -n "${ns[$r]}" link set lo up
	ip -n "${ns[$r]}" link add eth0 type veth peer name "p${r}" netns "${switch_ns}"
	ip -n "${switch_ns}" link set "p${r}" master br0 up
	ip -n "${ns[$r]}" addr add "192.0.2.${n}/24" dev eth0
	ip -n "${ns[$r]}" link set eth0 up
	n=$((n + 1))
done

step "keys and configs in ${tmp}"
for r in "${ROLES[@]}"; do
	mkdir -p "${tmp}/${r}/run" "${tmp}/${r}/state"
	"${HOPRD}" genkey --out "${tmp}/${r}/private.key"
	pub[$r]=$("${HOPRD}" pubkey <"${tmp}/${r}/private.key")
	echo "${r}: ${pub[$r]}"
done
n=1
for r in "${ROLES[@]}"; do
	{
		printf '[interface]\nname = "%s"\nprivate_key_file = "%s"\n' \
			"${IFACE}" "${tmp}/${r}/private.key"
		printf 'address = ["100.64.0.%d/24", "fd7a:686f:7072::%d/64"]\n' "${n}" "${n}"
		printf 'listen_port = %d\nhop_interval = "%s"\n' "${PORT}" "${HOP_INTERVAL}"
		m=1
		for p in "${ROLES[@]}"; do
			if [[ ${p} != "${r}" ]]; then
				printf '\n[[peer]]\nname = "%s"\npublic_key = "%s"\n' "${p}" "${pub[$p]}"
				printf 'endpoint = "192.0.2.%d:%d"\n' "${m}" "${PORT}"
				printf 'allowed_ips = ["100.64.0.%d/32", "fd7a:686f:7072::%d/128"]\n' \
					"${m}" "${m}"
				printf 'persistent_keepalive = "5s"\n'
			fi
			m=$((m + 1))
		done
	} >"${tmp}/${r}/hoprd.toml"
	n=$((n + 1))
done
echo "config of a:"
sed 's/^/    /' "${tmp}/a/hoprd.toml"

status() {
	"${HOPRD}" status -i "${IFACE}" --run-dir "${tmp}/$1/run" "${@:2}"
}

step "starting the daemons (hop_interval ${HOP_INTERVAL})"
started_ms=$(date +%s%3N)
for r in "${ROLES[@]}"; do
	ip netns exec "${ns[$r]}" "${HOPRD}" up -c "${tmp}/${r}/hoprd.toml" \
		--run-dir "${tmp}/${r}/run" --state-dir "${tmp}/${r}/state" \
		--wg-dir "${tmp}/${r}/wg" \
		>"${tmp}/${r}/hoprd.log" 2>&1 &
	pid[$r]=$!
done
for r in "${ROLES[@]}"; do
	for ((i = 0; ; i++)); do
		if ! kill -0 "${pid[$r]}" 2>/dev/null; then
			echo "demo: the daemon on ${r} exited; its log:" >&2
			cat "${tmp}/${r}/hoprd.log" >&2
			exit 1
		fi
		if status "${r}" >/dev/null 2>&1; then
			break
		fi
		if ((i == 100)); then
			echo "demo: the daemon on ${r} did not answer in 10 s; its log:" >&2
			cat "${tmp}/${r}/hoprd.log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "${r}: running (pid ${pid[$r]})"
done

# last_handshake_ms prints, in ms since the epoch, when the latest of the
# handshakes in a status JSON completed (the daemon's own timestamp, not the
# time the poll below noticed it).
last_handshake_ms() {
	local t ms latest=0
	while read -r t; do
		ms=$(date -d "${t}" +%s%3N)
		if ((ms > latest)); then
			latest=${ms}
		fi
	done < <(grep -o '"last_handshake": *"[^"]*"' <<<"$1" | cut -d '"' -f 4)
	echo "${latest}"
}

# With persistent_keepalive set, the daemons handshake without traffic.
# Started together, a pair can collide on its first try and retry after the
# rekey timeout (5 s), so give them a few of those before pinging.
step "waiting for the handshakes"
for r in "${ROLES[@]}"; do
	for ((i = 0; ; i++)); do
		if ! js=$(status "${r}" --json); then
			echo "demo: status of ${r} failed; its log:" >&2
			cat "${tmp}/${r}/hoprd.log" >&2
			exit 1
		fi
		if ! grep -q '"last_handshake": *null' <<<"${js}"; then
			took=$(($(last_handshake_ms "${js}") - started_ms))
			echo "${r}: handshakes done with all peers ${took} ms after the daemons were started"
			break
		fi
		if ((i == 200)); then
			echo "${r}: still waiting for a handshake after 20 s; pinging anyway"
			break
		fi
		sleep 0.1
	done
done

step "pinging across the overlay"
for src in "${ROLES[@]}"; do
	m=1
	for dst in "${ROLES[@]}"; do
		if [[ ${src} != "${dst}" ]]; then
			for addr in "100.64.0.${m}" "fd7a:686f:7072::${m}"; do
				if out=$(ip netns exec "${ns[$src]}" ping -n -c 2 -W 2 "${addr}" 2>&1); then
					printf '%s -> %-20s %s\n' "${src}" "${addr}" \
						"$(grep -o '[0-9]* received' <<<"${out}")"
				else
					printf '%s -> %-20s FAILED\n%s\n' "${src}" "${addr}" "${out}"
					failures=$((failures + 1))
				fi
			done
		fi
		m=$((m + 1))
	done
done

step "status of a"
status a
sleep 4
step "status of a, 4 s later: the epochs and hops have moved on"
status a

if ((failures > 0)); then
	echo "demo: ${failures} pings failed; logs:" >&2
	for r in "${ROLES[@]}"; do
		echo "--- ${r}" >&2
		tail -n 50 "${tmp}/${r}/hoprd.log" >&2
	done
	exit 1
fi

if [[ -n ${DEMO_HOLD:-} ]]; then
	step "holding; try: ip netns exec ${ns[a]} ping 100.64.0.2   (Ctrl-C ends)"
	wait
fi
