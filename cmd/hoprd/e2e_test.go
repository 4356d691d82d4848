package main

// End-to-end tests: real hoprd daemons in network namespaces.
//
//	         hopa-*                     hopb-*                     hopc-*
//	+----------------------+   +----------------------+   +----------------------+
//	| hop0 100.64.0.1/24   |   | hop0 100.64.0.2/24   |   | hop0 100.64.0.3/24   |
//	|  fd7a:686f:7072::1/64|   |  fd7a:686f:7072::2/64|   |  fd7a:686f:7072::3/64|
//	| eth0 192.0.2.1/24    |   | eth0 192.0.2.2/24    |   | eth0 192.0.2.3/24    |
//	+----------+-----------+   +----------+-----------+   +----------+-----------+
//	           | veth                     | veth                     | veth
//	+----------+--------------------------+--------------------------+-----------+
//	| hopsw-*: bridge br0 with ports pa, pb, pc (and pd)                         |
//	+--------------------------------------+-------------------------------------+
//	                                       | veth, added by subtest "unauthorized"
//	                            +----------+-----------+
//	                            | hop0 100.64.0.4/24   |  hopd-*: the intruder
//	                            |  fd7a:686f:7072::4/64|
//	                            | eth0 192.0.2.4/24    |
//	                            +----------------------+
//
// a, b and c list each other as peers (UDP 51820, hop_interval 100ms,
// persistent_keepalive 5s). d has a fresh key and lists a, but no host
// lists d. The interface is hop0 everywhere; the namespaces keep the
// interfaces apart, but the control sockets share the file system, so each
// daemon has its own --run-dir and --state-dir under the test's temp dir.
//
// The daemon binary is built once per test process (or taken from
// HOPRD_BIN). The test binary doubles as the TCP sender and receiver of the
// transfer test: run with HOPRD_E2E_HELPER set it does that and exits.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Addresses of the test network.
var (
	underlayPrefix = netip.MustParsePrefix("192.0.2.0/24")
	underlayAddrs  = []netip.Addr{
		netip.MustParseAddr("192.0.2.1"),
		netip.MustParseAddr("192.0.2.2"),
		netip.MustParseAddr("192.0.2.3"),
		netip.MustParseAddr("192.0.2.4"),
	}
	overlay4 = []netip.Prefix{
		netip.MustParsePrefix("100.64.0.1/24"),
		netip.MustParsePrefix("100.64.0.2/24"),
		netip.MustParsePrefix("100.64.0.3/24"),
		netip.MustParsePrefix("100.64.0.4/24"),
	}
	overlay6 = []netip.Prefix{
		netip.MustParsePrefix("fd7a:686f:7072::1/64"),
		netip.MustParsePrefix("fd7a:686f:7072::2/64"),
		netip.MustParsePrefix("fd7a:686f:7072::3/64"),
		netip.MustParsePrefix("fd7a:686f:7072::4/64"),
	}
)

const (
	ifName        = "hop0"
	listenPort    = 51820
	hopInterval   = 100 * time.Millisecond
	keepalive     = 5 * time.Second
	readyTimeout  = 10 * time.Second
	stopTimeout   = 5 * time.Second
	transferSize  = 200 << 20
	transferPort  = 47001
	transferLimit = 3 * time.Minute
	logTailBytes  = 16 << 10
)

// Environment of the transfer helper (the re-executed test binary).
const (
	helperEnv     = "HOPRD_E2E_HELPER" // "send" or "recv"
	helperAddrEnv = "HOPRD_E2E_ADDR"   // host:port to listen on or dial
	helperSizeEnv = "HOPRD_E2E_SIZE"   // bytes to send
	helperSeedEnv = "HOPRD_E2E_SEED"   // 64 hex digits seeding the sender's data
	helperReady   = "listening"        // the receiver's first line of output
)

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		os.Exit(runHelper(role))
	}
	os.Exit(runTests(m))
}

// runTests sweeps namespaces left by dead runs, runs the tests, and then
// deletes every namespace this process created, also on SIGINT or SIGTERM.
// (Each test's own cleanup has normally deleted them already.) A run killed
// outright leaves its namespaces to the next run's sweep, and its daemons
// die with it: they are started with a parent-death signal.
func runTests(m *testing.M) int {
	flag.Parse()
	defer removeBuild()
	if os.Geteuid() != 0 {
		return m.Run()
	}
	if err := sweepNetns(false); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: sweep stale namespaces: %v\n", err)
	}
	defer func() {
		if err := sweepNetns(true); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: sweep own namespaces: %v\n", err)
		}
	}()
	if f := flag.Lookup("test.fuzz"); f == nil || f.Value.String() == "" {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			sig := <-sigs
			fmt.Fprintf(os.Stderr, "e2e: %v: deleting namespaces\n", sig)
			_ = sweepNetns(true)
			removeBuild()
			removeScratch()
			os.Exit(2)
		}()
	}
	return m.Run()
}

// scratchDirs are the test directories holding keys and configs; an
// interrupted run (which skips t.Cleanup) removes them on its way out.
var scratchDirs struct {
	mu   sync.Mutex
	dirs []string
}

func addScratch(dir string) {
	scratchDirs.mu.Lock()
	defer scratchDirs.mu.Unlock()
	scratchDirs.dirs = append(scratchDirs.dirs, dir)
}

func removeScratch() {
	scratchDirs.mu.Lock()
	defer scratchDirs.mu.Unlock()
	for _, dir := range scratchDirs.dirs {
		_ = os.RemoveAll(dir)
	}
}

// hoprdBuild holds the daemon binary built for this test process.
var hoprdBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// hoprdBinary returns the daemon binary: $HOPRD_BIN, or one built from this
// package on first use.
func hoprdBinary(t testing.TB) string {
	t.Helper()
	hoprdBuild.once.Do(func() {
		if p := os.Getenv("HOPRD_BIN"); p != "" {
			hoprdBuild.path, hoprdBuild.err = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "hoprd-e2e-")
		if err != nil {
			hoprdBuild.err = err
			return
		}
		hoprdBuild.dir = dir
		hoprdBuild.path = filepath.Join(dir, "hoprd")
		out, err := exec.Command("go", "build", "-o", hoprdBuild.path, ".").CombinedOutput()
		if err != nil {
			hoprdBuild.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if hoprdBuild.err != nil {
		t.Fatalf("hoprd binary: %v", hoprdBuild.err)
	}
	return hoprdBuild.path
}

func removeBuild() {
	if hoprdBuild.dir != "" {
		_ = os.RemoveAll(hoprdBuild.dir)
	}
}

// statusReport is the JSON of "hoprd status --json".
type statusReport struct {
	Interface struct {
		Name        string   `json:"name"`
		PublicKey   string   `json:"public_key"`
		ListenPort  int      `json:"listen_port"`
		Addresses   []string `json:"addresses"`
		HopInterval string   `json:"hop_interval"`
	} `json:"interface"`
	Peers []peerStatus      `json:"peers"`
	Drops map[string]uint64 `json:"drops"`
}

// peerStatus is one peer in a statusReport.
type peerStatus struct {
	Name          string            `json:"name"`
	PublicKey     string            `json:"public_key"`
	Mode          string            `json:"mode"`
	Endpoint      *string           `json:"endpoint"`
	AllowedIPs    []string          `json:"allowed_ips"`
	LastHandshake *time.Time        `json:"last_handshake"`
	Epoch         *int64            `json:"epoch"` // null without a live session
	Hops          int64             `json:"hops"`
	RxBytes       uint64            `json:"rx_bytes"`
	TxBytes       uint64            `json:"tx_bytes"`
	Drops         map[string]uint64 `json:"drops"`
}

// peer returns the entry for the peer called name.
func (s *statusReport) peer(name string) (peerStatus, bool) {
	for _, p := range s.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return peerStatus{}, false
}

func sumDrops(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// daemon is one hoprd process (across restarts) and its files.
type daemon struct {
	name     string // peer name in the other configs: the host's role
	host     *host
	bin      string
	dir      string // holds key, config and log
	keyPath  string
	cfgPath  string
	logPath  string
	runDir   string
	stateDir string
	pubKey   string
	addr4    netip.Prefix
	addr6    netip.Prefix

	env []string // added to the daemon's environment

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process has exited
	waitErr error         // the current process's exit, valid once done is closed
	starts  int
}

// newDaemon prepares directories and a fresh key for a daemon on h.
func newDaemon(t testing.TB, bin, root string, h *host, idx int) *daemon {
	t.Helper()
	d := &daemon{
		name:  h.role,
		host:  h,
		bin:   bin,
		dir:   filepath.Join(root, h.role),
		addr4: overlay4[idx],
		addr6: overlay6[idx],
	}
	d.keyPath = filepath.Join(d.dir, "private.key")
	d.cfgPath = filepath.Join(d.dir, "hoprd.toml")
	d.logPath = filepath.Join(d.dir, "hoprd.log")
	d.runDir = filepath.Join(d.dir, "run")
	d.stateDir = filepath.Join(d.dir, "state")
	for _, dir := range []string{d.dir, d.runDir, d.stateDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := runCmd(bin, "genkey", "--out", d.keyPath); err != nil {
		t.Fatalf("genkey for %s: %v\n%s", d.name, err, out)
	}
	fi, err := os.Stat(d.keyPath)
	if err != nil {
		t.Fatalf("genkey for %s wrote no key: %v", d.name, err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("genkey --out wrote %s with mode %04o, want 0600", d.keyPath, perm)
	}
	key, err := os.Open(d.keyPath)
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, "pubkey")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = key, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("pubkey for %s: %v: %s", d.name, err, stderr.String())
	}
	d.pubKey = strings.TrimSpace(stdout.String())
	if d.pubKey == "" || strings.ContainsAny(d.pubKey, " \n") {
		t.Fatalf("pubkey for %s printed %q, want one key", d.name, stdout.String())
	}
	return d
}

// hostRoute returns the single-address prefix of p.
func hostRoute(p netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(p.Addr(), p.Addr().BitLen())
}

// writeConfig writes the daemon's config listing peers.
func (d *daemon) writeConfig(t testing.TB, peers []*daemon) {
	t.Helper()
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "[interface]\nname = %s\nprivate_key_file = %s\n", q(ifName), q(d.keyPath))
	fmt.Fprintf(&b, "address = [%s, %s]\n", q(d.addr4.String()), q(d.addr6.String()))
	fmt.Fprintf(&b, "listen_port = %d\nhop_interval = %s\n", listenPort, q(hopInterval.String()))
	for _, p := range peers {
		ep := netip.AddrPortFrom(p.host.underlay, listenPort)
		fmt.Fprintf(&b, "\n[[peer]]\nname = %s\npublic_key = %s\nendpoint = %s\n",
			q(p.name), q(p.pubKey), q(ep.String()))
		fmt.Fprintf(&b, "allowed_ips = [%s, %s]\npersistent_keepalive = %s\n",
			q(hostRoute(p.addr4).String()), q(hostRoute(p.addr6).String()),
			q(keepalive.String()))
	}
	if err := os.WriteFile(d.cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start launches the daemon inside its namespace.
func (d *daemon) start(t testing.TB) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.done != nil {
		select {
		case <-d.done:
		default:
			t.Fatalf("start %s: already running", d.name)
		}
	}
	logf, err := os.OpenFile(d.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	d.starts++
	fmt.Fprintf(logf, "=== start %d at %s ===\n", d.starts, time.Now().Format(time.RFC3339Nano))
	// "ip netns exec" execs the program in place, so the pid is hoprd's.
	cmd := exec.Command("ip", "netns", "exec", d.host.ns, d.bin, "up", "-c", d.cfgPath,
		"--run-dir", d.runDir, "--state-dir", d.stateDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), d.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", d.name, err)
	}
	done := make(chan struct{})
	d.cmd, d.done = cmd, done
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== exit at %s: %v ===\n", time.Now().Format(time.RFC3339Nano), err)
		logf.Close()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(done)
	}()
}

// exited reports whether the current process has exited, and how.
func (d *daemon) exited() (bool, error) {
	d.mu.Lock()
	done := d.done
	d.mu.Unlock()
	if done == nil {
		return true, nil
	}
	select {
	case <-done:
		d.mu.Lock()
		defer d.mu.Unlock()
		return true, d.waitErr
	default:
		return false, nil
	}
}

// stop sends sig and waits up to timeout for the exit; a process still
// running then is killed. It reports whether the process left within the
// timeout, and its exit error. Stopping a stopped daemon returns its old exit.
func (d *daemon) stop(sig syscall.Signal, timeout time.Duration) (inTime bool, err error) {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if done == nil {
		return true, nil
	}
	_ = cmd.Process.Signal(sig)
	inTime = true
	select {
	case <-done:
	case <-time.After(timeout):
		inTime = false
		_ = cmd.Process.Kill()
		<-done
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return inTime, d.waitErr
}

// status runs "hoprd status --json" against the daemon.
func (d *daemon) status() (*statusReport, error) {
	out, err := runCmd(d.bin, "status", "-i", ifName, "--json", "--run-dir", d.runDir)
	if err != nil {
		return nil, err
	}
	var s statusReport
	if err := json.Unmarshal(out, &s); err != nil {
		return nil, fmt.Errorf("decode status of %s: %w\n%s", d.name, err, out)
	}
	return &s, nil
}

// mustStatus is status that fails t on error.
func (d *daemon) mustStatus(t testing.TB) *statusReport {
	t.Helper()
	s, err := d.status()
	if err != nil {
		t.Fatalf("status of %s: %v", d.name, err)
	}
	return s
}

// logTail returns the end of the daemon's log.
func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = append([]byte("...\n"), b[len(b)-logTailBytes:]...)
	}
	return string(b)
}

// ifaceReady reports whether hop0 is up in the namespace with both overlay
// addresses assigned and usable (not tentative).
func (d *daemon) ifaceReady() error {
	out, err := d.host.ip("-j", "addr", "show", "dev", ifName)
	if err != nil {
		return err
	}
	var links []struct {
		Flags []string `json:"flags"`
		Addrs []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
			Tentative bool   `json:"tentative"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal(out, &links); err != nil {
		return fmt.Errorf("decode addresses: %w", err)
	}
	if len(links) != 1 {
		return fmt.Errorf("%d links named %s", len(links), ifName)
	}
	if !slices.Contains(links[0].Flags, "UP") {
		return fmt.Errorf("%s is not up (flags %v)", ifName, links[0].Flags)
	}
	for _, want := range []netip.Prefix{d.addr4, d.addr6} {
		found := false
		for _, a := range links[0].Addrs {
			if a.Local == want.Addr().String() && a.PrefixLen == want.Bits() {
				if a.Tentative {
					return fmt.Errorf("%v is tentative", want)
				}
				found = true
			}
		}
		if !found {
			return fmt.Errorf("%v not on %s", want, ifName)
		}
	}
	return nil
}

// waitReady waits until the daemon answers status and its interface is
// configured; it fails t when the daemon exits or the time runs out.
func (d *daemon) waitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if gone, err := d.exited(); gone {
			t.Fatalf("%s exited while starting: %v\nlog:\n%s", d.name, err, d.logTail())
		}
		s, err := d.status()
		if err == nil && s.Interface.Name != ifName {
			err = fmt.Errorf("status names interface %q, want %q", s.Interface.Name, ifName)
		}
		if err == nil {
			err = d.ifaceReady()
		}
		if err == nil {
			return
		}
		last = err
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v: %v\nlog:\n%s", d.name, timeout, last, d.logTail())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cluster is the topology and the daemons running on it.
type cluster struct {
	tp      *topology
	bin     string
	root    string
	mu      sync.Mutex
	daemons []*daemon
}

// newCluster builds the three-host topology and starts a fully meshed
// daemon on each host. When t ends the daemons are stopped (their logs
// shown if t failed) and the namespaces deleted.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	requireRoot(t)
	requireTools(t)
	c := &cluster{root: t.TempDir(), bin: hoprdBinary(t)}
	addScratch(c.root)
	tp, hosts := newTopology(t, underlayPrefix, underlayAddrs[:3]...)
	c.tp = tp
	t.Cleanup(func() {
		if t.Failed() {
			c.dumpLogs(t)
		}
	})
	t.Cleanup(c.stopAll)
	for i, h := range hosts {
		d := newDaemon(t, c.bin, c.root, h, i)
		if i == 0 {
			// With more than two cores the engine seals and opens bulk
			// batches on its crypto workers; with two or fewer, as here,
			// on the goroutine that read them. Host a runs as if it had
			// four, so that the transfers a -> b and c -> a cross both
			// paths on a real TUN and real sockets.
			d.env = []string{"GOMAXPROCS=4"}
		}
		c.add(d)
	}
	all := c.all()
	for _, d := range all {
		d.writeConfig(t, others(all, d))
		d.start(t)
	}
	for _, d := range all {
		d.waitReady(t, readyTimeout)
	}
	return c
}

func (c *cluster) add(d *daemon) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.daemons = append(c.daemons, d)
}

func (c *cluster) all() []*daemon {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.daemons)
}

// stopAll stops every daemon that still runs: SIGTERM, then SIGKILL.
func (c *cluster) stopAll() {
	for _, d := range c.all() {
		_, _ = d.stop(syscall.SIGTERM, stopTimeout)
	}
}

func (c *cluster) dumpLogs(t testing.TB) {
	for _, d := range c.all() {
		t.Logf("log of %s (%s):\n%s", d.name, d.host.ns, d.logTail())
	}
}

func others(all []*daemon, self *daemon) []*daemon {
	var out []*daemon
	for _, d := range all {
		if d != self {
			out = append(out, d)
		}
	}
	return out
}

// TestE2E runs the daemons on the namespace topology drawn at the top of
// this file. The subtests share the daemons and run in order.
func TestE2E(t *testing.T) {
	c := newCluster(t)
	all := c.all()
	a, b := all[0], all[1]
	t.Run("handshake", func(t *testing.T) { testHandshakes(t, all) })
	t.Run("ping", func(t *testing.T) { testPingMesh(t, all) })
	t.Run("status", func(t *testing.T) { testStatus(t, all) })
	t.Run("hop", func(t *testing.T) { testHop(t, a, b) })
	t.Run("transfer", func(t *testing.T) { testTransfer(t, all) })
	t.Run("unauthorized", func(t *testing.T) { testUnauthorized(t, c, a) })
	t.Run("restart", func(t *testing.T) { testRestart(t, b, others(all, b)) })
	t.Run("shutdown", func(t *testing.T) { testShutdown(t, all) })
}

// testHandshakes waits until every daemon reports a handshake with every
// peer. Nothing has been sent yet: persistent_keepalive alone must bring the
// sessions up. Daemons start together, so a first initiation can reach a
// peer that is not listening yet; the retry comes after the rekey timeout
// (5 s), hence the allowance of three of those.
func testHandshakes(t *testing.T, all []*daemon) {
	const limit = 15 * time.Second
	deadline := time.Now().Add(limit)
	for {
		var missing []string
		for _, d := range all {
			s, err := d.status()
			if err != nil {
				t.Fatalf("status of %s: %v", d.name, err)
			}
			for _, p := range others(all, d) {
				if ps, ok := s.peer(p.name); !ok || ps.LastHandshake == nil {
					missing = append(missing, d.name+"-"+p.name)
				}
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no handshake within %v (persistent_keepalive %v) for %v",
				limit, keepalive, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// testPingMesh pings every ordered pair over IPv4 and IPv6: 3 of 3 replies.
func testPingMesh(t *testing.T, all []*daemon) {
	for _, src := range all {
		for _, dst := range others(all, src) {
			for _, fam := range []struct {
				name string
				addr netip.Addr
			}{{"ipv4", dst.addr4.Addr()}, {"ipv6", dst.addr6.Addr()}} {
				name := fmt.Sprintf("%s_to_%s_%s", src.name, dst.name, fam.name)
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					r := src.host.ping(fam.addr, 3, 2*time.Second, 0)
					if r.transmitted != 3 || r.received != 3 {
						t.Fatalf("ping %s -> %v: %d sent, %d received (err %v)\n%s",
							src.name, fam.addr, r.transmitted, r.received, r.err, r.output)
					}
				})
			}
		}
	}
}

// testStatus checks each daemon's status against its config, after the
// mesh has exchanged traffic.
func testStatus(t *testing.T, all []*daemon) {
	for _, d := range all {
		t.Run(d.name, func(t *testing.T) {
			s := d.mustStatus(t)
			checkInterfaceStatus(t, d, s)
			peers := others(all, d)
			var names []string
			for _, p := range s.Peers {
				names = append(names, p.Name)
			}
			if len(s.Peers) != len(peers) {
				t.Errorf("%d peers %v, want %d", len(s.Peers), names, len(peers))
			}
			for _, want := range peers {
				got, ok := s.peer(want.name)
				if !ok {
					t.Errorf("peer %s missing (peers %v)", want.name, names)
					continue
				}
				checkPeerStatus(t, want, got)
			}
		})
	}
}

func checkInterfaceStatus(t *testing.T, d *daemon, s *statusReport) {
	t.Helper()
	in := s.Interface
	if in.Name != ifName {
		t.Errorf("interface name %q, want %q", in.Name, ifName)
	}
	if in.PublicKey != d.pubKey {
		t.Errorf("interface public_key %q, want %q", in.PublicKey, d.pubKey)
	}
	if in.ListenPort != listenPort {
		t.Errorf("listen_port %d, want %d", in.ListenPort, listenPort)
	}
	want := []netip.Prefix{d.addr4, d.addr6}
	if err := samePrefixes(in.Addresses, want); err != nil {
		t.Errorf("addresses: %v", err)
	}
	if hi, err := time.ParseDuration(in.HopInterval); err != nil || hi != hopInterval {
		t.Errorf("hop_interval %q, want %q", in.HopInterval, hopInterval)
	}
}

func checkPeerStatus(t *testing.T, want *daemon, got peerStatus) {
	t.Helper()
	if got.PublicKey != want.pubKey {
		t.Errorf("peer %s public_key %q, want %q", want.name, got.PublicKey, want.pubKey)
	}
	ep := netip.AddrPortFrom(want.host.underlay, listenPort).String()
	if got.Endpoint == nil || *got.Endpoint != ep {
		t.Errorf("peer %s endpoint %v, want %q", want.name, strOrNull(got.Endpoint), ep)
	}
	wantIPs := []netip.Prefix{hostRoute(want.addr4), hostRoute(want.addr6)}
	if err := samePrefixes(got.AllowedIPs, wantIPs); err != nil {
		t.Errorf("peer %s allowed_ips: %v", want.name, err)
	}
	now := time.Now()
	switch lh := got.LastHandshake; {
	case lh == nil:
		t.Errorf("peer %s: last_handshake null after traffic", want.name)
	case lh.After(now.Add(2*time.Second)) || lh.Before(now.Add(-2*time.Minute)):
		t.Errorf("peer %s: last_handshake %v, not within the last 2 minutes of %v",
			want.name, lh, now)
	}
	if got.RxBytes == 0 || got.TxBytes == 0 {
		t.Errorf("peer %s: rx_bytes %d, tx_bytes %d after pings, want both > 0",
			want.name, got.RxBytes, got.TxBytes)
	}
}

func intOrNull(n *int64) string {
	if n == nil {
		return "null"
	}
	return strconv.FormatInt(*n, 10)
}

func strOrNull(s *string) string {
	if s == nil {
		return "null"
	}
	return strconv.Quote(*s)
}

// samePrefixes compares a status list of prefixes with want, ignoring order
// and spelling ("fd7a:686f:7072:0::1/64" equals "fd7a:686f:7072::1/64").
func samePrefixes(got []string, want []netip.Prefix) error {
	var parsed []string
	for _, s := range got {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%q is not a prefix: %w", s, err)
		}
		parsed = append(parsed, p.String())
	}
	var ws []string
	for _, p := range want {
		ws = append(ws, p.String())
	}
	slices.Sort(parsed)
	slices.Sort(ws)
	if !slices.Equal(parsed, ws) {
		return fmt.Errorf("got %v, want %v", got, ws)
	}
	return nil
}

// testHop pings a -> b every 50 ms for 20 s: nothing may be lost while the
// keys hop every 100 ms, and both sides must see about 200 hops.
func testHop(t *testing.T, a, b *daemon) {
	const count, interval, minHops = 400, 50 * time.Millisecond, 150
	beforeA, beforeB := a.mustStatus(t), b.mustStatus(t)
	r := a.host.ping(b.addr4.Addr(), count, 2*time.Second, interval)
	afterA, afterB := a.mustStatus(t), b.mustStatus(t)
	if r.transmitted != count || r.received != count {
		t.Errorf("ping -i %v -c %d %s -> %s: %d sent, %d received (err %v)\n%s",
			interval, count, a.name, b.name, r.transmitted, r.received, r.err,
			lastLines(r.output, 4))
	}
	views := []struct {
		side          *daemon
		peer          string
		before, after *statusReport
	}{
		{a, b.name, beforeA, afterA},
		{b, a.name, beforeB, afterB},
	}
	for _, v := range views {
		p0, ok0 := v.before.peer(v.peer)
		p1, ok1 := v.after.peer(v.peer)
		if !ok0 || !ok1 {
			t.Errorf("%s's status lacks peer %s", v.side.name, v.peer)
			continue
		}
		t.Logf("%s's view of %s: epoch %s -> %s, hops %d -> %d, drops %v -> %v",
			v.side.name, v.peer, intOrNull(p0.Epoch), intOrNull(p1.Epoch), p0.Hops, p1.Hops,
			p0.Drops, p1.Drops)
		if p1.Hops-p0.Hops < minHops {
			t.Errorf("%s's view of %s: hops %d -> %d, advanced %d, want >= %d in %v",
				v.side.name, v.peer, p0.Hops, p1.Hops, p1.Hops-p0.Hops, minHops,
				time.Duration(count)*interval)
		}
		switch {
		case p0.Epoch == nil || p1.Epoch == nil:
			t.Errorf("%s's view of %s: epoch %s -> %s, want a live session throughout",
				v.side.name, v.peer, intOrNull(p0.Epoch), intOrNull(p1.Epoch))
		case *p1.Epoch == *p0.Epoch:
			t.Errorf("%s's view of %s: epoch stayed %d over %v of traffic",
				v.side.name, v.peer, *p0.Epoch, time.Duration(count)*interval)
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// testTransfer sends 200 MB of random data over TCP through the overlay and
// compares the SHA-256 sums of what left and what arrived.
func testTransfer(t *testing.T, all []*daemon) {
	a, b, c := all[0], all[1], all[2]
	tests := []struct {
		name     string
		src, dst *daemon
		dstAddr  netip.Addr
	}{
		{name: "a_to_b_ipv4", src: a, dst: b, dstAddr: b.addr4.Addr()},
		{name: "c_to_a_ipv6", src: c, dst: a, dstAddr: a.addr6.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := netip.AddrPortFrom(tt.dstAddr, transferPort).String()
			start := time.Now()
			sent, got := transfer(t, tt.src.host, tt.dst.host, addr, transferSize)
			elapsed := time.Since(start)
			t.Logf("%d bytes %s -> %s in %v (%.0f Mbit/s)", got.Bytes, tt.src.name,
				tt.dst.name, elapsed.Round(time.Millisecond),
				float64(got.Bytes)*8/elapsed.Seconds()/1e6)
			if sent.Bytes != transferSize || got.Bytes != transferSize {
				t.Errorf("sent %d bytes, received %d, want %d", sent.Bytes, got.Bytes,
					transferSize)
			}
			if sent.SHA256 != got.SHA256 {
				t.Errorf("SHA-256 differs: sent %s, received %s", sent.SHA256, got.SHA256)
			}
		})
	}
}

// helperResult is what a transfer helper prints when done.
type helperResult struct {
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// transfer runs a receiver in dst and a sender in src and returns both
// results.
func transfer(t *testing.T, src, dst *host, addr string, size int) (sent, got helperResult) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), transferLimit)
	defer cancel()
	env := append(os.Environ(), helperAddrEnv+"="+addr,
		helperSizeEnv+"="+strconv.Itoa(size), helperSeedEnv+"="+hex.EncodeToString(seed[:]))

	var recvErr bytes.Buffer
	recv := exec.CommandContext(ctx, "ip", "netns", "exec", dst.ns, self)
	recv.Env = append(slices.Clone(env), helperEnv+"=recv")
	recv.Stderr = &recvErr
	recvOut, err := recv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := recv.Start(); err != nil {
		t.Fatalf("start receiver: %v", err)
	}
	defer func() { _ = recv.Wait() }()
	rd := bufio.NewReader(recvOut)
	line, err := rd.ReadString('\n')
	if strings.TrimSpace(line) != helperReady {
		cancel()
		t.Fatalf("receiver in %s did not start: %q, %v: %s", dst.ns, line, err, &recvErr)
	}

	var sendOut, sendErr bytes.Buffer
	send := exec.CommandContext(ctx, "ip", "netns", "exec", src.ns, self)
	send.Env = append(slices.Clone(env), helperEnv+"=send")
	send.Stdout, send.Stderr = &sendOut, &sendErr
	if err := send.Run(); err != nil {
		cancel()
		t.Fatalf("sender in %s: %v: %s", src.ns, err, &sendErr)
	}
	rest, _ := io.ReadAll(rd)
	if err := recv.Wait(); err != nil {
		t.Fatalf("receiver in %s: %v: %s", dst.ns, err, &recvErr)
	}
	if err := json.Unmarshal(sendOut.Bytes(), &sent); err != nil {
		t.Fatalf("sender output %q: %v", sendOut.String(), err)
	}
	if err := json.Unmarshal(rest, &got); err != nil {
		t.Fatalf("receiver output %q: %v", rest, err)
	}
	return sent, got
}

// runHelper is the transfer helper's main: role "recv" accepts one TCP
// connection and hashes what arrives; "send" dials and sends pseudo-random
// bytes. Each prints a helperResult; the exit code is 0 on success.
func runHelper(role string) int {
	var (
		res helperResult
		err error
	)
	addr := os.Getenv(helperAddrEnv)
	switch role {
	case "recv":
		res, err = helperRecv(addr)
	case "send":
		res, err = helperSend(addr)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e helper %s: %v\n", role, err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		fmt.Fprintf(os.Stderr, "e2e helper %s: %v\n", role, err)
		return 1
	}
	return 0
}

func helperRecv(addr string) (helperResult, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return helperResult{}, err
	}
	defer ln.Close()
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return helperResult{}, err
	}
	fmt.Println(helperReady)
	conn, err := ln.Accept()
	if err != nil {
		return helperResult{}, fmt.Errorf("accept: %w", err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(transferLimit)); err != nil {
		return helperResult{}, err
	}
	h := sha256.New()
	n, err := io.Copy(h, conn)
	if err != nil {
		return helperResult{}, fmt.Errorf("receive after %d bytes: %w", n, err)
	}
	return helperResult{Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

func helperSend(addr string) (helperResult, error) {
	size, err := strconv.ParseInt(os.Getenv(helperSizeEnv), 10, 64)
	if err != nil {
		return helperResult{}, fmt.Errorf("size: %w", err)
	}
	seedHex, err := hex.DecodeString(os.Getenv(helperSeedEnv))
	if err != nil || len(seedHex) != 32 {
		return helperResult{}, errors.New("seed: want 64 hex digits")
	}
	rng := mrand.NewChaCha8([32]byte(seedHex))
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return helperResult{}, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(transferLimit)); err != nil {
		return helperResult{}, err
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	var sent int64
	for sent < size {
		chunk := buf[:min(int64(len(buf)), size-sent)]
		_, _ = rng.Read(chunk)
		h.Write(chunk)
		n, err := conn.Write(chunk)
		sent += int64(n)
		if err != nil {
			return helperResult{}, fmt.Errorf("send after %d bytes: %w", sent, err)
		}
	}
	// Half-close, then wait for the receiver's close: it has read it all.
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		return helperResult{}, err
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		return helperResult{}, fmt.Errorf("wait for receiver: %w", err)
	}
	return helperResult{Bytes: sent, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// testUnauthorized starts d, whose key no host lists, and checks that it
// gets nothing through to a and that a counts the attempts as drops.
func testUnauthorized(t *testing.T, c *cluster, a *daemon) {
	h, err := c.tp.addHost("d", underlayAddrs[3])
	if err != nil {
		t.Fatalf("add intruder host: %v", err)
	}
	d := newDaemon(t, c.bin, c.root, h, 3)
	c.add(d)
	d.writeConfig(t, []*daemon{a})
	before := a.mustStatus(t)
	d.start(t)
	d.waitReady(t, readyTimeout)

	for _, dst := range []netip.Addr{a.addr4.Addr(), a.addr6.Addr()} {
		if r := h.ping(dst, 3, 2*time.Second, 0); r.received != 0 {
			t.Errorf("intruder d reached a at %v: %d of %d replies\n%s", dst, r.received,
				r.transmitted, r.output)
		}
	}
	for _, dst := range []netip.Addr{d.addr4.Addr(), d.addr6.Addr()} {
		if r := a.host.ping(dst, 1, 2*time.Second, 0); r.received != 0 {
			t.Errorf("a reached the intruder at %v: %d replies\n%s", dst, r.received, r.output)
		}
	}

	after := a.mustStatus(t)
	for _, p := range after.Peers {
		if p.PublicKey == d.pubKey {
			t.Errorf("a lists the intruder's key as peer %q (last_handshake %v)",
				p.Name, p.LastHandshake)
		}
	}
	if n := len(after.Peers); n != len(before.Peers) {
		t.Errorf("a has %d peers after the intrusion, %d before", n, len(before.Peers))
	}
	if sumDrops(after.Drops) <= sumDrops(before.Drops) {
		t.Errorf("a counted no drops for the intruder's handshakes: drops %v -> %v",
			before.Drops, after.Drops)
	}
	t.Logf("a's drops: %v -> %v", before.Drops, after.Drops)
	ds := d.mustStatus(t)
	if pa, ok := ds.peer(a.name); !ok {
		t.Errorf("intruder's status lacks peer a")
	} else if pa.LastHandshake != nil {
		t.Errorf("intruder completed a handshake with a at %v", pa.LastHandshake)
	}
	if inTime, err := d.stop(syscall.SIGTERM, stopTimeout); err != nil || !inTime {
		t.Errorf("stop intruder: %v (in time: %t)", err, inTime)
	}
}

// testRestart kills b with SIGKILL, starts it again and checks that
// traffic with every peer flows within 10 s and that b's namespace ends up
// exactly as before: no interface, address or route twice, none missing.
func testRestart(t *testing.T, b *daemon, peers []*daemon) {
	const recovery = 10 * time.Second
	before, err := b.host.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	peersBefore := make(map[string]*statusReport)
	for _, p := range peers {
		peersBefore[p.name] = p.mustStatus(t)
	}
	if _, err := b.stop(syscall.SIGKILL, stopTimeout); err == nil {
		t.Fatalf("%s exited cleanly on SIGKILL?", b.name)
	}
	start := time.Now()
	b.start(t)
	b.waitReady(t, recovery)
	t.Logf("%s ready %v after restart", b.name, time.Since(start).Round(time.Millisecond))
	deadline := start.Add(recovery)
	for _, p := range peers {
		for _, leg := range []struct {
			from, to *daemon
			dst      netip.Addr
		}{
			{p, b, b.addr4.Addr()},
			{b, p, p.addr4.Addr()},
			{p, b, b.addr6.Addr()},
			{b, p, p.addr6.Addr()},
		} {
			err := pingUntil(leg.from.host, leg.dst, deadline)
			since := time.Since(start).Round(time.Millisecond)
			if err != nil {
				t.Errorf("%s -> %s (%v) %v after restart: %v", leg.from.name, leg.to.name,
					leg.dst, since, err)
				continue
			}
			t.Logf("%s -> %s (%v) answered %v after restart", leg.from.name, leg.to.name,
				leg.dst, since)
		}
	}
	t.Logf("traffic with all peers of %s %v after restart", b.name,
		time.Since(start).Round(time.Millisecond))
	after, err := b.host.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if d := before.diff(after); len(d) > 0 {
		t.Errorf("namespace %s differs after restart:\n  %s\nbefore:\n%safter:\n%s",
			b.host.ns, strings.Join(d, "\n  "), before, after)
	}
	for _, p := range peers {
		s := p.mustStatus(t)
		pb, ok := s.peer(b.name)
		if !ok {
			t.Errorf("%s's status lacks %s", p.name, b.name)
			continue
		}
		pb0, _ := peersBefore[p.name].peer(b.name)
		t.Logf("%s's drops: interface %v -> %v, peer %s %v -> %v", p.name,
			peersBefore[p.name].Drops, s.Drops, b.name, pb0.Drops, pb.Drops)
		if pb.LastHandshake == nil || pb.LastHandshake.Before(start.Truncate(time.Second)) {
			t.Errorf("%s's last handshake with %s is %v, before the restart at %v",
				p.name, b.name, pb.LastHandshake, start)
		}
	}
}

// pingUntil pings dst once a second until a reply comes or deadline passes.
func pingUntil(h *host, dst netip.Addr, deadline time.Time) error {
	var last pingResult
	for {
		last = h.ping(dst, 1, time.Second, 0)
		if last.received == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no reply: %v\n%s", last.err, last.output)
		}
	}
}

// testShutdown stops each daemon with SIGINT or SIGTERM and checks that it
// exits cleanly and takes its interface, addresses, routes and control
// socket with it.
func testShutdown(t *testing.T, all []*daemon) {
	sigs := []syscall.Signal{syscall.SIGINT, syscall.SIGTERM}
	for i, d := range all {
		sig := sigs[i%len(sigs)]
		t.Run(d.name+"_"+strings.ToLower(strings.TrimPrefix(sigName(sig), "SIG")),
			func(t *testing.T) {
				if gone, err := d.exited(); gone {
					t.Fatalf("%s already exited: %v", d.name, err)
				}
				inTime, err := d.stop(sig, stopTimeout)
				if !inTime {
					t.Fatalf("%s still running %v after %s", d.name, stopTimeout, sigName(sig))
				}
				if err != nil {
					t.Errorf("%s exited with %v after %s, want status 0", d.name, err,
						sigName(sig))
				}
				checkNoOverlay(t, d)
				sock := filepath.Join(d.runDir, ifName+".sock")
				if _, err := os.Stat(sock); err == nil {
					t.Errorf("control socket %s left behind", sock)
				}
			})
	}
}

func sigName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// checkNoOverlay fails t when d's namespace still has hop0, an overlay
// address or a route into the overlay.
func checkNoOverlay(t *testing.T, d *daemon) {
	t.Helper()
	s, err := d.host.snapshot()
	if err != nil {
		t.Fatal(err)
	}
	overlays := []netip.Prefix{d.addr4.Masked(), d.addr6.Masked()}
	for _, l := range s.links {
		if strings.HasPrefix(l, ifName+" ") {
			t.Errorf("interface left behind: %s", l)
		}
	}
	for _, a := range s.addrs {
		if strings.HasPrefix(a, ifName+" ") || mentionsPrefix(a, overlays) {
			t.Errorf("address left behind: %s", a)
		}
	}
	for _, r := range s.routes {
		if slices.Contains(strings.Fields(r), "dev="+ifName) || mentionsPrefix(r, overlays) {
			t.Errorf("route left behind: %s", r)
		}
	}
}

// mentionsPrefix reports whether a snapshot line names an address or
// prefix inside one of ps.
func mentionsPrefix(line string, ps []netip.Prefix) bool {
	for _, f := range strings.Fields(line) {
		if _, v, ok := strings.Cut(f, "="); ok {
			f = v
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			f = p.Addr().String()
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			continue
		}
		for _, p := range ps {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}
