#!/usr/bin/env bash
# bench.sh: how fast, how lean and how loaded hoprd is next to wireguard-go and
# the bare link, measured on this machine in two network namespaces.
#
#   hbench-<tag>-a                              hbench-<tag>-b
#     veth0 192.0.2.1/24 <------ veth ------> veth0 192.0.2.2/24    (a) veth: the ceiling
#     hb<tag>a 100.64.1.1 ~~~ wireguard-go ~~~ hb<tag>b 100.64.1.2   (b) wireguard-go
#     hb<tag>a 100.64.2.1 ~~~ hoprd, hop 1s ~~ hb<tag>b 100.64.2.2   (c) hop1s
#     hb<tag>a 100.64.3.1 ~~ hoprd, hop 50ms ~ hb<tag>b 100.64.3.2   (d) hop50ms
#                                              iperf3 -s runs here
#
# Each round brings each tunnel up in turn, measures it from a to b and takes it
# down again. The order changes every round, in a balanced Latin square, so that
# neither drift of the machine nor the system that ran just before favours any:
#   ping      RTT p50 and p99 of PING_COUNT pings 10 ms apart, on an idle link
#   tcp1/4    iperf3 TCP for DURATION seconds, 1 and 4 streams
#   udp       iperf3 UDP at UDP_RATE offered for UDP_DURATION s: goodput and loss
#   cpu/GB    CPU seconds (user+system) both daemons used during the TCP tests,
#             per GB received
#   rss       peak RSS (VmHWM) of the larger of the two daemons
#   retr      TCP retransmissions iperf3 counted, 1 and 4 streams
#   drops     what both hoprd daemons dropped over the round (hoprd status)
# Then the scale tests: time, RSS and idle CPU with PEERS peers, each with its
# own key and /32 (wireguard-go from its start until `wg setconf` returns;
# hoprd from its start until `hoprd status` answers, with the peers in its
# config file or, when `hoprd check` refuses a file that large, added with
# `wg addconf` over its configuration socket), and the RSS across CYCLES
# add/remove cycles of a peer over the configuration socket of a daemon with
# one peer (where hoprd serves no socket, through the device package in
# memory). Last, the Go benchmarks of the hot paths.
#
# Prints a table of medians over ROUNDS rounds, each figure also as a ratio to
# wireguard-go, and the targets met or missed, and writes it to OUT (every
# sample beside it, as .tsv). Everything it creates (namespaces, interfaces,
# processes, sockets, files) is removed on exit, also on Ctrl-C.
#
# Knobs (environment): ROUNDS=3 DURATION=10 UDP_DURATION=5 UDP_RATE=300M
# PING_COUNT=500 PEERS=10000 CYCLES=5000 SCALE=1 GOBENCH=1 (0 skips either part)
# SYSTEMS="veth wg hop1s hop50ms" OUT=bin/bench-DATE.md HOPRD=path/to/hoprd
# HOPRD_BASE=path/to/other/hoprd with "base" in SYSTEMS (a before/after run)
# PROFILE=DIR (run hoprd's engine under pprof, profiles into DIR; see
# docs/performance.md), GO (the go command). Needs root.
#
# REPORT=FILE.tsv prints the report of the samples a run saved, with the
# same knobs (SYSTEMS, ROUNDS, SCALE...), and measures nothing: no root.
set -euo pipefail
# Config and key files must not be writable by group or others (hoprd
# refuses them), whatever the caller's umask.
umask 077

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
UDP_DURATION=${UDP_DURATION:-5}
UDP_RATE=${UDP_RATE:-300M}
UDP_LEN=1200 # fits every MTU here without fragments
PING_COUNT=${PING_COUNT:-500}
PEERS=${PEERS:-10000}
CYCLES=${CYCLES:-5000}
SCALE=${SCALE:-1}
GOBENCH=${GOBENCH:-1}
SYSTEMS=${SYSTEMS:-"veth wg hop1s hop50ms"}
PROFILE=${PROFILE:-}
OUT=${OUT:-bin/bench-$(date +%Y%m%d-%H%M%S).md}
readonly PORT=51820
readonly WG_SOCK_DIR=/var/run/wireguard

export PATH="${PATH}:/usr/local/go/bin:/usr/local/sbin:/usr/sbin:/sbin"
GO=${GO:-go}

# check_knobs: refuses a knob the benchmark cannot use, before anything is
# built or created.
check_knobs() {
	local k sys bad=0
	for k in ROUNDS DURATION UDP_DURATION PING_COUNT PEERS CYCLES; do
		if ! [[ ${!k} =~ ^[1-9][0-9]*$ ]]; then
			echo "bench: ${k}=${!k}: want a whole number of at least 1" >&2
			bad=1
		fi
	done
	for k in SCALE GOBENCH; do
		if ! [[ ${!k} =~ ^[01]$ ]]; then
			echo "bench: ${k}=${!k}: want 0 (skip) or 1" >&2
			bad=1
		fi
	done
	if ! [[ ${UDP_RATE} =~ ^[0-9]+(\.[0-9]+)?[KMG]?$ ]]; then
		echo "bench: UDP_RATE=${UDP_RATE}: want a rate as iperf3 takes it, such as 300M" >&2
		bad=1
	fi
	for sys in ${SYSTEMS}; do
		case ${sys} in
		veth | wg | hop1s | hop50ms) ;;
		base)
			if [[ ! -x ${HOPRD_BASE:-} ]]; then
				echo "bench: SYSTEMS has base: HOPRD_BASE=${HOPRD_BASE:-} is no executable" >&2
				bad=1
			fi
			;;
		*)
			echo "bench: SYSTEMS: no system ${sys}: want veth, wg, hop1s, hop50ms, base" >&2
			bad=1
			;;
		esac
	done
	if [[ -z ${SYSTEMS// /} ]]; then
		echo "bench: SYSTEMS is empty" >&2
		bad=1
	fi
	if [[ -n ${HOPRD:-} && ! -x ${HOPRD} ]]; then
		echo "bench: HOPRD=${HOPRD}: no executable" >&2
		bad=1
	fi
	((bad == 0)) || exit 2
}
check_knobs

if [[ -z ${REPORT:-} && ${EUID} -ne 0 ]]; then
	echo "bench: needs root (network namespaces, TUN)" >&2
	exit 1
fi

# ---------------------------------------------------------------- tools

# tool:package pairs of what the benchmark runs.
readonly DEPS=(
	"ip:iproute2" "ping:iputils-ping" "iperf3:iperf3" "wg:wireguard-tools"
	"jq:jq" "awk:gawk"
)

install_deps() {
	local dep
	local -a pkgs=()
	for dep in "${DEPS[@]}"; do
		command -v "${dep%%:*}" >/dev/null 2>&1 || pkgs+=("${dep#*:}")
	done
	((${#pkgs[@]} == 0)) && return 0
	echo "bench: installing ${pkgs[*]}"
	local apt=(apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0)
	if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${pkgs[@]}" </dev/null; then
		DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
		DEBIAN_FRONTEND=noninteractive "${apt[@]}" "${pkgs[@]}" </dev/null
	fi
}

# ---------------------------------------------------------------- state and cleanup

tag=$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
tmp=$(mktemp -d /tmp/hoprd-bench.XXXXXX)
nsA="hbench-${tag}-a"
nsB="hbench-${tag}-b"
ifA="hb${tag}a"
ifB="hb${tag}b"
declare -a pids=()        # every process started in the background
declare -a HOPRD_SIDES=() # the side directories of the hoprd system up now

cleanup() {
	local p i
	# A second Ctrl-C must not cut the cleanup short.
	trap - EXIT
	trap '' INT TERM
	set +e
	for p in "${pids[@]}"; do
		kill -TERM "${p}" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "${p}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${p}" 2>/dev/null
		wait "${p}" 2>/dev/null
	done
	ip netns del "${nsA}" 2>/dev/null
	ip netns del "${nsB}" 2>/dev/null
	rm -f "${WG_SOCK_DIR}/${ifA}.sock" "${WG_SOCK_DIR}/${ifB}.sock"
	rm -rf "${tmp}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# The owner file names this run, so that a later run can remove what this
# one leaves behind should it be killed where no trap runs (SIGKILL).
echo "$$ ${tag}" >"${tmp}/owner"

# reap_orphans: removes the namespaces, processes, sockets and files of
# earlier runs that died without cleaning up.
reap_orphans() {
	local d pid otag ns p
	for d in /tmp/hoprd-bench.*; do
		[[ -f ${d}/owner && ${d} != "${tmp}" ]] || continue
		read -r pid otag <"${d}/owner" || continue
		[[ ${otag} =~ ^[0-9a-f]{4}$ ]] || continue
		if [[ -r /proc/${pid}/cmdline ]] &&
			tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q 'bench\.sh'; then
			continue # still running
		fi
		log "removing what run ${otag} (process ${pid}, gone) left behind"
		for ns in "hbench-${otag}-a" "hbench-${otag}-b"; do
			for p in $(ip netns pids "${ns}" 2>/dev/null); do
				kill -KILL "${p}" 2>/dev/null
			done
			ip netns del "${ns}" 2>/dev/null
		done
		rm -f "${WG_SOCK_DIR}/hb${otag}a.sock" "${WG_SOCK_DIR}/hb${otag}b.sock"
		rm -rf "${d}"
	done
	return 0
}

log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
die() {
	log "bench: $*"
	exit 1
}

# bg NS LOG CMD...: starts CMD in namespace NS (or in this one, NS "-"), its
# output to LOG; sets BG_PID.
bg() {
	local ns=$1 out=$2
	shift 2
	if [[ ${ns} == - ]]; then
		"$@" >"${out}" 2>&1 &
	else
		ip netns exec "${ns}" "$@" >"${out}" 2>&1 &
	fi
	BG_PID=$!
	pids+=("${BG_PID}")
}

# stop PID...: TERM, then KILL after 5 s; forgets the pids.
stop() {
	local p i
	for p in "$@"; do
		kill -TERM "${p}" 2>/dev/null || true
	done
	for p in "$@"; do
		for ((i = 0; i < 50; i++)); do
			kill -0 "${p}" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "${p}" 2>/dev/null || true
		wait "${p}" 2>/dev/null || true
		forget "${p}"
	done
}

# forget PID: drops PID from pids.
forget() {
	local p keep=()
	for p in "${pids[@]}"; do
		[[ ${p} == "$1" ]] || keep+=("${p}")
	done
	pids=("${keep[@]}")
}

# run OUT CMD...: runs CMD with its output to the file OUT and waits for it.
# CMD runs in the background so that Ctrl-C reaches this shell's traps at once:
# bash does not act on a SIGINT that a foreground program handles and exits
# from in good order, as iperf3 and ping do. Cleanup kills CMD if need be.
run() {
	local out=$1 p rc=0
	shift
	"$@" >"${out}" 2>/dev/null &
	p=$!
	pids+=("${p}")
	wait "${p}" || rc=$?
	forget "${p}"
	return "${rc}"
}

# wait_for SECONDS CMD...: retries CMD every 20 ms until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until run /dev/null "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.02
	done
}

# wait_up PID SECONDS CMD...: wait_for, giving up at once if PID exits.
wait_up() {
	local pid=$1 deadline=$((SECONDS + $2))
	shift 2
	until run /dev/null "$@"; do
		kill -0 "${pid}" 2>/dev/null || return 1
		((SECONDS < deadline)) || return 1
		sleep 0.02
	done
}

# ---------------------------------------------------------------- process figures

# cpu_ticks PID...: user+system clock ticks of the processes, summed.
cpu_ticks() {
	local p total=0 rest
	for p in "$@"; do
		rest=$(cat "/proc/${p}/stat" 2>/dev/null) || continue
		rest=${rest##*) }
		total=$((total + $(awk '{print $12 + $13}' <<<"${rest}")))
	done
	echo "${total}"
}

# status_kib FIELD PID...: the largest value of FIELD (VmRSS, VmHWM) in KiB.
status_kib() {
	local field=$1 p v max=0
	shift
	for p in "$@"; do
		v=$(awk -v f="${field}:" '$1 == f {print $2}' "/proc/${p}/status" 2>/dev/null)
		((${v:-0} > max)) && max=${v}
	done
	echo "${max}"
}

# ---------------------------------------------------------------- builds

build() {
	local version
	version=$(git describe --always --dirty 2>/dev/null || echo dev)
	if [[ -z ${HOPRD:-} ]]; then
		log "building hoprd"
		"${GO}" build -trimpath -ldflags "-X main.version=${version}" -o "${tmp}/hoprd" ./cmd/hoprd
		HOPRD=${tmp}/hoprd
	fi
	HOPRD=$(realpath "${HOPRD}")
	log "building wireguard-go (the module version in go.mod) and scripts/scale"
	"${GO}" build -o "${tmp}/wireguard-go" golang.zx2c4.com/wireguard
	"${GO}" build -o "${tmp}/scale" ./scripts/scale
	WGGO=${tmp}/wireguard-go
	SCALEBIN=${tmp}/scale
	WG_VERSION=$("${GO}" list -m -f '{{.Version}}' golang.zx2c4.com/wireguard)
	HOPRD_VERSION=${version}
}

# ---------------------------------------------------------------- the link

setup_link() {
	ip netns add "${nsA}"
	ip netns add "${nsB}"
	ip -n "${nsA}" link set lo up
	ip -n "${nsB}" link set lo up
	# No TCP metrics cached per destination: every test starts from the
	# same state, not from what an earlier round of its system left.
	ip netns exec "${nsA}" sysctl -qw net.ipv4.tcp_no_metrics_save=1
	ip netns exec "${nsB}" sysctl -qw net.ipv4.tcp_no_metrics_save=1
	ip -n "${nsA}" link add veth0 type veth peer name veth0 netns "${nsB}"
	ip -n "${nsA}" addr add 192.0.2.1/24 dev veth0
	ip -n "${nsB}" addr add 192.0.2.2/24 dev veth0
	ip -n "${nsA}" link set veth0 up
	ip -n "${nsB}" link set veth0 up
	bg "${nsB}" "${tmp}/iperf3.log" iperf3 -s
	wait_for 10 ip netns exec "${nsB}" sh -c "ss -ltn | grep -q ':5201 '" ||
		die "iperf3 server did not start"
}

# ---------------------------------------------------------------- the systems

# Each up_SYSTEM sets DST (the address to measure against) and DAEMONS (pids).

up_veth() {
	DST=192.0.2.2
	DAEMONS=()
}

# wg_side NS IF KEYFILE OVERLAY PEERPUB PEERUNDERLAY PEEROVERLAY
wg_side() {
	local ns=$1 ifc=$2 key=$3 addr=$4 peer=$5 ep=$6 allowed=$7
	ip netns exec "${ns}" wg set "${ifc}" private-key "${key}" listen-port "${PORT}" \
		peer "${peer}" endpoint "${ep}:${PORT}" allowed-ips "${allowed}/32"
	ip -n "${ns}" addr add "${addr}/24" dev "${ifc}"
	ip -n "${ns}" link set "${ifc}" up
}

up_wg() {
	local d=${tmp}/wg
	mkdir -p "${d}"
	(umask 077 && wg genkey >"${d}/a.key" && wg genkey >"${d}/b.key")
	bg "${nsA}" "${d}/a.log" env LOG_LEVEL=error "${WGGO}" -f "${ifA}"
	DAEMONS=("${BG_PID}")
	bg "${nsB}" "${d}/b.log" env LOG_LEVEL=error "${WGGO}" -f "${ifB}"
	DAEMONS+=("${BG_PID}")
	wait_for 10 test -S "${WG_SOCK_DIR}/${ifA}.sock" || die "wireguard-go a did not start"
	wait_for 10 test -S "${WG_SOCK_DIR}/${ifB}.sock" || die "wireguard-go b did not start"
	wg_side "${nsA}" "${ifA}" "${d}/a.key" 100.64.1.1 "$(wg pubkey <"${d}/b.key")" \
		192.0.2.2 100.64.1.2
	wg_side "${nsB}" "${ifB}" "${d}/b.key" 100.64.1.2 "$(wg pubkey <"${d}/a.key")" \
		192.0.2.1 100.64.1.1
	DST=100.64.1.2
}

# hoprd_conf NAME KEYFILE ADDRESS INTERVAL: the [interface] table.
hoprd_conf() {
	printf '[interface]\nname = "%s"\nprivate_key_file = "%s"\n' "$1" "$2"
	printf 'address = ["%s"]\nlisten_port = %d\nhop_interval = "%s"\n' "$3" "${PORT}" "$4"
}

# hoprd_peer NAME PUB ENDPOINT ALLOWED: one [[peer]] table.
hoprd_peer() {
	printf '\n[[peer]]\nname = "%s"\npublic_key = "%s"\n' "$1" "$2"
	[[ -n $3 ]] && printf 'endpoint = "%s:%d"\n' "$3" "${PORT}"
	printf 'allowed_ips = ["%s"]\n' "$4"
}

# start_hoprd NS SIDE-DIR: runs hoprd (or, with PROFILE, the profiled engine)
# on SIDE-DIR/hoprd.toml and waits until it answers; sets BG_PID.
start_hoprd() {
	local ns=$1 d=$2 name
	name=$(awk -F'"' '/^name/ {print $2; exit}' "${d}/hoprd.toml")
	mkdir -p "${d}/run" "${d}/state"
	if [[ -n ${PROFILE} ]]; then
		bg "${ns}" "${d}/hoprd.log" "${SCALEBIN}" serve -c "${d}/hoprd.toml" \
			-cpuprofile "${d}/cpu.pprof" -memprofile "${d}/allocs.pprof"
		wait_for 20 grep -q '^ready' "${d}/hoprd.log" || {
			cat "${d}/hoprd.log" >&2
			die "profiled engine did not start"
		}
		return
	fi
	bg "${ns}" "${d}/hoprd.log" "${HOPRD}" up -c "${d}/hoprd.toml" \
		--run-dir "${d}/run" --state-dir "${d}/state"
	wait_up "${BG_PID}" 60 "${HOPRD}" status -i "${name}" --run-dir "${d}/run" --json || {
		cat "${d}/hoprd.log" >&2
		die "hoprd did not answer on its control socket"
	}
}

# up_hoprd INTERVAL NET: hoprd on both sides, overlay 100.64.NET.0/24.
up_hoprd() {
	local interval=$1 net=$2 d=${tmp}/hop-${1}
	mkdir -p "${d}/a" "${d}/b"
	"${HOPRD}" genkey --out "${d}/a/private.key"
	"${HOPRD}" genkey --out "${d}/b/private.key"
	{
		hoprd_conf "${ifA}" "${d}/a/private.key" "100.64.${net}.1/24" "${interval}"
		hoprd_peer b "$("${HOPRD}" pubkey <"${d}/b/private.key")" 192.0.2.2 "100.64.${net}.2/32"
	} >"${d}/a/hoprd.toml"
	{
		hoprd_conf "${ifB}" "${d}/b/private.key" "100.64.${net}.2/24" "${interval}"
		hoprd_peer a "$("${HOPRD}" pubkey <"${d}/a/private.key")" 192.0.2.1 "100.64.${net}.1/32"
	} >"${d}/b/hoprd.toml"
	start_hoprd "${nsA}" "${d}/a"
	DAEMONS=("${BG_PID}")
	start_hoprd "${nsB}" "${d}/b"
	DAEMONS+=("${BG_PID}")
	DST=100.64.${net}.2
	[[ -n ${PROFILE} ]] || HOPRD_SIDES=("${d}/a" "${d}/b")
}

# hoprd_drops: the packets and messages both hoprd daemons of the system up
# now have dropped, every reason and peer together, from `hoprd status`.
hoprd_drops() {
	local side name total=0 n
	for side in "${HOPRD_SIDES[@]}"; do
		name=$(awk -F'"' '/^name/ {print $2; exit}' "${side}/hoprd.toml")
		n=$("${HOPRD}" status -i "${name}" --run-dir "${side}/run" --json |
			jq '[(.drops // {})[], (.peers[]?.drops // {})[]] | add // 0') || return 1
		total=$((total + n))
	done
	echo "${total}"
}

up_hop1s() { up_hoprd 1s 2; }
up_hop50ms() { up_hoprd 50ms 3; }

# up_base: another hoprd build (HOPRD_BASE), hop 1s, to weigh a change
# against in the same run: SYSTEMS="wg base hop1s" HOPRD_BASE=old/hoprd.
up_base() {
	local cur=${HOPRD}
	[[ -n ${HOPRD_BASE:-} ]] || die "SYSTEMS has base but HOPRD_BASE is not set"
	HOPRD=$(realpath "${HOPRD_BASE}")
	up_hoprd 1s 4
	HOPRD=${cur}
}

down() {
	HOPRD_SIDES=()
	((${#DAEMONS[@]} == 0)) || stop "${DAEMONS[@]}"
	rm -rf "${tmp}/wg" "${tmp}"/hop-*
}

# ---------------------------------------------------------------- measurements

# results: lines "system round metric value".
RESULTS=${tmp}/results.tsv
: >"${RESULTS}"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"${RESULTS}"; }

# iperf DST ARGS...: runs the iperf3 client from a, its JSON into IPERF; one
# retry.
IPERF=${tmp}/iperf.json
iperf() {
	local dst=$1
	shift
	for _ in 1 2; do
		if run "${IPERF}" ip netns exec "${nsA}" iperf3 -c "${dst}" -J "$@" &&
			jq -e '.error == null' "${IPERF}" >/dev/null 2>&1; then
			return 0
		fi
		sleep 1
	done
	return 1
}

measure() {
	local sys=$1 round=$2 rtts c0 c1 bytes=0 b
	# Traffic first flows here: the tunnels' handshakes happen before timing.
	wait_for 20 ip netns exec "${nsA}" ping -n -c 1 -W 1 "${DST}" ||
		die "${sys}: no ping across"

	run "${tmp}/ping.txt" ip netns exec "${nsA}" ping -n -i 0.01 -c "${PING_COUNT}" "${DST}" ||
		log "${sys}: some pings were lost"
	rtts=$(sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p' "${tmp}/ping.txt" | sort -g)
	record "${sys}" "${round}" rtt_p50 "$(pct 50 <<<"${rtts}")"
	record "${sys}" "${round}" rtt_p99 "$(pct 99 <<<"${rtts}")"

	c0=$(cpu_ticks "${DAEMONS[@]}")
	for streams in 1 4; do
		if iperf "${DST}" -t "${DURATION}" -P "${streams}"; then
			record "${sys}" "${round}" "tcp${streams}" \
				"$(jq '.end.sum_received.bits_per_second / 1e9' "${IPERF}")"
			record "${sys}" "${round}" "retr${streams}" \
				"$(jq '.end.sum_sent.retransmits // 0' "${IPERF}")"
			b=$(jq '.end.sum_received.bytes' "${IPERF}")
			bytes=$(awk -v a="${bytes}" -v b="${b}" 'BEGIN {printf "%.0f", a + b}')
		else
			log "${sys}: iperf3 TCP ${streams} failed"
		fi
	done
	c1=$(cpu_ticks "${DAEMONS[@]}")
	if ((${#DAEMONS[@]} > 0)) && [[ ${bytes} != 0 ]]; then
		record "${sys}" "${round}" cpu_gb "$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
			-v b="${bytes}" 'BEGIN {print t / hz / (b / 1e9)}')"
	fi

	if iperf "${DST}" -u -b "${UDP_RATE}" -l "${UDP_LEN}" -t "${UDP_DURATION}"; then
		record "${sys}" "${round}" udp "$(jq '.end.sum.bits_per_second *
			(1 - .end.sum.lost_percent / 100) / 1e9' "${IPERF}")"
		record "${sys}" "${round}" udp_loss "$(jq '.end.sum.lost_percent' "${IPERF}")"
	else
		log "${sys}: iperf3 UDP failed"
	fi

	if ((${#DAEMONS[@]} > 0)); then
		record "${sys}" "${round}" rss "$(awk -v k="$(status_kib VmHWM "${DAEMONS[@]}")" \
			'BEGIN {print k / 1024}')"
	fi
	if ((${#HOPRD_SIDES[@]} > 0)); then
		b=$(hoprd_drops) && record "${sys}" "${round}" drops "${b}" ||
			log "${sys}: hoprd status failed"
	fi
}

# pct P: the P-th percentile (nearest rank) of the sorted numbers on stdin.
pct() {
	awk -v p="$1" '{v[NR] = $1} END {
		if (NR == 0) { print "nan"; exit }
		r = int(p / 100 * NR + 0.999999); if (r < 1) r = 1; print v[r] }'
}

# ---------------------------------------------------------------- scale

# rss_mib PID: resident set size in MiB.
rss_mib() { awk -v k="$(status_kib VmRSS "$1")" 'BEGIN {print k / 1024}'; }

# scale_wg: wireguard-go with PEERS peers set through its socket.
scale_wg() {
	local d=${tmp}/scale-wg t0 t1 pid
	mkdir -p "${d}"
	{
		printf '[Interface]\nPrivateKey = %s\nListenPort = %d\n' "$(wg genkey)" "${PORT}"
		awk '{printf "\n[Peer]\nPublicKey = %s\nAllowedIPs = %s\n", $1, $2}' "${tmp}/peers.txt"
	} >"${d}/wg.conf"
	chmod 600 "${d}/wg.conf"
	t0=$(date +%s.%N)
	bg "${nsA}" "${d}/wg.log" env LOG_LEVEL=error "${WGGO}" -f "${ifA}"
	pid=${BG_PID}
	wait_up "${pid}" 10 test -S "${WG_SOCK_DIR}/${ifA}.sock" || die "wireguard-go did not start"
	ip netns exec "${nsA}" wg setconf "${ifA}" "${d}/wg.conf"
	t1=$(date +%s.%N)
	scale_figures wg "${pid}" "${t0}" "${t1}" "${WG_SOCK_DIR}/${ifA}.sock"
	stop "${pid}"
}

# scale_hoprd: hoprd with PEERS peers from its config file or, when hoprd
# check refuses a file that large, through its configuration socket with wg
# addconf.
scale_hoprd() {
	local d=${tmp}/scale-hop t0 t1 pid sock=${WG_SOCK_DIR}/${ifA}.sock via=file msg
	mkdir -p "${d}/run" "${d}/state"
	"${HOPRD}" genkey --out "${d}/private.key"
	hoprd_conf "${ifA}" "${d}/private.key" 100.64.0.1/10 1s >"${d}/iface.toml"
	{
		cat "${d}/iface.toml"
		awk '{printf "\n[[peer]]\nname = \"p%d\"\npublic_key = \"%s\"\nallowed_ips = [\"%s\"]\n",
			NR, $1, $2}' "${tmp}/peers.txt"
	} >"${d}/hoprd.toml"
	if ! msg=$("${HOPRD}" check -c "${d}/hoprd.toml" 2>&1); then
		log "hoprd check refuses the ${PEERS}-peer file (${msg##*: }): configuring through the socket"
		via=socket
		cp "${d}/iface.toml" "${d}/hoprd.toml"
		awk '{printf "[Peer]\nPublicKey = %s\nAllowedIPs = %s\n\n", $1, $2}' \
			"${tmp}/peers.txt" >"${d}/peers.conf"
	fi
	t0=$(date +%s.%N)
	bg "${nsA}" "${d}/hoprd.log" "${HOPRD}" up -c "${d}/hoprd.toml" \
		--run-dir "${d}/run" --state-dir "${d}/state"
	pid=${BG_PID}
	wait_up "${pid}" 300 "${HOPRD}" status -i "${ifA}" --run-dir "${d}/run" --json || {
		tail -n 20 "${d}/hoprd.log" >&2
		die "hoprd with ${PEERS} peers did not answer"
	}
	if [[ ${via} == socket ]]; then
		wait_up "${pid}" 10 test -S "${sock}" || die "hoprd serves no configuration socket"
		ip netns exec "${nsA}" wg addconf "${ifA}" "${d}/peers.conf"
	fi
	t1=$(date +%s.%N)
	record hoprd 1 conf_how "${via}"
	[[ -S ${sock} ]] || sock=""
	scale_figures hoprd "${pid}" "${t0}" "${t1}" "${sock}"
	stop "${pid}"
}

# scale_figures SYS PID T0 T1 SOCK: records configure time, RSS and idle CPU
# at PEERS peers, then, over SOCK when there is one, the RSS after CYCLES
# add/remove cycles on top of them.
scale_figures() {
	local sys=$1 pid=$2 t0=$3 t1=$4 sock=$5 c0 c1
	record "${sys}" 1 conf_s "$(awk -v a="${t0}" -v b="${t1}" 'BEGIN {print b - a}')"
	sleep 2
	c0=$(cpu_ticks "${pid}")
	sleep 5
	c1=$(cpu_ticks "${pid}")
	record "${sys}" 1 idle_cpu "$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
		'BEGIN {print 100 * t / hz / 5}')"
	record "${sys}" 1 conf_rss "$(rss_mib "${pid}")"
	[[ -n ${sock} ]] || return 0
	"${SCALEBIN}" churn -sock "${sock}" -n "${CYCLES}" >/dev/null || die "${sys}: churn failed"
	record "${sys}" 1 conf_churn_rss "$(rss_mib "${pid}")"
}

# churn_wg: wireguard-go with one peer, then CYCLES add/remove cycles of
# another over its socket.
churn_wg() {
	local d=${tmp}/churn-wg pid
	mkdir -p "${d}"
	(umask 077 && wg genkey >"${d}/a.key")
	bg "${nsA}" "${d}/wg.log" env LOG_LEVEL=error "${WGGO}" -f "${ifA}"
	pid=${BG_PID}
	wait_up "${pid}" 10 test -S "${WG_SOCK_DIR}/${ifA}.sock" || die "wireguard-go did not start"
	ip netns exec "${nsA}" wg set "${ifA}" private-key "${d}/a.key" listen-port "${PORT}" \
		peer "$(head -n 1 "${tmp}/peers.txt" | cut -d' ' -f1)" endpoint "192.0.2.2:${PORT}" \
		allowed-ips "$(head -n 1 "${tmp}/peers.txt" | cut -d' ' -f2)"
	churn_socket wg "${pid}" "${WG_SOCK_DIR}/${ifA}.sock"
	stop "${pid}"
}

# churn_hoprd: hoprd with one peer from its config file, then CYCLES
# add/remove cycles of another over its socket, or, where hoprd serves none,
# through the device package in memory.
churn_hoprd() {
	local d=${tmp}/churn-hop pid sock=${WG_SOCK_DIR}/${ifA}.sock
	mkdir -p "${d}/run" "${d}/state"
	"${HOPRD}" genkey --out "${d}/private.key"
	{
		hoprd_conf "${ifA}" "${d}/private.key" 100.64.0.1/10 1s
		read -r pub ip <"${tmp}/peers.txt"
		hoprd_peer p1 "${pub}" 192.0.2.2 "${ip}"
	} >"${d}/hoprd.toml"
	bg "${nsA}" "${d}/hoprd.log" "${HOPRD}" up -c "${d}/hoprd.toml" \
		--run-dir "${d}/run" --state-dir "${d}/state"
	pid=${BG_PID}
	wait_up "${pid}" 60 "${HOPRD}" status -i "${ifA}" --run-dir "${d}/run" --json ||
		die "hoprd did not answer"
	if wait_up "${pid}" 5 test -S "${sock}"; then
		churn_socket hoprd "${pid}" "${sock}"
		stop "${pid}"
		return
	fi
	stop "${pid}"
	log "hoprd serves no configuration socket: churn through the device package"
	"${SCALEBIN}" churn-inproc -peers 1 -n "${CYCLES}" >"${d}/churn.txt"
	record hoprd 1 churn_how in-process
	record hoprd 1 churn_before "$(kv rss_kib_before "${d}/churn.txt" 1024)"
	record hoprd 1 churn_after "$(kv rss_kib_after "${d}/churn.txt" 1024)"
	record hoprd 1 churn_settled "$(kv rss_kib_settled "${d}/churn.txt" 1024)"
	record hoprd 1 churn_s "$(kv seconds "${d}/churn.txt" 1)"
}

# kv KEY FILE DIV: the value of "KEY value" in FILE, divided by DIV.
kv() { awk -v k="$1" -v d="$3" '$1 == k {print $2 / d}' "$2"; }

# churn_socket SYS PID SOCK: RSS before, right after and 5 s after CYCLES
# add/remove cycles over SOCK.
churn_socket() {
	local sys=$1 pid=$2 sock=$3 out
	sleep 2
	record "${sys}" 1 churn_how socket
	record "${sys}" 1 churn_before "$(rss_mib "${pid}")"
	out=$("${SCALEBIN}" churn -sock "${sock}" -n "${CYCLES}") || die "${sys}: churn failed"
	record "${sys}" 1 churn_s "$(awk '$1 == "seconds" {print $2}' <<<"${out}")"
	record "${sys}" 1 churn_after "$(rss_mib "${pid}")"
	sleep 5
	record "${sys}" 1 churn_settled "$(rss_mib "${pid}")"
}

# ---------------------------------------------------------------- Go benchmarks

# gobench: the hot-path benchmarks, one second each, into GOBENCH_OUT.
gobench() {
	GOBENCH_OUT=${tmp}/gobench.txt
	{
		"${GO}" test -run '^$' -benchtime 1s \
			-bench 'BenchmarkHandshake|BenchmarkDerive|BenchmarkSealOpen1420|BenchmarkLookup$' \
			./handshake ./device/ratchet ./device/allowedips
		"${GO}" test -run '^$' -benchtime 1s \
			-bench 'BenchmarkPipeline|BenchmarkRoute|BenchmarkSeal$|BenchmarkOpen$' ./device
		"${GO}" test -run '^$' -benchtime 1s -bench 'BenchmarkBind' ./bind
	} 2>&1 | grep -E '^(Benchmark|ok|FAIL|---)' >"${GOBENCH_OUT}" || true
}

# ---------------------------------------------------------------- the report

# median SYS METRIC: the median over rounds, or "nan".
median() {
	awk -F'\t' -v s="$1" -v m="$2" '$1 == s && $3 == m {print $4}' "${RESULTS}" |
		sort -g | awk '{v[NR] = $1} END {
			if (NR == 0) { print "nan"; exit }
			if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# cell VALUE BASE FORMAT: the value, with its ratio to BASE.
cell() {
	awk -v v="$1" -v b="$2" -v f="$3" 'BEGIN {
		if (v == "nan" || v == "") { printf "-"; exit }
		printf f, v
		if (b != "nan" && b != "" && b + 0 != 0) printf " (%.2fx)", v / b }'
}

declare -A LABEL=(
	[veth]="veth (ceiling)" [wg]="wireguard-go" [hop1s]="hoprd hop 1s" [hop50ms]="hoprd hop 50ms"
	[base]="HOPRD_BASE hop 1s"
)

report() {
	local m sys row base
	local -a sys_list
	read -ra sys_list <<<"${SYSTEMS}"
	echo "## Data path: medians of ${ROUNDS} rounds (ratio to wireguard-go)"
	echo
	row="| metric |"
	for sys in "${sys_list[@]}"; do row+=" ${LABEL[${sys}]} |"; done
	echo "${row}"
	row="|---|"
	for sys in "${sys_list[@]}"; do row+="---|"; done
	echo "${row}"
	local metrics=(
		"tcp1|TCP, 1 stream (Gbit/s)|%.2f"
		"tcp4|TCP, 4 streams (Gbit/s)|%.2f"
		"udp|UDP goodput at ${UDP_RATE}bit/s offered (Gbit/s)|%.3f"
		"udp_loss|UDP loss (%)|%.2f"
		"rtt_p50|ping RTT p50 (ms)|%.3f"
		"rtt_p99|ping RTT p99 (ms)|%.3f"
		"retr1|TCP retransmissions, 1 stream|%.0f"
		"retr4|TCP retransmissions, 4 streams|%.0f"
		"drops|hoprd drops over the round, both sides|%.0f"
		"cpu_gb|daemon CPU per GB over TCP (s)|%.2f"
		"rss|daemon peak RSS (MiB)|%.1f"
	)
	for m in "${metrics[@]}"; do
		IFS='|' read -r key name fmt <<<"${m}"
		base=$(median wg "${key}")
		row="| ${name} |"
		for sys in "${sys_list[@]}"; do
			row+=" $(cell "$(median "${sys}" "${key}")" "${base}" "${fmt}") |"
		done
		echo "${row}"
	done
	if [[ ${SCALE} == 1 ]]; then
		echo
		echo "## Scale: ${PEERS} peers, ${CYCLES} add/remove cycles (ratio to wireguard-go)"
		echo
		echo "| metric | wireguard-go | hoprd |"
		echo "|---|---|---|"
		local smetrics=(
			"conf_s|time to configure ${PEERS} peers (s)|%.2f"
			"conf_rss|RSS at ${PEERS} peers (MiB)|%.1f"
			"idle_cpu|idle CPU at ${PEERS} peers (%)|%.2f"
			"conf_churn_rss|RSS at ${PEERS} peers after ${CYCLES} more cycles (MiB)|%.1f"
			"churn_before|RSS with 1 peer, before churn (MiB)|%.1f"
			"churn_after|RSS right after ${CYCLES} add/remove cycles (MiB)|%.1f"
			"churn_settled|RSS 5 s later (MiB)|%.1f"
			"churn_s|time for ${CYCLES} cycles (s)|%.2f"
		)
		for m in "${smetrics[@]}"; do
			IFS='|' read -r key name fmt <<<"${m}"
			base=$(median wg "${key}")
			echo "| ${name} | $(cell "${base}" "${base}" "${fmt}") |" \
				"$(cell "$(median hoprd "${key}")" "${base}" "${fmt}") |"
		done
		local how conf
		how=$(awk -F'\t' '$1 == "hoprd" && $3 == "churn_how" {print $4}' "${RESULTS}")
		conf=$(awk -F'\t' '$1 == "hoprd" && $3 == "conf_how" {print $4}' "${RESULTS}")
		echo
		echo "Configuring: wireguard-go from its start until \`wg setconf\` returns;" \
			"hoprd from its start until it answers \`hoprd status\`$([[ ${conf} == socket ]] &&
				echo " and \`wg addconf\` of the peers returns (the ${PEERS}-peer config file" \
					"is over hoprd's size limit)"); hoprd also adds a route per /32, wireguard-go none." \
			"Churn: each cycle adds a peer with a new key and /32, then removes it, on a" \
			"daemon with one peer (and, in the row that says so, on one with ${PEERS});" \
			"wireguard-go over its configuration socket, hoprd $(case ${how} in
				socket) echo "over its configuration socket." ;;
				in-process) echo "through the device package in memory (it serves no" \
					"configuration socket)." ;;
				*) echo "not measured." ;;
			esac)"
	fi
	if [[ -n ${GOBENCH_OUT:-} ]]; then
		echo
		echo "## Go benchmarks (go test -bench, 1 s each)"
		echo
		echo '```'
		cat "${GOBENCH_OUT}"
		echo '```'
	fi
	echo
	targets
}

# targets: the performance targets, each met or missed.
targets() {
	echo "## Targets"
	echo
	echo "Each comparison of two systems is judged on the median of their per-round"
	echo "ratios: both ran in every round, minutes apart, so drift of the machine"
	echo "between rounds cancels out of each ratio. In brackets, the rounds in which"
	echo "the comparison holds, and the medians of the two systems over all rounds."
	echo
	target "TCP 1 stream, hop 1s >= wireguard-go" hop1s tcp1 ">=" wg 1
	target "TCP 1 stream, hop 50ms within 5 % of hop 1s" hop50ms tcp1 ">=" hop1s 0.95
	target "TCP 4 streams, hop 1s >= wireguard-go" hop1s tcp4 ">=" wg 1
	target "TCP 4 streams, hop 50ms within 5 % of hop 1s" hop50ms tcp4 ">=" hop1s 0.95
	target "ping p50, hop 1s <= wireguard-go" hop1s rtt_p50 "<=" wg 1
	if [[ ${SCALE} == 1 ]]; then
		check "RSS at ${PEERS} peers <= wireguard-go" \
			"$(median hoprd conf_rss)" "<=" "$(median wg conf_rss)" 1
		local before after
		before=$(median hoprd churn_before)
		after=$(median hoprd churn_settled)
		check "RSS after ${CYCLES} cycles within 10 MiB of before" \
			"${after}" "<=" "$(awk -v b="${before}" 'BEGIN {print b + 10}')" 1
	fi
}

# target NAME SYS METRIC OP BASE FACTOR: "met" when the median over rounds
# of SYS's figure divided by BASE's, both of the same round, is OP FACTOR.
target() {
	local name=$1 sys=$2 m=$3 op=$4 base=$5 f=$6
	awk -F'\t' -v name="${name}" -v s="${sys}" -v b="${base}" -v m="${m}" -v op="${op}" \
		-v f="${f}" -v ms="$(median "${sys}" "${m}")" -v mb="$(median "${base}" "${m}")" '
		$3 == m && $1 == s { a[$2] = $4 }
		$3 == m && $1 == b { c[$2] = $4 }
		END {
			for (r in a) if (r in c && c[r] != 0) {
				q[++n] = a[r] / c[r]
				if (op == ">=" ? q[n] >= f : q[n] <= f) k++
			}
			if (!n) { printf "- %s: not measured\n", name; exit }
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && q[j - 1] > q[j]; j--) { t = q[j]; q[j] = q[j - 1]; q[j - 1] = t }
			med = n % 2 ? q[(n + 1) / 2] : (q[n / 2] + q[n / 2 + 1]) / 2
			ok = op == ">=" ? med >= f : med <= f
			printf "- %s: %s (median ratio per round %.3f %s %g; in %d of %d rounds;" \
				" medians %g and %g)\n", name, ok ? "met" : "MISSED", med, op, f, k + 0, n, ms, mb
		}' "${RESULTS}"
}

# check NAME A OP B FACTOR [NOTE]: "met" when A OP B*FACTOR.
check() {
	awk -v n="$1" -v a="$2" -v op="$3" -v b="$4" -v f="$5" -v note="${6:-}" 'BEGIN {
		if (a == "nan" || b == "nan" || a == "" || b == "") { printf "- %s: not measured\n", n; exit }
		ok = (op == ">=") ? (a >= b * f) : (a <= b * f)
		printf "- %s: %s (%g %s %g%s)\n", n, ok ? "met" : "MISSED", a, op, b * f,
			note == "" ? "" : "; " note }'
}

header() {
	echo "# hoprd benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- machine: $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)," \
		"kernel $(uname -r), $("${GO}" version | awk '{print $3}')"
	echo "- hoprd ${HOPRD_VERSION}; wireguard-go ${WG_VERSION} (built from go.mod's version)"
	echo "- ROUNDS=${ROUNDS} DURATION=${DURATION} UDP_RATE=${UDP_RATE} UDP_DURATION=${UDP_DURATION}" \
		"PING_COUNT=${PING_COUNT} PEERS=${PEERS} CYCLES=${CYCLES}${PROFILE:+ PROFILE=on}"
	echo "- command: make bench (scripts/bench.sh)"
	echo
}

# ---------------------------------------------------------------- main

# round_order ROUND N: the order of N systems in round ROUND (from 1), as
# indexes. The rounds follow a balanced Latin square (a Williams design):
# over N rounds (2N for odd N) every system runs in every position once and
# right after every other system once, so neither a slot nor a neighbour
# (the one whose teardown the kernel may still be finishing) favours any.
round_order() {
	local n=$2 k r=$((($1 - 1) % ($2 % 2 ? 2 * $2 : $2)))
	local -a base=(0) row=()
	for ((k = 1; k < n; k++)); do
		base+=($((k % 2 ? (k + 1) / 2 : n - k / 2)))
	done
	for ((k = 0; k < n; k++)); do
		row+=($(((base[k] + r) % n)))
	done
	if ((r >= n)); then # the second half for odd N: the rows reversed
		for ((k = n - 1; k >= 0; k--)); do printf '%s ' "${row[k]}"; done
	else
		printf '%s ' "${row[@]}"
	fi
	echo
}

main() {
	local -a order sys_list
	local r i sys start=${SECONDS}
	reap_orphans
	install_deps
	build
	setup_link
	if [[ -n ${PROFILE} ]]; then
		mkdir -p "${PROFILE}"
		PROFILE=$(realpath "${PROFILE}")
	fi
	read -ra sys_list <<<"${SYSTEMS}"
	for ((r = 1; r <= ROUNDS; r++)); do
		order=()
		for i in $(round_order "${r}" "${#sys_list[@]}"); do
			order+=("${sys_list[${i}]}")
		done
		for sys in "${order[@]}"; do
			log "round ${r}/${ROUNDS}: ${sys}"
			"up_${sys}"
			measure "${sys}" "${r}"
			if [[ -n ${PROFILE} && ${sys} == hop* ]]; then
				stop "${DAEMONS[@]}"
				DAEMONS=()
				cp "${tmp}/hop-${sys#hop}/a/cpu.pprof" "${PROFILE}/${sys}-send-r${r}.cpu.pprof"
				cp "${tmp}/hop-${sys#hop}/b/cpu.pprof" "${PROFILE}/${sys}-recv-r${r}.cpu.pprof"
				cp "${tmp}/hop-${sys#hop}/a/allocs.pprof" "${PROFILE}/${sys}-send-r${r}.allocs.pprof"
				cp "${tmp}/hop-${sys#hop}/b/allocs.pprof" "${PROFILE}/${sys}-recv-r${r}.allocs.pprof"
				grep -h -E '^(mallocs|bytes_allocated|gc_cycles)' "${tmp}/hop-${sys#hop}"/*/hoprd.log \
					>"${PROFILE}/${sys}-r${r}.memstats" || true
			fi
			down
		done
	done
	if [[ ${SCALE} == 1 ]]; then
		log "scale: ${PEERS} peers, ${CYCLES} add/remove cycles"
		"${SCALEBIN}" peers -n "${PEERS}" >"${tmp}/peers.txt"
		scale_wg
		scale_hoprd
		churn_wg
		churn_hoprd
	fi
	if [[ ${GOBENCH} == 1 ]]; then
		log "Go benchmarks"
		gobench
	fi
	(umask 022 && mkdir -p "$(dirname "${OUT}")") # the report is for anyone to read
	{
		header
		report
		echo
		echo "Took $(((SECONDS - start) / 60)) min $(((SECONDS - start) % 60)) s."
	} >"${OUT}"
	cp "${RESULTS}" "${OUT%.md}.tsv"
	chmod 0644 "${OUT}" "${OUT%.md}.tsv" # the report is for anyone to read
	echo
	cat "${OUT}"
	echo
	log "written to ${OUT} (every sample in ${OUT%.md}.tsv)"
}

# report_only: the report of the samples in REPORT, on standard output.
report_only() {
	[[ -r ${REPORT} ]] || die "REPORT=${REPORT}: no such readable file"
	RESULTS=${REPORT}
	echo "# hoprd benchmark, the samples of ${REPORT}"
	echo
	echo "- ROUNDS=${ROUNDS} SYSTEMS=\"${SYSTEMS}\" PEERS=${PEERS} CYCLES=${CYCLES}"
	echo
	report
}

if [[ -n ${REPORT:-} ]]; then
	report_only
else
	main "$@"
fi
