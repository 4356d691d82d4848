package main

// This file is the network-namespace harness of the end-to-end tests: it
// builds a small switched underlay out of namespaces, veth pairs and a
// bridge, runs commands inside the hosts, and takes everything down again.
// It creates nothing in the root namespace: each veth pair is created inside
// its host's namespace with its far end moved straight into the switch.
//
// Namespace names carry the creating process's id and a random tag
// ("hopa-4242-1f2e"), so parallel runs never collide and a later run can
// sweep what a killed run left behind (namespaces whose creator is gone).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nsPrefix starts the name of every namespace the harness creates.
const nsPrefix = "hop"

// switchRole names the switch namespace; hosts are named by their letter.
const switchRole = "sw"

// bridgeName is the bridge inside the switch namespace.
const bridgeName = "br0"

// underlayDev is each host's end of its veth pair.
const underlayDev = "eth0"

// cmdTimeout bounds every short command the harness runs (ip, ping -c 1).
const cmdTimeout = 30 * time.Second

// requiredTools are the programs the namespace tests run, with the Debian
// package that ships each.
var requiredTools = []struct{ name, pkg string }{
	{"ip", "iproute2"},
	{"ping", "iputils-ping"},
}

// requireRoot skips t when the process is not root. Under CI (the
// environment variable CI is non-empty) it fails instead: CI must run these
// tests, never skip them.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("namespace tests need root, and CI is set: refusing to skip")
	}
	t.Skip("namespace tests need root (run as root, or set CI to make this a failure)")
}

// requireTools fails t when a program the tests run is not installed.
func requireTools(t testing.TB) {
	t.Helper()
	for _, tool := range requiredTools {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("required tool %q not found in PATH: install Debian package %s "+
				"(scripts/deps.sh does it)", tool.name, tool.pkg)
		}
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Fatalf("the TUN device is missing: %v (load the tun module)", err)
	}
}

// runTag is this process's part of every namespace name: its pid and a
// random tag.
var runTag = newRunTag()

func newRunTag() string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("netns: random tag: %v", err))
	}
	return fmt.Sprintf("%d-%s", os.Getpid(), hex.EncodeToString(b[:]))
}

// topoSeq numbers the topologies of this process so each gets its own names.
var (
	topoSeqMu sync.Mutex
	topoSeq   int
)

func nextTopoTag() string {
	topoSeqMu.Lock()
	defer topoSeqMu.Unlock()
	topoSeq++
	return fmt.Sprintf("%s%d", runTag, topoSeq)
}

// nsName returns the namespace name for role within the topology tag.
// Names look like "hopa-4242-1f2e1": prefix, role, creator pid, random tag
// and topology number.
func nsName(role, tag string) string {
	return nsPrefix + role + "-" + tag
}

// nsCreator returns the pid encoded in a harness namespace name.
func nsCreator(name string) (int, bool) {
	if !strings.HasPrefix(name, nsPrefix) {
		return 0, false
	}
	parts := strings.Split(name, "-")
	if len(parts) != 3 {
		return 0, false
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return 0, false
	}
	return pid, true
}

// listNetns returns the names of all named network namespaces.
func listNetns() ([]string, error) {
	out, err := runCmd("ip", "-j", "netns", "list")
	if err != nil {
		return nil, err
	}
	var list []struct {
		Name string `json:"name"`
	}
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &list); err != nil {
			return nil, fmt.Errorf("decode ip netns list: %w", err)
		}
	}
	names := make([]string, 0, len(list))
	for _, n := range list {
		names = append(names, n.Name)
	}
	return names, nil
}

// deleteNetns kills every process left in the namespace and deletes it.
// A namespace lives on while a process holds it, so the processes go first.
func deleteNetns(name string) error {
	if out, err := runCmd("ip", "netns", "pids", name); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if _, err := runCmd("ip", "netns", "del", name); err != nil {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// sweepNetns deletes the harness namespaces that belong to this process
// (own) or whose creating process is gone (stale). It never touches the
// namespaces of a run that is still alive.
func sweepNetns(own bool) error {
	names, err := listNetns()
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range names {
		pid, ok := nsCreator(name)
		if !ok {
			continue
		}
		mine := pid == os.Getpid() && strings.Contains(name, "-"+runTag)
		if mine && !own {
			continue
		}
		if !mine && processAlive(pid) {
			continue
		}
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// processAlive reports whether a process with this pid exists and is not a
// zombie: a killed test binary stays a zombie until init reaps it, and its
// namespaces are stale from the moment it died.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state letter follows the ")" that closes the command name.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return true
	}
	state := stat[i+2]
	return state != 'Z' && state != 'X'
}

// runCmd runs a short command and returns its standard output. The error
// carries the command line, the exit status and the standard error.
func runCmd(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	return runCmdContext(ctx, name, args...)
}

func runCmdContext(ctx context.Context, name string, args ...string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "),
			err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// host is one machine of the underlay: a namespace with one veth whose far
// end is a port of the switch's bridge.
type host struct {
	role     string     // "a", "b", ...
	ns       string     // namespace name
	underlay netip.Addr // address on eth0
}

// exec runs a command inside the host's namespace.
func (h *host) exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	full := append([]string{"netns", "exec", h.ns, name}, args...)
	return runCmdContext(ctx, "ip", full...)
}

// ip runs "ip -n NS args..." for the host.
func (h *host) ip(args ...string) ([]byte, error) {
	return runCmd("ip", append([]string{"-n", h.ns}, args...)...)
}

// topology is a switch namespace with a bridge and hosts attached to it.
type topology struct {
	tag     string
	prefix  netip.Prefix // underlay subnet
	switchN string       // switch namespace

	mu    sync.Mutex
	hosts []*host
	names []string // every namespace created, in creation order
}

// buildTopology creates the switch namespace and its bridge. On error it
// deletes whatever it had created.
func buildTopology(prefix netip.Prefix) (_ *topology, err error) {
	tp := &topology{tag: nextTopoTag(), prefix: prefix.Masked()}
	tp.switchN = nsName(switchRole, tp.tag)
	defer func() {
		if err != nil {
			err = errors.Join(err, tp.destroy())
		}
	}()
	if err := tp.addNetns(tp.switchN); err != nil {
		return nil, err
	}
	steps := [][]string{
		{"-n", tp.switchN, "link", "set", "lo", "up"},
		{"-n", tp.switchN, "link", "add", bridgeName, "type", "bridge", "stp_state", "0"},
		{"-n", tp.switchN, "link", "set", bridgeName, "up"},
	}
	for _, args := range steps {
		if _, err := runCmd("ip", args...); err != nil {
			return nil, fmt.Errorf("build switch: %w", err)
		}
	}
	return tp, nil
}

// addNetns creates a namespace and records it for destroy.
func (tp *topology) addNetns(name string) error {
	if _, err := runCmd("ip", "netns", "add", name); err != nil {
		return fmt.Errorf("create namespace: %w", err)
	}
	tp.mu.Lock()
	tp.names = append(tp.names, name)
	tp.mu.Unlock()
	return nil
}

// addHost creates a host namespace named by role, plugs it into the switch
// and gives eth0 the address addr (within the topology's prefix).
func (tp *topology) addHost(role string, addr netip.Addr) (*host, error) {
	if !tp.prefix.Contains(addr) {
		return nil, fmt.Errorf("add host %s: %v is outside the underlay %v", role, addr, tp.prefix)
	}
	h := &host{role: role, ns: nsName(role, tp.tag), underlay: addr}
	if err := tp.addNetns(h.ns); err != nil {
		return nil, fmt.Errorf("add host %s: %w", role, err)
	}
	port := "p" + role
	cidr := netip.PrefixFrom(addr, tp.prefix.Bits()).String()
	steps := [][]string{
		{"-n", h.ns, "link", "set", "lo", "up"},
		{"-n", h.ns, "link", "add", underlayDev, "type", "veth",
			"peer", "name", port, "netns", tp.switchN},
		{"-n", tp.switchN, "link", "set", port, "master", bridgeName},
		{"-n", tp.switchN, "link", "set", port, "up"},
		{"-n", h.ns, "addr", "add", cidr, "dev", underlayDev},
		{"-n", h.ns, "link", "set", underlayDev, "up"},
	}
	for _, args := range steps {
		if _, err := runCmd("ip", args...); err != nil {
			return nil, fmt.Errorf("add host %s: %w", role, err)
		}
	}
	tp.mu.Lock()
	tp.hosts = append(tp.hosts, h)
	tp.mu.Unlock()
	return h, nil
}

// namespaces returns the names of every namespace the topology created.
func (tp *topology) namespaces() []string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return slices.Clone(tp.names)
}

// destroy deletes the hosts and then the switch (with their links and any
// process left inside). It is safe to call more than once.
func (tp *topology) destroy() error {
	tp.mu.Lock()
	names := tp.names
	tp.names = nil
	tp.mu.Unlock()
	var errs []error
	for _, name := range slices.Backward(names) {
		if err := deleteNetns(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// newTopology builds a topology for t with one host per address, named
// "a", "b", ... in order. It is destroyed when t ends, pass or fail.
func newTopology(t testing.TB, prefix netip.Prefix, addrs ...netip.Addr) (*topology, []*host) {
	t.Helper()
	tp, err := buildTopology(prefix)
	if err != nil {
		t.Fatalf("build topology: %v", err)
	}
	t.Cleanup(func() {
		if err := tp.destroy(); err != nil {
			t.Errorf("destroy topology: %v", err)
		}
	})
	hosts := make([]*host, 0, len(addrs))
	for i, addr := range addrs {
		h, err := tp.addHost(string(rune('a'+i)), addr)
		if err != nil {
			t.Fatalf("build topology: %v", err)
		}
		hosts = append(hosts, h)
	}
	return tp, hosts
}

// pingResult is what one run of ping reported.
type pingResult struct {
	transmitted, received int
	output                string
	err                   error
}

// ping runs "ping -c count -W wait [-i interval] dst" inside h.
func (h *host) ping(dst netip.Addr, count int, wait, interval time.Duration) pingResult {
	args := []string{"-n", "-c", strconv.Itoa(count), "-W", secs(wait)}
	if interval > 0 {
		args = append(args, "-i", secs(interval))
	}
	args = append(args, dst.String())
	limit := time.Duration(count)*max(interval, time.Second) + wait + cmdTimeout
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	out, err := h.exec(ctx, "ping", args...)
	r := pingResult{output: strings.TrimSpace(string(out)), err: err}
	r.transmitted, r.received = parsePing(r.output)
	return r
}

// secs formats d as fractional seconds, the unit ping takes.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// parsePing extracts the packet counts from ping's summary line
// ("3 packets transmitted, 3 received, ..."); -1 when absent.
func parsePing(out string) (transmitted, received int) {
	transmitted, received = -1, -1
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == "packets" && f[2] == "transmitted," {
			transmitted, _ = strconv.Atoi(f[0])
			received, _ = strconv.Atoi(f[3])
		}
	}
	return transmitted, received
}

// netState is a normalized picture of a namespace's links, addresses and
// routes, one line per item, sorted. Link-local IPv6 addresses (random on
// a TUN) and their host routes are left out; everything else counts, so a
// duplicate shows up as a repeated line.
type netState struct {
	links, addrs, routes []string
}

// String renders the state for a failure message.
func (s netState) String() string {
	var b strings.Builder
	for _, part := range []struct {
		name  string
		lines []string
	}{{"links", s.links}, {"addresses", s.addrs}, {"routes", s.routes}} {
		fmt.Fprintf(&b, "%s:\n", part.name)
		for _, l := range part.lines {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	return b.String()
}

// diff lists the lines present in one state and not the other.
func (s netState) diff(o netState) []string {
	var out []string
	out = append(out, diffLines("link", s.links, o.links)...)
	out = append(out, diffLines("address", s.addrs, o.addrs)...)
	out = append(out, diffLines("route", s.routes, o.routes)...)
	return out
}

// diffLines compares two sorted multisets of lines.
func diffLines(kind string, before, after []string) []string {
	count := map[string]int{}
	for _, l := range before {
		count[l]++
	}
	for _, l := range after {
		count[l]--
	}
	var out []string
	for l, n := range count {
		switch {
		case n > 0:
			out = append(out, fmt.Sprintf("%s gone (%d fewer): %s", kind, n, l))
		case n < 0:
			out = append(out, fmt.Sprintf("%s added (%d more): %s", kind, -n, l))
		}
	}
	slices.Sort(out)
	return out
}

// snapshot reads the host's links, addresses and routes (all tables, both
// families) and normalizes them.
func (h *host) snapshot() (netState, error) {
	var s netState
	out, err := h.ip("-j", "addr", "show")
	if err != nil {
		return s, fmt.Errorf("snapshot %s: %w", h.ns, err)
	}
	var links []struct {
		Name     string   `json:"ifname"`
		Flags    []string `json:"flags"`
		MTU      int      `json:"mtu"`
		LinkType string   `json:"link_type"`
		Addrs    []struct {
			Family    string `json:"family"`
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return s, fmt.Errorf("snapshot %s: decode addresses: %w", h.ns, err)
	}
	for _, l := range links {
		s.links = append(s.links, fmt.Sprintf("%s type=%s mtu=%d up=%t",
			l.Name, l.LinkType, l.MTU, slices.Contains(l.Flags, "UP")))
		for _, a := range l.Addrs {
			if isLinkLocal6(a.Local) {
				continue
			}
			s.addrs = append(s.addrs, fmt.Sprintf("%s %s %s/%d scope=%s",
				l.Name, a.Family, a.Local, a.PrefixLen, a.Scope))
		}
	}
	for _, fam := range []string{"-4", "-6"} {
		out, err := h.ip("-j", fam, "route", "show", "table", "all")
		if err != nil {
			return s, fmt.Errorf("snapshot %s: %w", h.ns, err)
		}
		var routes []map[string]any
		if err := json.Unmarshal(out, &routes); err != nil {
			return s, fmt.Errorf("snapshot %s: decode routes: %w", h.ns, err)
		}
		for _, r := range routes {
			if dst, _ := r["dst"].(string); isLinkLocal6(dst) {
				continue
			}
			s.routes = append(s.routes, routeLine(r))
		}
	}
	slices.Sort(s.links)
	slices.Sort(s.addrs)
	slices.Sort(s.routes)
	return s, nil
}

// routeKeys are the fields of "ip -j route" that identify a route; the rest
// (expiry, flags such as linkdown) may change without the route changing.
var routeKeys = []string{
	"type", "dst", "gateway", "dev", "table", "protocol", "scope", "prefsrc", "metric",
}

func routeLine(r map[string]any) string {
	var b strings.Builder
	for _, k := range routeKeys {
		if v, ok := r[k]; ok {
			fmt.Fprintf(&b, "%s=%v ", k, v)
		}
	}
	return strings.TrimSpace(b.String())
}

// isLinkLocal6 reports whether s is a single IPv6 link-local address (not
// the fe80::/64 prefix route, which stays).
func isLinkLocal6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.IsLinkLocalUnicast()
}

// TestNetnsTopology checks the harness without the daemon: hosts reach each
// other over the underlay, and destroying the topology removes every
// namespace it created.
//
//	hopa ──veth── ┐
//	hopb ──veth── ┼─ br0 in hopsw
//	hopc ──veth── ┘
//	192.0.2.1-3/24 on each host's eth0
func TestNetnsTopology(t *testing.T) {
	requireRoot(t)
	requireTools(t)
	tp, hosts := newTopology(t, underlayPrefix, underlayAddrs[:3]...)
	for _, src := range hosts {
		for _, dst := range hosts {
			if src == dst {
				continue
			}
			t.Run(src.role+"_to_"+dst.role, func(t *testing.T) {
				r := src.ping(dst.underlay, 1, 2*time.Second, 0)
				if r.err != nil || r.received != 1 {
					t.Fatalf("underlay ping %s -> %v: received %d (err %v)\n%s",
						src.ns, dst.underlay, r.received, r.err, r.output)
				}
			})
		}
	}
	t.Run("no_overlap", func(t *testing.T) {
		_, others := newTopology(t, underlayPrefix, underlayAddrs[0])
		if others[0].ns == hosts[0].ns {
			t.Fatalf("two topologies share namespace %s", hosts[0].ns)
		}
	})
	names := tp.namespaces()
	if err := tp.destroy(); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	left, err := listNetns()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if slices.Contains(left, name) {
			t.Errorf("namespace %s survived destroy", name)
		}
	}
}

// TestNetnsBuildFailureCleansUp checks that a topology whose construction
// fails halfway leaves no namespace behind.
func TestNetnsBuildFailureCleansUp(t *testing.T) {
	requireRoot(t)
	requireTools(t)
	tests := []struct {
		name string
		role string // role of the second host
		addr netip.Addr
	}{
		{name: "address outside the underlay", role: "b",
			addr: netip.MustParseAddr("198.51.100.7")},
		{name: "duplicate host", role: "a", addr: underlayAddrs[1]},
		{name: "port name too long after the namespace exists",
			role: "abcdefghijklmnopq", addr: underlayAddrs[1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, err := buildTopology(underlayPrefix)
			if err != nil {
				t.Fatalf("build topology: %v", err)
			}
			if _, err := tp.addHost("a", underlayAddrs[0]); err != nil {
				t.Fatalf("add first host: %v", err)
			}
			if _, err := tp.addHost(tt.role, tt.addr); err == nil {
				t.Fatalf("adding host %s at %v succeeded, want an error", tt.role, tt.addr)
			}
			names := tp.namespaces()
			if err := tp.destroy(); err != nil {
				t.Fatalf("destroy after failed build: %v", err)
			}
			left, err := listNetns()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range left {
				if strings.Contains(n, "-"+tp.tag) {
					t.Errorf("namespace %s survived (created: %v)", n, names)
				}
			}
		})
	}
}

// TestNsCreator checks the parsing of harness namespace names, which the
// stale sweep relies on to leave other runs alone.
func TestNsCreator(t *testing.T) {
	tests := []struct {
		name    string
		ns      string
		wantPID int
		wantOK  bool
	}{
		{name: "host", ns: "hopa-4242-1f2e1", wantPID: 4242, wantOK: true},
		{name: "switch", ns: "hopsw-17-00ff3", wantPID: 17, wantOK: true},
		{name: "foreign prefix", ns: "blue-4242-1f2e1"},
		{name: "no pid", ns: "hopa-x-1f2e"},
		{name: "too few parts", ns: "hopa-4242"},
		{name: "too many parts", ns: "hopa-4242-1f-2e"},
		{name: "zero pid", ns: "hopa-0-1f2e"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid, ok := nsCreator(tt.ns)
			if pid != tt.wantPID || ok != tt.wantOK {
				t.Fatalf("nsCreator(%q) = %d, %t; want %d, %t",
					tt.ns, pid, ok, tt.wantPID, tt.wantOK)
			}
		})
	}
	if got := nsName("a", runTag+"1"); !strings.HasPrefix(got, nsPrefix+"a-") {
		t.Fatalf("nsName = %q, want prefix %q", got, nsPrefix+"a-")
	}
	if pid, ok := nsCreator(nsName("a", nextTopoTag())); !ok || pid != os.Getpid() {
		t.Fatalf("nsCreator(nsName(...)) = %d, %t; want own pid %d", pid, ok, os.Getpid())
	}
}

// TestParsePing checks the reading of ping's summary line.
func TestParsePing(t *testing.T) {
	tests := []struct {
		name   string
		out    string
		wantTx int
		wantRx int
	}{
		{name: "all", out: "--- 100.64.0.2 ping statistics ---\n" +
			"3 packets transmitted, 3 received, 0% packet loss, time 2003ms", wantTx: 3, wantRx: 3},
		{name: "loss with errors", out: "400 packets transmitted, 397 received, +3 errors, " +
			"0.75% packet loss, time 19980ms", wantTx: 400, wantRx: 397},
		{name: "none", out: "3 packets transmitted, 0 received, 100% packet loss",
			wantTx: 3, wantRx: 0},
		{name: "no summary", out: "ping: connect: Network is unreachable", wantTx: -1,
			wantRx: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx, rx := parsePing(tt.out)
			if tx != tt.wantTx || rx != tt.wantRx {
				t.Fatalf("parsePing = %d, %d; want %d, %d", tx, rx, tt.wantTx, tt.wantRx)
			}
		})
	}
}
