package uapi

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/device"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// fakeRoutes records the routes a server adds and removes. Adding a
// prefix in failAdd, or removing one in failRemove, fails as the kernel
// can (a connected subnet of an underlay, say).
type fakeRoutes struct {
	mu         sync.Mutex
	routes     map[netip.Prefix]bool
	failAdd    map[netip.Prefix]bool
	failRemove map[netip.Prefix]bool
}

// errFakeRoute is the failure of a route in failAdd or failRemove.
var errFakeRoute = errors.New("fake route refused")

// AddRoute records a route to p, unless p is in failAdd.
func (f *fakeRoutes) AddRoute(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failAdd[p.Masked()] {
		return fmt.Errorf("add route %s: %w", p, errFakeRoute)
	}
	f.routes[p.Masked()] = true
	return nil
}

// RemoveRoute forgets the route to p, unless p is in failRemove.
func (f *fakeRoutes) RemoveRoute(p netip.Prefix) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failRemove[p.Masked()] {
		return fmt.Errorf("remove route %s: %w", p, errFakeRoute)
	}
	delete(f.routes, p.Masked())
	return nil
}

// fail makes adding the routes in add, and removing those in remove, fail
// from now on; nil lists make every route work again.
func (f *fakeRoutes) fail(add, remove []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAdd, f.failRemove = map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for _, s := range add {
		f.failAdd[netip.MustParsePrefix(s)] = true
	}
	for _, s := range remove {
		f.failRemove[netip.MustParsePrefix(s)] = true
	}
}

func (f *fakeRoutes) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for p := range f.routes {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// testNode is a device with a configuration socket in a temporary
// directory, on one side of an in-memory bind.
type testNode struct {
	dev    *device.Device
	tun    *tuntest.ChannelTUN
	srv    *Server
	routes *fakeRoutes
}

func newNode(t *testing.T, bind conn.Bind, key handshake.PrivateKey, name string) *testNode {
	t.Helper()
	n := &testNode{
		tun:    tuntest.NewChannelTUN(),
		routes: &fakeRoutes{routes: map[netip.Prefix]bool{}},
	}
	var err error
	n.dev, err = device.New(device.Config{PrivateKey: key, HopInterval: time.Second,
		TUN: n.tun.TUN(), Bind: bind, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.dev.Close)
	n.srv, err = Listen(Config{Dir: shortTempDir(t), Name: name, Device: n.dev,
		Routes: n.routes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.srv.Close() })
	return n
}

// shortTempDir returns a temporary directory with a path short enough for
// a unix socket.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "uapi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// newPublicKey returns the public key of a fresh private key.
func newPublicKey(t *testing.T) handshake.PublicKey {
	t.Helper()
	k := mustKey(t)
	return k.PublicKey()
}

func mustKey(t *testing.T) handshake.PrivateKey {
	t.Helper()
	k, err := handshake.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// client is one connection to a configuration socket.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, path string) *client {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{c: c, r: bufio.NewReader(c)}
}

// do sends one request and returns the reply's lines, without the blank
// line that ends it, and its errno.
func (cl *client) do(t *testing.T, req string) (map[string][]string, int) {
	t.Helper()
	if _, err := io.WriteString(cl.c, req); err != nil {
		t.Fatal(err)
	}
	kv := map[string][]string{}
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			t.Fatalf("read reply: %v (so far %v)", err, kv)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, "=")
		kv[k] = append(kv[k], v)
	}
	errno, err := strconv.Atoi(kv["errno"][0])
	if err != nil || len(kv["errno"]) != 1 {
		t.Fatalf("reply has errno %v", kv["errno"])
	}
	return kv, errno
}

// set sends a set request and fails t unless it succeeds.
func (cl *client) set(t *testing.T, body string) {
	t.Helper()
	if _, errno := cl.do(t, "set=1\n"+body+"\n"); errno != 0 {
		t.Fatalf("set %q: errno %d", body, errno)
	}
}

// getPeers parses a get reply into its peers, by public key.
func getPeers(kv string) map[string]map[string][]string {
	peers := map[string]map[string][]string{}
	var cur map[string][]string
	for _, line := range strings.Split(kv, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if k == keyPublicKey {
			cur = map[string][]string{}
			peers[v] = cur
			continue
		}
		if cur != nil {
			cur[k] = append(cur[k], v)
		}
	}
	return peers
}

// rawGet returns the get reply as text.
func (cl *client) rawGet(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(cl.c, "get=1\n\n"); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for {
		line, err := cl.r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\n" {
			return b.String()
		}
		b.WriteString(line)
	}
}

func hexOf(k [32]byte) string { return hex.EncodeToString(k[:]) }

// TestSetThenGet drives a device through the socket as wg-quick does: a
// device without a key gets a key, a port and peers, and get reports them.
func TestSetThenGet(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	n := newNode(t, binds[0], handshake.PrivateKey{}, "wg0")
	cl := dial(t, n.srv.Path())

	kv, errno := cl.do(t, "get=1\n\n")
	if errno != 0 || kv[keyPrivateKey] != nil {
		t.Fatalf("get of a keyless device: errno %d, private key shown: %t",
			errno, kv[keyPrivateKey] != nil)
	}

	key := mustKey(t)
	peerKey := newPublicKey(t)
	var psk handshake.PresharedKey
	copy(psk[:], "the preshared key of the peer...")
	cl.set(t, "private_key="+key.Hex()+"\nfwmark=51820\nreplace_peers=true\n"+
		"public_key="+peerKey.Hex()+"\npreshared_key="+hexOf(psk)+
		"\nendpoint=127.0.0.1:1\npersistent_keepalive_interval=25\n"+
		"replace_allowed_ips=true\nallowed_ip=100.64.0.2/32\nallowed_ip=fd7a:686f:7072::2/128\n")

	get := cl.rawGet(t)
	if !strings.Contains(get, "private_key="+key.Hex()+"\n") ||
		!strings.Contains(get, "fwmark=51820\n") || !strings.Contains(get, "listen_port=") {
		t.Errorf("interface section wrong:\n%s", redact(get))
	}
	p := getPeers(get)[peerKey.Hex()]
	want := map[string][]string{
		keyPresharedKey:                {hexOf(psk)},
		keyProtocolVersion:             {"1"},
		keyEndpoint:                    {"127.0.0.1:1"},
		keyPersistentKeepaliveInterval: {"25"},
		keyAllowedIP:                   {"100.64.0.2/32", "fd7a:686f:7072::2/128"},
		keyLastHandshakeTimeSec:        {"0"},
		keyLastHandshakeTimeNsec:       {"0"},
	}
	for k, v := range want {
		if !slices.Equal(p[k], v) {
			t.Errorf("peer %s = %v, want %v", k, p[k], v)
		}
	}
	if got := n.dev.PublicKey(); got != key.PublicKey() {
		t.Errorf("device public key %s, want %s", got, key.PublicKey())
	}
	if peer := n.dev.Peer(peerKey); peer == nil || peer.Protocol() != handshake.WireGuard {
		t.Error("the peer a set request adds must speak WireGuard")
	}
	if got := n.routes.list(); !slices.Equal(got,
		[]string{"100.64.0.2/32", "fd7a:686f:7072::2/128"}) {
		t.Errorf("routes %v", got)
	}
}

// TestPeerChanges runs the changes `wg set` makes to a peer and checks the
// device and the routes after each.
func TestPeerChanges(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	n := newNode(t, binds[0], mustKey(t), "wg1")
	cl := dial(t, n.srv.Path())
	hopKey := newPublicKey(t)
	if _, err := n.dev.AddPeer(device.PeerConfig{Name: "hop-peer", PublicKey: hopKey,
		Protocol:   handshake.Hop,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.9/32")}}); err != nil {
		t.Fatal(err)
	}
	n.routes.AddRoute(netip.MustParsePrefix("100.64.0.9/32"))
	wgKey := newPublicKey(t)
	pub := "public_key=" + wgKey.Hex() + "\n"

	steps := []struct {
		name   string
		body   string
		errno  syscall.Errno
		allow  []string // the WireGuard peer's allowed IPs after the step; nil: no peer
		routes []string
	}{
		{name: "add", body: pub + "allowed_ip=10.0.0.0/24\n",
			allow:  []string{"10.0.0.0/24"},
			routes: []string{"10.0.0.0/24", "100.64.0.9/32"}},
		{name: "add one more", body: pub + "allowed_ip=10.0.1.0/24\n",
			allow:  []string{"10.0.0.0/24", "10.0.1.0/24"},
			routes: []string{"10.0.0.0/24", "10.0.1.0/24", "100.64.0.9/32"}},
		{name: "remove one", body: pub + "allowed_ip=-10.0.0.0/24\n",
			allow:  []string{"10.0.1.0/24"},
			routes: []string{"10.0.1.0/24", "100.64.0.9/32"}},
		{name: "replace", body: pub + "replace_allowed_ips=true\nallowed_ip=10.0.2.0/24\n",
			allow:  []string{"10.0.2.0/24"},
			routes: []string{"10.0.2.0/24", "100.64.0.9/32"}},
		{name: "prefix of the hop peer", body: pub + "allowed_ip=100.64.0.9/32\n",
			errno: syscall.EEXIST, allow: []string{"10.0.2.0/24"},
			routes: []string{"10.0.2.0/24", "100.64.0.9/32"}},
		{name: "endpoint and keepalive", body: pub + "endpoint=127.0.0.1:1\n" +
			"persistent_keepalive_interval=0\n", allow: []string{"10.0.2.0/24"},
			routes: []string{"10.0.2.0/24", "100.64.0.9/32"}},
		{name: "update only of an unknown peer", body: "public_key=" +
			newPublicKey(t).Hex() + "\nupdate_only=true\nallowed_ip=10.9.0.0/16\n",
			allow: []string{"10.0.2.0/24"}, routes: []string{"10.0.2.0/24", "100.64.0.9/32"}},
		{name: "own key is ignored", body: "public_key=" + n.dev.PublicKey().Hex() +
			"\nallowed_ip=10.8.0.0/16\n", allow: []string{"10.0.2.0/24"},
			routes: []string{"10.0.2.0/24", "100.64.0.9/32"}},
		{name: "bad value changes nothing", body: pub + "allowed_ip=10.0.3.0/24\n" +
			"endpoint=nowhere\n", errno: syscall.EINVAL, allow: []string{"10.0.2.0/24"},
			routes: []string{"10.0.2.0/24", "100.64.0.9/32"}},
		{name: "remove", body: pub + "remove=true\n",
			routes: []string{"100.64.0.9/32"}},
		{name: "replace peers", body: "replace_peers=true\n" + pub + "allowed_ip=10.0.5.0/24\n",
			allow: []string{"10.0.5.0/24"}, routes: []string{"10.0.5.0/24"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			_, errno := cl.do(t, "set=1\n"+st.body+"\n")
			if want := -int(st.errno); errno != want {
				t.Fatalf("errno %d, want %d", errno, want)
			}
			p := n.dev.Peer(wgKey)
			switch {
			case st.allow == nil && p != nil:
				t.Fatal("the peer still exists")
			case st.allow != nil && p == nil:
				t.Fatal("the peer does not exist")
			case p != nil:
				var got []string
				for _, a := range p.AllowedIPs() {
					got = append(got, a.String())
				}
				if !slices.Equal(got, st.allow) {
					t.Fatalf("allowed IPs %v, want %v", got, st.allow)
				}
			}
			if got := n.routes.list(); !slices.Equal(got, st.routes) {
				t.Fatalf("routes %v, want %v", got, st.routes)
			}
		})
	}
	if n.dev.Peer(hopKey) != nil {
		t.Error("replace_peers left the hop peer")
	}
}

// TestStatusAgreesWithGet runs traffic between two devices, one with a hop
// peer and a WireGuard peer, and checks that status and get report the
// same peers, endpoints, allowed IPs, handshake times and byte counts.
func TestStatusAgreesWithGet(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	keyA, keyB := mustKey(t), mustKey(t)
	a := newNode(t, binds[0], keyA, "wga")
	b := newNode(t, binds[1], keyB, "wgb")
	addrA, addrB := netip.MustParseAddr("100.64.0.1"), netip.MustParseAddr("100.64.0.2")
	// A learns B through the socket (a WireGuard peer); B has A as a
	// WireGuard peer from its config; A also has an idle hop peer.
	dial(t, a.srv.Path()).set(t, "public_key="+keyB.PublicKey().Hex()+
		"\nendpoint=127.0.0.1:1\nallowed_ip=100.64.0.2/32\n")
	if _, err := b.dev.AddPeer(device.PeerConfig{Name: "a", PublicKey: keyA.PublicKey(),
		Protocol: handshake.WireGuard, Endpoint: netip.MustParseAddrPort("127.0.0.1:2"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.dev.AddPeer(device.PeerConfig{Name: "idle-hop", PublicKey: newPublicKey(t),
		Protocol:   handshake.Hop,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("100.64.0.3/32")},
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:1")}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		pkt := udpPacket(addrA, addrB, i)
		a.tun.Outbound <- pkt
		select {
		case <-b.tun.Inbound:
		case <-time.After(5 * time.Second):
			t.Fatal("no packet from a to b")
		}
		b.tun.Outbound <- udpPacket(addrB, addrA, i)
		select {
		case <-a.tun.Inbound:
		case <-time.After(5 * time.Second):
			t.Fatal("no packet from b to a")
		}
	}

	peers := getPeers(dial(t, a.srv.Path()).rawGet(t))
	st := a.dev.Status()
	if len(peers) != len(st.Peers) {
		t.Fatalf("get lists %d peers, status %d", len(peers), len(st.Peers))
	}
	for _, ps := range st.Peers {
		pub, err := handshake.ParsePublicKey(ps.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		g, ok := peers[pub.Hex()]
		if !ok {
			t.Fatalf("peer %s in status, not in get", ps.Name)
		}
		var allowed []string
		for _, a := range ps.AllowedIPs {
			allowed = append(allowed, a.String())
		}
		hsSec, hsNsec := "0", "0"
		if ps.LastHandshake != nil {
			hsSec = strconv.FormatInt(ps.LastHandshake.Unix(), 10)
			hsNsec = strconv.Itoa(ps.LastHandshake.Nanosecond())
		}
		checks := []struct{ key, status string }{
			{keyEndpoint, derefOr(ps.Endpoint, "")},
			{keyLastHandshakeTimeSec, hsSec},
			{keyLastHandshakeTimeNsec, hsNsec},
			{keyRxBytes, strconv.FormatUint(ps.RxBytes, 10)},
			{keyTxBytes, strconv.FormatUint(ps.TxBytes, 10)},
			{keyAllowedIP, strings.Join(allowed, ",")},
		}
		for _, c := range checks {
			if got := strings.Join(g[c.key], ","); got != c.status {
				t.Errorf("peer %s: get %s=%q, status says %q", ps.Name, c.key, got, c.status)
			}
		}
		if ps.Name != "idle-hop" && (ps.RxBytes == 0 || ps.LastHandshake == nil) {
			t.Errorf("peer %s shows no traffic", ps.Name)
		}
	}
}

func derefOr(s *string, def string) string {
	if s == nil {
		return def
	}
	return *s
}

// udpPacket builds a small IPv4/UDP packet.
func udpPacket(src, dst netip.Addr, seq int) []byte {
	b := make([]byte, 48)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	b[8], b[9] = 64, 17
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	binary.BigEndian.PutUint32(b[28:], uint32(seq))
	return b
}

// TestListenPort changes the port of a device on real UDP sockets.
func TestListenPort(t *testing.T) {
	n := newNode(t, bind.New(), mustKey(t), "wgp")
	free, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	port := free.LocalAddr().(*net.UDPAddr).Port
	free.Close()
	cl := dial(t, n.srv.Path())
	cl.set(t, "listen_port="+strconv.Itoa(port)+"\n")
	kv, _ := cl.do(t, "get=1\n\n")
	if !slices.Equal(kv[keyListenPort], []string{strconv.Itoa(port)}) {
		t.Fatalf("listen_port %v, want %d", kv[keyListenPort], port)
	}
	// A port another socket holds: the device keeps the one it has.
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.LocalAddr().(*net.UDPAddr).Port
	if _, errno := cl.do(t, fmt.Sprintf("set=1\nlisten_port=%d\n\n", busyPort)); errno !=
		-int(syscall.EADDRINUSE) {
		t.Fatalf("errno %d, want -EADDRINUSE", errno)
	}
	if got := n.dev.ListenPort(); int(got) != port {
		t.Fatalf("listen port %d after the failed change, want %d", got, port)
	}
}

// TestProtocolErrors checks the errno of bad requests, and that the
// connection survives a refused value but not a framing error.
func TestProtocolErrors(t *testing.T) {
	n := newNode(t, bindtest.NewChannelBinds()[0], mustKey(t), "wge")
	tests := []struct {
		name      string
		req       string
		errno     syscall.Errno
		keepsConn bool
	}{
		{name: "unknown key", req: "set=1\nfoo=bar\n\n", errno: syscall.EINVAL, keepsConn: true},
		{name: "bad key", req: "set=1\nprivate_key=00\n\n", errno: syscall.EINVAL,
			keepsConn: true},
		{name: "small-order public key", req: "set=1\npublic_key=" + hexSmallOrder + "\n\n",
			errno: syscall.EINVAL, keepsConn: true},
		{name: "multicast endpoint", req: "set=1\npublic_key=" + hexB +
			"\nendpoint=224.0.0.1:51820\n\n", errno: syscall.EINVAL, keepsConn: true},
		{name: "unknown operation", req: "put=1\n\n", errno: syscall.EPROTO},
		{name: "line too long", req: "set=1\n" + strings.Repeat("a", 300) + "\n\n",
			errno: syscall.EPROTO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := dial(t, n.srv.Path())
			if _, errno := cl.do(t, tt.req); errno != -int(tt.errno) {
				t.Fatalf("errno %d, want %d", errno, -int(tt.errno))
			}
			_, err := io.WriteString(cl.c, "get=1\n\n")
			if err == nil {
				_, err = cl.r.ReadString('\n')
			}
			if kept := err == nil; kept != tt.keepsConn {
				t.Fatalf("connection kept: %t, want %t (%v)", kept, tt.keepsConn, err)
			}
		})
	}
}

// TestSocketFile checks the socket's mode, the replacement of a stale
// socket, the refusal of a live one, and that Close removes only its own.
func TestSocketFile(t *testing.T) {
	dev, err := device.New(device.Config{TUN: tuntest.NewChannelTUN().TUN(),
		Bind: bindtest.NewChannelBinds()[0], Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dir := filepath.Join(shortTempDir(t), "wireguard")
	path := filepath.Join(dir, "wgs.sock")

	// A stale socket, as a killed daemon leaves it.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()

	srv, err := Listen(Config{Dir: dir, Name: "wgs", Device: dev})
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o755 {
		t.Errorf("directory mode %v, want 0755", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the socket only", len(entries))
	}
	_, err = Listen(Config{Dir: dir, Name: "wgs", Device: dev})
	if !errors.Is(err, ErrSocketInUse) {
		t.Errorf("second Listen: %v, want ErrSocketInUse", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left after Close: %v", err)
	}
	if _, err := Listen(Config{Dir: dir, Name: "../x", Device: dev}); err == nil {
		t.Error("Listen accepted a name with a slash")
	}
}

// TestCloseEndsClients checks that Close returns while a client keeps its
// connection open.
func TestCloseEndsClients(t *testing.T) {
	n := newNode(t, bindtest.NewChannelBinds()[0], mustKey(t), "wgc")
	cl := dial(t, n.srv.Path())
	cl.do(t, "get=1\n\n")
	done := make(chan error, 1)
	go func() { done <- n.srv.Close() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waits for an idle client")
	}
}

// redact removes key lines from a get reply, for failure messages.
func redact(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, keyPrivateKey) && !strings.HasPrefix(l, keyPresharedKey) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestSyncNoChangeLogsNothing sets a peer as "wg syncconf" does, again and
// again: only a set that changes something is logged.
func TestSyncNoChangeLogsNothing(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	n := newNode(t, binds[0], mustKey(t), "wgs")
	logs := &lockedBuffer{}
	srv, err := Listen(Config{Dir: shortTempDir(t), Name: "wgs", Device: n.dev,
		Routes: n.routes, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl := dial(t, srv.Path())
	pub := newPublicKey(t).Hex()
	var psk handshake.PresharedKey
	psk[0] = 1
	endpoint, keepalive, allowed := "127.0.0.1:2", "25", "10.0.7.0/24"
	set := func() {
		cl.set(t, "public_key="+pub+"\npreshared_key="+psk.Hex()+"\nendpoint="+endpoint+
			"\npersistent_keepalive_interval="+keepalive+
			"\nreplace_allowed_ips=true\nallowed_ip="+allowed+"\n")
	}
	set() // adds the peer
	for range 3 {
		set()
	}
	if got := logs.count("peer updated"); got != 0 {
		t.Errorf("%d \"peer updated\" lines for sets that changed nothing", got)
	}
	for i, change := range []func(){
		func() { allowed = "10.0.8.0/24" },
		func() { endpoint = "127.0.0.1:3" },
		func() { keepalive = "30" },
		func() { psk[0] = 2 },
	} {
		change()
		set()
		if got := logs.count("peer updated"); got != i+1 {
			t.Fatalf("change %d: %d \"peer updated\" lines, want %d", i, got, i+1)
		}
	}
}
