package main

// End-to-end interoperability with WireGuard: hoprd next to the
// wireguard-go program, both configured with wg(8), and hoprd run by
// wg-quick as its userspace implementation.
//
//	 hopa-*: hoprd up        hopb-*: wireguard-go     hopc-*: hoprd up        hopd-*: wg-quick
//	 hwaNNNN .1/24, ::1/64   wgbNNNN .2/24, ::2/64    hwcNNNN .3/24, ::3/64   hwdNNNN .4/24, ::4/64
//	  peer b: wireguard+psk   peer a (psk)             peer a: hop             (hoprd, userspace)
//	  peer c: hop             peer c: keepalive 1s     peer b: hop (wrong!)    peer b
//	                          peer d
//	 eth0 192.0.2.1          eth0 192.0.2.2           eth0 192.0.2.3          eth0 192.0.2.4
//	      |                       |                        |                       |
//	 +----+-----------------------+------------------------+-----------------------+----+
//	 | hopsw-*: bridge br0                                                               |
//	 +-----------------------------------------------------------------------------------+
//
// The overlay addresses are 100.64.0.N and fd7a:686f:7072::N. The wg(8)
// sockets live in /var/run/wireguard, shared by all namespaces, so every
// interface name carries a random tag; the sockets, and the state wg-quick's
// hoprd leaves under the default directories, are removed at the end, pass
// or fail.

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hoprd/hoprd/device"
)

// wgTools are the programs of the WireGuard tests, with their Debian
// package (scripts/deps.sh installs it).
var wgTools = []struct{ name, pkg string }{
	{"wg", "wireguard-tools"},
	{"wg-quick", "wireguard-tools"},
}

// wgSocketDir is where wg(8) finds userspace implementations.
const wgSocketDir = "/var/run/wireguard"

// wgTransferSize is what each TCP transfer with wireguard-go moves.
const wgTransferSize = 64 << 20

// wireguardGoBuild holds the wireguard-go program built for this process.
var wireguardGoBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// wireguardGoBinary builds the wireguard-go program of the module version
// hoprd depends on, once per test process; it is removed when t's
// top-level test ends.
func wireguardGoBinary(t *testing.T) string {
	t.Helper()
	wireguardGoBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "hoprd-wggo-")
		if err != nil {
			wireguardGoBuild.err = err
			return
		}
		wireguardGoBuild.dir = dir
		wireguardGoBuild.path = filepath.Join(dir, "wireguard-go")
		out, err := exec.Command("go", "build", "-o", wireguardGoBuild.path,
			"golang.zx2c4.com/wireguard").CombinedOutput()
		if err != nil {
			wireguardGoBuild.err = fmt.Errorf("go build wireguard-go: %w\n%s", err, out)
		}
	})
	if wireguardGoBuild.err != nil {
		t.Fatal(wireguardGoBuild.err)
	}
	return wireguardGoBuild.path
}

// requireWGTools fails t when wg or wg-quick is missing.
func requireWGTools(t *testing.T) {
	t.Helper()
	for _, tool := range wgTools {
		if _, err := exec.LookPath(tool.name); err != nil {
			t.Fatalf("required tool %q not found: install Debian package %s "+
				"(apt-get install %s, or scripts/deps.sh)", tool.name, tool.pkg, tool.pkg)
		}
	}
}

// wgRig is the topology at the top of this file.
type wgRig struct {
	bin, wggo string
	root      string
	tag       string
	a, c      *daemon // hoprd up
	hb, hd    *host   // wireguard-go and wg-quick hosts
	ifA, ifB  string
	ifC, ifD  string
	keyB      wgKey
	keyD      wgKey
	pskPath   string
	wggoLog   string
	wggoCmd   *exec.Cmd
	wggoDone  chan struct{}
}

// wgKey is a key pair made with wg(8).
type wgKey struct {
	privPath string
	pub      string
}

// newWGKey writes a private key to dir/name with mode 0600.
func newWGKey(t *testing.T, dir, name string) wgKey {
	t.Helper()
	priv, err := runCmd("wg", "genkey")
	if err != nil {
		t.Fatal(err)
	}
	k := wgKey{privPath: filepath.Join(dir, name)}
	if err := os.WriteFile(k.privPath, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("wg", "pubkey")
	cmd.Stdin = strings.NewReader(string(priv))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("wg pubkey: %v", err)
	}
	k.pub = strings.TrimSpace(string(out))
	return k
}

// randomTag returns four hex digits for interface names.
func randomTag(t *testing.T) string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// TestE2EWireGuard runs the subtests below in order on one rig.
func TestE2EWireGuard(t *testing.T) {
	requireRoot(t)
	requireTools(t)
	requireWGTools(t)
	r := newWGRig(t)
	t.Run("ping", r.testPing)
	t.Run("transfer", r.testTransfer)
	t.Run("wg_show", r.testWGShow)
	t.Run("status_agrees", r.testStatusAgrees)
	t.Run("wg_set", r.testWGSet)
	t.Run("mismatch", r.testMismatch)
	t.Run("wg_quick", r.testWGQuick)
	t.Run("stop", r.testStop)
}

func newWGRig(t *testing.T) *wgRig {
	t.Helper()
	r := &wgRig{bin: hoprdBinary(t), wggo: wireguardGoBinary(t), root: t.TempDir(),
		tag: randomTag(t)}
	addScratch(r.root)
	r.ifA, r.ifB, r.ifC, r.ifD = "hwa"+r.tag, "wgb"+r.tag, "hwc"+r.tag, "hwd"+r.tag
	t.Cleanup(func() {
		if wireguardGoBuild.dir != "" {
			os.RemoveAll(wireguardGoBuild.dir)
		}
	})
	t.Cleanup(r.removeLeftovers(t))

	_, hosts := newTopology(t, underlayPrefix, underlayAddrs[:4]...)
	t.Cleanup(func() {
		if t.Failed() {
			r.dumpLogs(t)
		}
	})
	r.a = newDaemon(t, r.bin, r.root, hosts[0], 0)
	r.c = newDaemon(t, r.bin, r.root, hosts[2], 2)
	r.hb, r.hd = hosts[1], hosts[3]
	r.keyB = newWGKey(t, r.root, "b.key")
	r.keyD = newWGKey(t, r.root, "d.key")
	psk, err := runCmd("wg", "genpsk")
	if err != nil {
		t.Fatal(err)
	}
	r.pskPath = filepath.Join(r.root, "ab.psk")
	if err := os.WriteFile(r.pskPath, psk, 0o600); err != nil {
		t.Fatal(err)
	}

	epB := netip.AddrPortFrom(r.hb.underlay, listenPort).String()
	r.writeHoprdConfig(t, r.a, r.ifA, []wgPeerConf{
		{name: "b", pub: r.keyB.pub, mode: "wireguard", psk: r.pskPath, endpoint: epB,
			allowed: []netip.Prefix{hostRoute(overlay4[1]), hostRoute(overlay6[1])}},
		{name: "c", pub: r.c.pubKey, mode: "hop",
			endpoint: netip.AddrPortFrom(r.c.host.underlay, listenPort).String(),
			allowed:  []netip.Prefix{hostRoute(r.c.addr4), hostRoute(r.c.addr6)}},
	})
	r.writeHoprdConfig(t, r.c, r.ifC, []wgPeerConf{
		{name: "a", pub: r.a.pubKey, mode: "hop",
			endpoint: netip.AddrPortFrom(r.a.host.underlay, listenPort).String(),
			allowed:  []netip.Prefix{hostRoute(r.a.addr4), hostRoute(r.a.addr6)}},
		{name: "b", pub: r.keyB.pub, mode: "hop", endpoint: epB,
			allowed: []netip.Prefix{hostRoute(overlay4[1])}},
	})
	t.Cleanup(func() {
		for _, d := range []*daemon{r.a, r.c} {
			d.stop(syscall.SIGTERM, stopTimeout)
		}
	})
	for _, d := range []*daemon{r.a, r.c} {
		d.start(t)
	}
	for _, x := range []struct {
		d    *daemon
		name string
	}{{r.a, r.ifA}, {r.c, r.ifC}} {
		waitFor(t, readyTimeout, x.name+" up", func() error {
			if gone, err := x.d.exited(); gone {
				return fmt.Errorf("exited: %v", err)
			}
			_, err := r.status(x.d.runDir, x.name)
			return err
		})
	}
	r.startWireGuardGo(t)
	return r
}

// wgPeerConf is a [[peer]] table of a hoprd config.
type wgPeerConf struct {
	name, pub, mode, psk, endpoint string
	allowed                        []netip.Prefix
}

// writeHoprdConfig writes d's config with the interface called iface.
func (r *wgRig) writeHoprdConfig(t *testing.T, d *daemon, iface string, peers []wgPeerConf) {
	t.Helper()
	q := strconv.Quote
	var b strings.Builder
	fmt.Fprintf(&b, "[interface]\nname = %s\nprivate_key_file = %s\n", q(iface), q(d.keyPath))
	fmt.Fprintf(&b, "address = [%s, %s]\nlisten_port = %d\n", q(d.addr4.String()),
		q(d.addr6.String()), listenPort)
	for _, p := range peers {
		fmt.Fprintf(&b, "\n[[peer]]\nname = %s\npublic_key = %s\nmode = %s\nendpoint = %s\n",
			q(p.name), q(p.pub), q(p.mode), q(p.endpoint))
		var allowed []string
		for _, a := range p.allowed {
			allowed = append(allowed, q(a.String()))
		}
		fmt.Fprintf(&b, "allowed_ips = [%s]\n", strings.Join(allowed, ", "))
		if p.psk != "" {
			fmt.Fprintf(&b, "preshared_key_file = %s\n", q(p.psk))
		}
	}
	if err := os.WriteFile(d.cfgPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startWireGuardGo runs wireguard-go in b and configures it with wg(8)
// and ip(8).
func (r *wgRig) startWireGuardGo(t *testing.T) {
	t.Helper()
	r.wggoLog = filepath.Join(r.root, "wireguard-go.log")
	logf, err := os.Create(r.wggoLog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", r.hb.ns, r.wggo, "-f", r.ifB)
	cmd.Env = append(os.Environ(), "LOG_LEVEL=verbose")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start wireguard-go: %v", err)
	}
	r.wggoCmd, r.wggoDone = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(r.wggoDone)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.wggoDone:
		case <-time.After(stopTimeout):
			cmd.Process.Kill()
			<-r.wggoDone
		}
	})
	sock := filepath.Join(wgSocketDir, r.ifB+".sock")
	waitFor(t, readyTimeout, "wireguard-go's socket", func() error {
		_, err := os.Stat(sock)
		return err
	})
	all := func(d *daemon) string {
		return hostRoute(d.addr4).String() + "," + hostRoute(d.addr6).String()
	}
	ep := func(h *host) string { return netip.AddrPortFrom(h.underlay, listenPort).String() }
	steps := [][]string{
		{"wg", "set", r.ifB, "private-key", r.keyB.privPath, "listen-port",
			strconv.Itoa(listenPort),
			"peer", r.a.pubKey, "preshared-key", r.pskPath, "endpoint", ep(r.a.host),
			"allowed-ips", all(r.a),
			"peer", r.c.pubKey, "endpoint", ep(r.c.host), "persistent-keepalive", "1",
			"allowed-ips", hostRoute(r.c.addr4).String()},
		{"ip", "addr", "add", overlay4[1].String(), "dev", r.ifB},
		{"ip", "addr", "add", overlay6[1].String(), "dev", r.ifB, "nodad"},
		{"ip", "link", "set", r.ifB, "up"},
	}
	for _, s := range steps {
		if out, err := r.hb.exec(t.Context(), s[0], s[1:]...); err != nil {
			t.Fatalf("configure wireguard-go: %v\n%s", err, out)
		}
	}
}

// removeLeftovers returns a cleanup that removes what the rig may leave
// outside its namespaces and temporary directory: the wg(8) sockets, and
// the socket and state of the hoprd that wg-quick runs with the default
// directories (and those directories, if the test created them).
func (r *wgRig) removeLeftovers(t *testing.T) func() {
	var created []string
	for _, dir := range []string{defaultRunDir, defaultStateDir, wgSocketDir} {
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			created = append(created, dir)
		}
	}
	return func() {
		for _, name := range []string{r.ifA, r.ifB, r.ifC, r.ifD} {
			os.Remove(filepath.Join(wgSocketDir, name+".sock"))
		}
		os.Remove(filepath.Join(defaultRunDir, r.ifD+".sock"))
		os.RemoveAll(filepath.Join(defaultStateDir, r.ifD))
		for _, dir := range created {
			os.Remove(dir) // only if empty: another daemon may use it meanwhile
		}
	}
}

func (r *wgRig) dumpLogs(t *testing.T) {
	for _, d := range []*daemon{r.a, r.c} {
		t.Logf("log of hoprd %s (%s):\n%s", d.name, d.host.ns, d.logTail())
	}
	if b, err := os.ReadFile(r.wggoLog); err == nil {
		t.Logf("log of wireguard-go:\n%s", lastLines(string(b), 60))
	}
	if b, err := os.ReadFile(filepath.Join(r.root, "wg-quick.log")); err == nil {
		t.Logf("log of wg-quick and its hoprd:\n%s", lastLines(string(b), 80))
	}
}

// waitFor polls fn until it returns nil, failing t after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// status runs "hoprd status --json" for the interface iface.
func (r *wgRig) status(runDir, iface string) (*device.Status, error) {
	out, err := runCmd(r.bin, "status", "-i", iface, "--json", "--run-dir", runDir)
	if err != nil {
		return nil, err
	}
	var st device.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("decode status of %s: %w\n%s", iface, err, out)
	}
	return &st, nil
}

func (r *wgRig) mustStatus(t *testing.T, runDir, iface string) *device.Status {
	t.Helper()
	st, err := r.status(runDir, iface)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// peerByKey returns the status of the peer with public key pub.
func peerByKey(st *device.Status, pub string) (device.PeerStatus, bool) {
	for _, p := range st.Peers {
		if p.PublicKey == pub {
			return p, true
		}
	}
	return device.PeerStatus{}, false
}

// wgPeer is one peer line of "wg show IFACE dump".
type wgPeer struct {
	pub, psk, endpoint string
	allowed            []string
	handshake          int64 // unix seconds, 0 for never
	rx, tx             uint64
	keepalive          string // seconds or "off"
}

// wgDump runs "wg show iface dump" and returns the peers by public key.
func wgDump(t *testing.T, h *host, iface string) map[string]wgPeer {
	t.Helper()
	out, err := h.exec(t.Context(), "wg", "show", iface, "dump")
	if err != nil {
		t.Fatalf("wg show %s dump: %v", iface, err)
	}
	peers := map[string]wgPeer{}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	for _, line := range lines[1:] { // the first line is the interface
		f := strings.Split(line, "\t")
		if len(f) != 8 {
			t.Fatalf("wg show %s dump: peer line %q has %d fields", iface, line, len(f))
		}
		p := wgPeer{pub: f[0], psk: f[1], endpoint: f[2], keepalive: f[7]}
		if f[3] != "(none)" {
			p.allowed = strings.Split(f[3], ",")
		}
		var errs [3]error
		p.handshake, errs[0] = strconv.ParseInt(f[4], 10, 64)
		p.rx, errs[1] = strconv.ParseUint(f[5], 10, 64)
		p.tx, errs[2] = strconv.ParseUint(f[6], 10, 64)
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("wg show %s dump: %q: %v", iface, line, err)
		}
		peers[p.pub] = p
	}
	return peers
}

// pingOK pings dst from h until one answer arrives, for up to 10 s (the
// first packets wait for a handshake), then requires three in a row.
func pingOK(t *testing.T, h *host, dst netip.Addr) {
	t.Helper()
	if err := pingUntil(h, dst, time.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("ping %v from %s: %v", dst, h.ns, err)
	}
	if res := h.ping(dst, 3, 2*time.Second, 200*time.Millisecond); res.received != 3 {
		t.Fatalf("ping %v from %s: %d of 3 answered\n%s", dst, h.ns, res.received, res.output)
	}
}

func (r *wgRig) testPing(t *testing.T) {
	tests := []struct {
		name string
		from *host
		to   netip.Addr
	}{
		{"hoprd_to_wireguard-go_ipv4", r.a.host, overlay4[1].Addr()},
		{"wireguard-go_to_hoprd_ipv4", r.hb, r.a.addr4.Addr()},
		{"hoprd_to_wireguard-go_ipv6", r.a.host, overlay6[1].Addr()},
		{"wireguard-go_to_hoprd_ipv6", r.hb, r.a.addr6.Addr()},
		{"hop_peer_beside_it", r.a.host, r.c.addr4.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { pingOK(t, tt.from, tt.to) })
	}
}

func (r *wgRig) testTransfer(t *testing.T) {
	tests := []struct {
		name     string
		src, dst *host
		addr     netip.Addr
	}{
		{"hoprd_to_wireguard-go", r.a.host, r.hb, overlay4[1].Addr()},
		{"wireguard-go_to_hoprd", r.hb, r.a.host, r.a.addr6.Addr()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			sent, got := transfer(t, tt.src, tt.dst,
				netip.AddrPortFrom(tt.addr, transferPort).String(), wgTransferSize)
			elapsed := time.Since(start)
			t.Logf("%d bytes in %v (%.0f Mbit/s)", got.Bytes, elapsed.Round(time.Millisecond),
				float64(got.Bytes)*8/elapsed.Seconds()/1e6)
			if sent.Bytes != wgTransferSize || got.Bytes != wgTransferSize ||
				sent.SHA256 != got.SHA256 {
				t.Fatalf("sent %d bytes (%s), received %d (%s)", sent.Bytes, sent.SHA256,
					got.Bytes, got.SHA256)
			}
		})
	}
}

// testWGShow checks that wg(8) shows both of a's peers, the hop one too,
// with their handshakes, and counters that grow with traffic.
func (r *wgRig) testWGShow(t *testing.T) {
	before := wgDump(t, r.a.host, r.ifA)
	b, okB := before[r.keyB.pub]
	c, okC := before[r.c.pubKey]
	if !okB || !okC || len(before) != 2 {
		t.Fatalf("wg show lists %d peers (b %t, c %t), want b and c", len(before), okB, okC)
	}
	now := time.Now().Unix()
	for name, p := range map[string]wgPeer{"b": b, "c": c} {
		if p.handshake == 0 || p.handshake > now || now-p.handshake > 300 {
			t.Errorf("peer %s: latest handshake %d, now %d", name, p.handshake, now)
		}
	}
	psk, err := os.ReadFile(r.pskPath)
	if err != nil {
		t.Fatal(err)
	}
	if b.psk != strings.TrimSpace(string(psk)) || c.psk != "(none)" {
		t.Errorf("preshared keys wrong: b's is the shared one: %t, c has none: %t",
			b.psk == strings.TrimSpace(string(psk)), c.psk == "(none)")
	}
	if want := netip.AddrPortFrom(r.hb.underlay, listenPort).String(); b.endpoint != want {
		t.Errorf("endpoint of b %q, want %q", b.endpoint, want)
	}
	pingOK(t, r.a.host, overlay4[1].Addr())
	after := wgDump(t, r.a.host, r.ifA)[r.keyB.pub]
	if after.rx <= b.rx || after.tx <= b.tx {
		t.Errorf("transfer of b did not grow with a ping: rx %d -> %d, tx %d -> %d",
			b.rx, after.rx, b.tx, after.tx)
	}
}

// testStatusAgrees compares "wg show dump" with "hoprd status --json" on a
// quiet interface: two dumps that agree, with the status read between
// them, must agree with it on everything both show.
func (r *wgRig) testStatusAgrees(t *testing.T) {
	for attempt := 0; attempt < 20; attempt++ {
		d1 := wgDump(t, r.a.host, r.ifA)
		st := r.mustStatus(t, r.a.runDir, r.ifA)
		d2 := wgDump(t, r.a.host, r.ifA)
		if !sameDump(d1, d2) {
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if len(st.Peers) != len(d1) {
			t.Fatalf("status lists %d peers, wg show %d", len(st.Peers), len(d1))
		}
		for _, ps := range st.Peers {
			w, ok := d1[ps.PublicKey]
			if !ok {
				t.Fatalf("peer %s (%s) in status, not in wg show", ps.Name, ps.PublicKey)
			}
			var hs int64
			if ps.LastHandshake != nil {
				hs = ps.LastHandshake.Unix()
			}
			var allowed []string
			for _, a := range ps.AllowedIPs {
				allowed = append(allowed, a.String())
			}
			checks := []struct {
				what       string
				wg, status any
			}{
				{"endpoint", w.endpoint, derefOr(ps.Endpoint, "(none)")},
				{"allowed ips", strings.Join(w.allowed, ","), strings.Join(allowed, ",")},
				{"latest handshake", w.handshake, hs},
				{"rx bytes", w.rx, ps.RxBytes},
				{"tx bytes", w.tx, ps.TxBytes},
			}
			for _, c := range checks {
				if fmt.Sprint(c.wg) != fmt.Sprint(c.status) {
					t.Errorf("peer %s %s: wg show %v, status %v", ps.Name, c.what, c.wg,
						c.status)
				}
			}
		}
		return
	}
	t.Fatal("the counters never held still for two wg show dumps")
}

func sameDump(a, b map[string]wgPeer) bool {
	if len(a) != len(b) {
		return false
	}
	for k, p := range a {
		q, ok := b[k]
		if !ok || p.rx != q.rx || p.tx != q.tx || p.handshake != q.handshake ||
			p.endpoint != q.endpoint || !slices.Equal(p.allowed, q.allowed) {
			return false
		}
	}
	return true
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// testWGSet changes a's peers at run time with wg(8) and checks the
// device, status and kernel routes after each change.
func (r *wgRig) testWGSet(t *testing.T) {
	extra := netip.MustParsePrefix("100.64.7.0/24")
	bAllowed := hostRoute(overlay4[1]).String() + "," + hostRoute(overlay6[1]).String()
	newKey := newWGKey(t, r.root, "new.key")
	newPrefix := netip.MustParsePrefix("100.64.8.1/32")
	wgSet := func(t *testing.T, args ...string) {
		t.Helper()
		out, err := r.a.host.exec(t.Context(), "wg", append([]string{"set", r.ifA}, args...)...)
		if err != nil {
			t.Fatalf("wg set %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	routeVia := func(t *testing.T, p netip.Prefix) bool {
		t.Helper()
		// "ip route show PREFIX" lists the routes to exactly that prefix.
		out, err := r.a.host.ip("route", "show", p.String(), "dev", r.ifA)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(out)) != ""
	}
	peerStatus := func(t *testing.T, pub string) (device.PeerStatus, bool) {
		return peerByKey(r.mustStatus(t, r.a.runDir, r.ifA), pub)
	}

	t.Run("add_allowed_ip", func(t *testing.T) {
		wgSet(t, "peer", r.keyB.pub, "allowed-ips", bAllowed+","+extra.String())
		if !routeVia(t, extra) {
			t.Error("no kernel route for the added allowed IP")
		}
		ps, _ := peerStatus(t, r.keyB.pub)
		if !slices.Contains(ps.AllowedIPs, extra) {
			t.Errorf("status allowed IPs %v lack %v", ps.AllowedIPs, extra)
		}
	})
	t.Run("remove_allowed_ip", func(t *testing.T) {
		wgSet(t, "peer", r.keyB.pub, "allowed-ips", bAllowed)
		if routeVia(t, extra) {
			t.Error("the kernel route outlived the allowed IP")
		}
		pingOK(t, r.a.host, overlay4[1].Addr())
	})
	t.Run("keepalive_and_endpoint", func(t *testing.T) {
		ep := netip.AddrPortFrom(r.hb.underlay, listenPort).String()
		wgSet(t, "peer", r.keyB.pub, "persistent-keepalive", "7", "endpoint", ep)
		ps, _ := peerStatus(t, r.keyB.pub)
		if ps.PersistentKeepalive != "7s" || derefOr(ps.Endpoint, "") != ep {
			t.Errorf("status keepalive %q endpoint %v, want 7s and %s", ps.PersistentKeepalive,
				derefOr(ps.Endpoint, ""), ep)
		}
		if w := wgDump(t, r.a.host, r.ifA)[r.keyB.pub]; w.keepalive != "7" {
			t.Errorf("wg show keepalive %q, want 7", w.keepalive)
		}
		wgSet(t, "peer", r.keyB.pub, "persistent-keepalive", "off")
	})
	t.Run("add_peer", func(t *testing.T) {
		wgSet(t, "peer", newKey.pub, "allowed-ips", newPrefix.String(),
			"endpoint", "192.0.2.99:51820")
		ps, ok := peerStatus(t, newKey.pub)
		if !ok || ps.Mode != "wireguard" || !slices.Equal(ps.AllowedIPs,
			[]netip.Prefix{newPrefix}) {
			t.Fatalf("status of the new peer: %+v (found %t)", ps, ok)
		}
		if !routeVia(t, newPrefix) {
			t.Error("no kernel route for the new peer")
		}
		if _, ok := wgDump(t, r.a.host, r.ifA)[newKey.pub]; !ok {
			t.Error("wg show does not list the new peer")
		}
	})
	t.Run("remove_peer", func(t *testing.T) {
		wgSet(t, "peer", newKey.pub, "remove")
		if _, ok := peerStatus(t, newKey.pub); ok {
			t.Error("status still lists the removed peer")
		}
		if routeVia(t, newPrefix) {
			t.Error("the kernel route outlived the removed peer")
		}
	})
	t.Run("refuse_claimed_prefix", func(t *testing.T) {
		out, err := r.a.host.exec(t.Context(), "wg", "set", r.ifA, "peer", r.keyB.pub,
			"allowed-ips", bAllowed+","+hostRoute(r.c.addr4).String())
		if err == nil {
			t.Fatalf("wg set gave the hop peer's address to b:\n%s", out)
		}
		ps, _ := peerStatus(t, r.c.pubKey)
		if !slices.Contains(ps.AllowedIPs, hostRoute(r.c.addr4)) {
			t.Error("the hop peer lost its allowed IP")
		}
	})
}

// testMismatch checks c, whose peer b is configured in hop mode while b
// runs wireguard-go: no handshake ever completes, and c says why, in
// status and, once, in its log.
func (r *wgRig) testMismatch(t *testing.T) {
	var ps device.PeerStatus
	waitFor(t, 15*time.Second, "a problem on c's peer b", func() error {
		ps, _ = peerByKey(r.mustStatus(t, r.c.runDir, r.ifC), r.keyB.pub)
		if !strings.Contains(ps.Problem, "wireguard") {
			return fmt.Errorf("problem %q", ps.Problem)
		}
		return nil
	})
	if !strings.Contains(ps.Problem, "hop") {
		t.Errorf("problem %q does not name the configured protocol", ps.Problem)
	}
	// wireguard-go retries every 5 s; wait for a repeat, which must not be
	// logged again.
	waitFor(t, 15*time.Second, "a repeated mismatched initiation", func() error {
		ps, _ = peerByKey(r.mustStatus(t, r.c.runDir, r.ifC), r.keyB.pub)
		if n := ps.Drops[device.DropProtocolMismatch.String()]; n < 2 {
			return fmt.Errorf("%d protocol_mismatch drops", n)
		}
		return nil
	})
	if ps.LastHandshake != nil {
		t.Errorf("c records a handshake with b at %v", ps.LastHandshake)
	}
	if w := wgDump(t, r.hb, r.ifB)[r.c.pubKey]; w.handshake != 0 {
		t.Errorf("wireguard-go records a handshake with c at %d", w.handshake)
	}
	if n := strings.Count(r.c.logTail(), "peer problem"); n != 1 {
		t.Errorf("c logged %d peer problem lines, want 1:\n%s", n, r.c.logTail())
	}
	// The hop peer beside it is fine.
	pingOK(t, r.c.host, r.a.addr4.Addr())
}

// testWGQuick brings up d from an ordinary wg-quick config file with hoprd
// as the userspace implementation, pings wireguard-go through it, and
// takes it down again.
func (r *wgRig) testWGQuick(t *testing.T) {
	if _, err := os.Stat("/sys/module/wireguard"); err == nil {
		t.Skip("the kernel has WireGuard: wg-quick would not run a userspace implementation")
	}
	d4 := overlay4[3]
	d6 := overlay6[3]
	wgSetB := []string{"set", r.ifB, "peer", r.keyD.pub, "endpoint",
		netip.AddrPortFrom(r.hd.underlay, listenPort).String(), "allowed-ips",
		hostRoute(d4).String() + "," + hostRoute(d6).String()}
	if out, err := r.hb.exec(t.Context(), "wg", wgSetB...); err != nil {
		t.Fatalf("add d to wireguard-go: %v\n%s", err, out)
	}
	priv, err := os.ReadFile(r.keyD.privPath)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(r.root, r.ifD+".conf")
	text := fmt.Sprintf("[Interface]\nPrivateKey = %s\nListenPort = %d\nAddress = %s, %s\n\n"+
		"[Peer]\nPublicKey = %s\nEndpoint = %s\nAllowedIPs = %s, %s\n",
		strings.TrimSpace(string(priv)), listenPort, d4, d6, r.keyB.pub,
		netip.AddrPortFrom(r.hb.underlay, listenPort), hostRoute(overlay4[1]),
		hostRoute(overlay6[1]))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(r.root, "wg-quick.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	wgQuick := func(verb string) error {
		cmd := exec.CommandContext(t.Context(), "ip", "netns", "exec", r.hd.ns, "wg-quick",
			verb, conf)
		cmd.Env = append(os.Environ(), "WG_QUICK_USERSPACE_IMPLEMENTATION="+r.bin,
			"LOG_LEVEL=debug")
		// Files, not pipes: the daemon keeps them open after wg-quick exits.
		cmd.Stdout, cmd.Stderr = logf, logf
		return cmd.Run()
	}
	if err := wgQuick("up"); err != nil {
		t.Fatalf("wg-quick up: %v", err)
	}

	pingOK(t, r.hd, overlay4[1].Addr())
	pingOK(t, r.hd, overlay6[1].Addr())
	pingOK(t, r.hb, d4.Addr())
	w := wgDump(t, r.hd, r.ifD)[r.keyB.pub]
	if w.handshake == 0 || w.rx == 0 || w.tx == 0 {
		t.Errorf("wg show %s: peer b %+v, want a handshake and traffic", r.ifD, w)
	}
	st := r.mustStatus(t, defaultRunDir, r.ifD)
	if ps, ok := peerByKey(st, r.keyB.pub); !ok || ps.Mode != "wireguard" {
		t.Errorf("hoprd status of %s: peer b %+v (found %t)", r.ifD, ps, ok)
	}
	if !slices.Contains(st.Interface.Addresses, d4) {
		t.Errorf("status shows addresses %v, want %v among them", st.Interface.Addresses, d4)
	}

	if err := wgQuick("down"); err != nil {
		t.Fatalf("wg-quick down: %v", err)
	}
	waitFor(t, stopTimeout, "hoprd to leave after wg-quick down", func() error {
		out, err := runCmd("ip", "netns", "pids", r.hd.ns)
		if err != nil {
			return err
		}
		if pids := strings.Fields(string(out)); len(pids) > 0 {
			return fmt.Errorf("processes %v still in %s", pids, r.hd.ns)
		}
		if _, err := os.Lstat(filepath.Join(wgSocketDir, r.ifD+".sock")); err == nil {
			return errors.New("its wg socket is still there")
		}
		return nil
	})
}

// testStop stops the hoprd daemons and checks that their wg sockets go.
func (r *wgRig) testStop(t *testing.T) {
	for _, x := range []struct {
		d    *daemon
		name string
	}{{r.a, r.ifA}, {r.c, r.ifC}} {
		if inTime, err := x.d.stop(syscall.SIGTERM, stopTimeout); !inTime || err != nil {
			t.Errorf("stop %s: in time %t, exit %v", x.name, inTime, err)
		}
		if _, err := os.Lstat(filepath.Join(wgSocketDir, x.name+".sock")); err == nil {
			t.Errorf("the wg socket of %s outlived the daemon", x.name)
		}
	}
}
