package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// Tests of the lookups of peer endpoints given as DNS names, with a
// resolver the test controls: no real DNS is asked.

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count returns how many lines contain every one of subs.
func (b *logBuffer) count(subs ...string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for line := range strings.Lines(b.buf.String()) {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestLogger(b *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fakeDNS answers lookups of one name: with errNoHost until it is told an
// address, then with that address. It counts the lookups.
type fakeDNS struct {
	mu    sync.Mutex
	addr  netip.AddrPort
	calls int
	block bool // lookups wait for their ctx to end
}

var errNoHost = errors.New("lookup beta.example.net: no such host (fake)")

func (f *fakeDNS) lookup(ctx context.Context, endpoint string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(endpoint); err == nil {
		return ap, nil
	}
	f.mu.Lock()
	f.calls++
	ap, block := f.addr, f.block
	f.mu.Unlock()
	if block {
		<-ctx.Done()
		return netip.AddrPort{}, ctx.Err()
	}
	if !ap.IsValid() {
		return netip.AddrPort{}, errNoHost
	}
	return ap, nil
}

func (f *fakeDNS) set(ap netip.AddrPort) {
	f.mu.Lock()
	f.addr = ap
	f.mu.Unlock()
}

func (f *fakeDNS) lookups() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeDNS) resolver() *resolver {
	return &resolver{lookup: f.lookup, first: time.Millisecond, max: 4 * time.Millisecond}
}

// newTestDevice returns a device on in-memory TUN and bind with one peer,
// beta, that has no endpoint.
func newTestDevice(t *testing.T, log *slog.Logger) (*device.Device, *device.Peer) {
	t.Helper()
	key, err := handshake.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	peerKey, err := handshake.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	dev, err := device.New(device.Config{PrivateKey: key, HopInterval: time.Minute,
		MTU: 1420, TUN: tuntest.NewChannelTUN().TUN(), Bind: bindtest.NewChannelBinds()[0],
		Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dev.Close)
	p, err := dev.AddPeer(device.PeerConfig{Name: "beta", PublicKey: peerKey.PublicKey(),
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.2/32")}})
	if err != nil {
		t.Fatal(err)
	}
	return dev, p
}

// problemOf returns the status problem of dev's only peer.
func problemOf(dev *device.Device) string {
	return dev.Status().Peers[0].Problem
}

// eventually polls cond until it holds, failing t after a few seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestResolveAllWarnsOnce checks that the lookups at start set what
// resolves and return, with one warning, what does not.
func TestResolveAllWarnsOnce(t *testing.T) {
	var logs logBuffer
	dns := &fakeDNS{}
	dc := &daemonConfig{
		cfg: &config.Config{Peers: []config.Peer{{Endpoint: "192.0.2.9:51820"},
			{Endpoint: "beta.example.net:51820"}, {}}},
		peers: []device.PeerConfig{{Name: "alpha"}, {Name: "beta"}, {Name: "gamma"}},
	}
	failed := dns.resolver().resolveAll(context.Background(), dc, newTestLogger(&logs))
	if got := dc.peers[0].Endpoint.String(); got != "192.0.2.9:51820" {
		t.Errorf("alpha's endpoint = %s, want 192.0.2.9:51820", got)
	}
	if dc.peers[1].Endpoint.IsValid() || dc.peers[2].Endpoint.IsValid() {
		t.Errorf("beta or gamma got an endpoint: %v, %v", dc.peers[1].Endpoint,
			dc.peers[2].Endpoint)
	}
	if len(failed) != 1 || failed[0].peer != "beta" ||
		failed[0].endpoint != "beta.example.net:51820" || !errors.Is(failed[0].err, errNoHost) {
		t.Errorf("failed = %+v, want beta's lookup", failed)
	}
	if n := logs.count("level=WARN", "peer=beta", "no such host"); n != 1 {
		t.Errorf("%d warnings about beta, want 1:\n%s", n, logs.String())
	}
}

// TestEndpointRetry runs the background lookups of a name that did not
// resolve at start, against the ways they end.
func TestEndpointRetry(t *testing.T) {
	tests := []struct {
		name string
		// end does what ends the lookups, after a few have failed, and
		// returns the endpoint the peer should then have ("" for none).
		end func(t *testing.T, dns *fakeDNS, dev *device.Device, p *device.Peer,
			stop func()) string
	}{
		{"name resolves", func(t *testing.T, dns *fakeDNS, _ *device.Device,
			_ *device.Peer, _ func()) string {
			dns.set(netip.MustParseAddrPort("127.0.0.1:51820"))
			return "127.0.0.1:51820"
		}},
		{"peer makes contact", func(t *testing.T, _ *fakeDNS, _ *device.Device,
			p *device.Peer, _ func()) string {
			// As the peer's first authenticated packet (or wg(8)) would.
			if err := p.SetEndpoint(netip.MustParseAddrPort("127.0.0.1:7")); err != nil {
				t.Fatal(err)
			}
			return "127.0.0.1:7"
		}},
		{"peer removed", func(t *testing.T, _ *fakeDNS, dev *device.Device,
			p *device.Peer, _ func()) string {
			if err := dev.RemovePeer(p.PublicKey()); err != nil {
				t.Fatal(err)
			}
			return ""
		}},
		{"shutdown", func(t *testing.T, _ *fakeDNS, _ *device.Device,
			_ *device.Peer, stop func()) string {
			stop()
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			log := newTestLogger(&logs)
			dev, p := newTestDevice(t, log)
			dns := &fakeDNS{}
			failed := []unresolved{{peer: "beta", public: p.PublicKey(),
				endpoint: "beta.example.net:51820", err: errNoHost}}
			stop := dns.resolver().retry(context.Background(), dev, failed, log)
			defer stop()

			eventually(t, "three lookups failed", func() bool { return dns.lookups() >= 3 })
			if got := problemOf(dev); !strings.HasPrefix(got, "no endpoint known: ") ||
				!strings.Contains(got, "no such host") {
				t.Errorf("problem while the name does not resolve = %q, want the DNS error",
					got)
			}
			want := tc.end(t, dns, dev, p, stop)
			eventually(t, "the lookups stopped", func() bool {
				n := dns.lookups()
				time.Sleep(20 * time.Millisecond) // five times the longest wait
				return dns.lookups() == n
			})
			if got := p.Endpoint(); got != want {
				t.Errorf("endpoint = %q, want %q", got, want)
			}
			if tc.name != "peer removed" && strings.Contains(problemOf(dev), "no such host") {
				t.Errorf("problem still %q after the lookups ended", problemOf(dev))
			}
			resolved := 0
			if tc.name == "name resolves" {
				resolved = 1
			}
			if n := logs.count("endpoint resolved", "address=127.0.0.1:51820"); n != resolved {
				t.Errorf("%d lines say the endpoint resolved, want %d", n, resolved)
			}
			if n := logs.count("level=WARN"); n != 0 {
				t.Errorf("%d warnings from the lookups after the first, want 0:\n%s", n,
					logs.String())
			}
		})
	}
}

// TestEndpointRetryShutdownMidLookup checks that stopping the daemon does
// not wait for a lookup in flight.
func TestEndpointRetryShutdownMidLookup(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dev, p := newTestDevice(t, log)
	dns := &fakeDNS{block: true}
	stop := dns.resolver().retry(context.Background(), dev,
		[]unresolved{{peer: "beta", public: p.PublicKey(), endpoint: "beta.example.net:1",
			err: errNoHost}}, log)
	eventually(t, "a lookup is in flight", func() bool { return dns.lookups() == 1 })
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("stop still waiting for the lookup after 5s")
	}
}

// TestResolveBackoff checks the waits between lookups: one second, doubled
// each time, at most a minute.
func TestResolveBackoff(t *testing.T) {
	r := systemResolver()
	var got []time.Duration
	for w := r.first; len(got) < 9; w = r.next(w) {
		got = append(got, w)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("waits = %v, want %v seconds", got, want)
		}
	}
}

// TestUpStopsOnSignalWhileStarting sends SIGHUP to the test process while
// runUp looks up a peer's endpoint, before it has created anything: runUp
// must take the signal (not die of it), return nil and leave nothing behind.
// (SIGHUP, because TestMain takes SIGINT and SIGTERM when run as root.)
func TestUpStopsOnSignalWhileStarting(t *testing.T) {
	keepGCPercent(t)
	dir := checkDir(t)
	cfg := filepath.Join(dir, "hoprd.toml")
	content := "[interface]\nname = \"hop0\"\nprivate_key_file = \"private.key\"\n" +
		"address = [\"100.64.0.1/24\"]\n\n[[peer]]\nname = \"beta\"\n" +
		"public_key = \"" + peerPubA + "\"\nendpoint = \"beta.example.net:51820\"\n" +
		"allowed_ips = [\"100.64.0.2/32\"]\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := func(ctx context.Context, _ string) (netip.AddrPort, error) {
		if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
			t.Error(err)
		}
		select {
		case <-ctx.Done():
			return netip.AddrPort{}, ctx.Err()
		case <-time.After(5 * time.Second):
			t.Error("SIGHUP did not end runUp's context")
			return netip.AddrPort{}, errNoHost
		}
	}
	g := &globalFlags{runDir: filepath.Join(dir, "run"), stateDir: filepath.Join(dir, "state")}
	f := &upFlags{config: cfg, logLevel: "error",
		resolver: &resolver{lookup: lookup, first: time.Second, max: time.Second}}
	if err := runUp(context.Background(), g, f); err != nil {
		t.Fatalf("runUp after SIGHUP: %v, want nil", err)
	}
	for _, d := range []string{g.runDir, g.stateDir} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a stop before start (%v)", d, err)
		}
	}
}
