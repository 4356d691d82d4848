package uapi

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// peerState sums up what a set request can change in a peer, for
// comparisons.
func peerState(p *device.Peer) string {
	psk := p.PresharedKey()
	defer psk.Zero()
	return fmt.Sprintf("endpoint=%s keepalive=%s psk=%s allowed=%v", p.Endpoint(),
		p.PersistentKeepalive(), psk.Hex(), p.AllowedIPs())
}

// TestRefusedPeerSectionChangesNothing sends sections that fail at each
// step that can fail (a prefix another peer holds, with and without
// replace_allowed_ips; a route that cannot be added or removed; an
// endpoint the bind refuses; a remove whose route cannot be removed) and
// checks that each leaves the peer, and the routes, as they were, however
// often it is sent.
func TestRefusedPeerSectionChangesNothing(t *testing.T) {
	n := newNode(t, bind.New(), mustKey(t), "wgr")
	cl := dial(t, n.srv.Path())
	wgKey := newPublicKey(t)
	pub := "public_key=" + wgKey.Hex() + "\n"
	cl.set(t, pub+"endpoint=127.0.0.1:1\nallowed_ip=10.0.0.0/24\nallowed_ip=10.0.1.0/24\n")
	cl.set(t, "public_key="+newPublicKey(t).Hex()+"\nallowed_ip=10.1.0.0/24\n")
	p := n.dev.Peer(wgKey)
	before := peerState(p)
	routes := n.routes.list()

	var psk handshake.PresharedKey
	psk[0] = 7
	// The changes that would be made, were it not for the failing line.
	others := "preshared_key=" + psk.Hex() + "\nendpoint=198.51.100.99:4444\n" +
		"persistent_keepalive_interval=7\n"
	steps := []struct {
		name                string
		body                string
		failAdd, failRemove []string
		errno               syscall.Errno
	}{
		{name: "prefix of another peer", errno: syscall.EEXIST,
			body: pub + others + "allowed_ip=10.0.2.0/24\nallowed_ip=10.1.0.0/24\n"},
		{name: "replace with a prefix of another peer", errno: syscall.EEXIST,
			body: pub + others + "replace_allowed_ips=true\nallowed_ip=10.1.0.0/24\n"},
		{name: "route that cannot be added", errno: syscall.EIO,
			failAdd: []string{"192.0.2.0/30"},
			body: pub + others + "replace_allowed_ips=true\nallowed_ip=10.0.0.0/24\n" +
				"allowed_ip=10.5.0.0/24\nallowed_ip=192.0.2.0/30\n"},
		{name: "route that cannot be removed", errno: syscall.EIO,
			failRemove: []string{"10.0.1.0/24"},
			body: pub + others + "replace_allowed_ips=true\nallowed_ip=10.0.0.0/24\n" +
				"allowed_ip=10.5.0.0/24\n"},
		{name: "endpoint the bind refuses", errno: syscall.EIO,
			body: pub + "allowed_ip=-10.0.0.0/24\nallowed_ip=10.5.0.0/24\n" +
				"endpoint=[fe80::1%nosuchif0]:51820\npersistent_keepalive_interval=7\n"},
		// Endpoints the config file refuses: EINVAL, as WireGuard's uapi
		// answers an invalid value, and the section's other lines unapplied.
		{name: "multicast endpoint", errno: syscall.EINVAL,
			body: pub + others + "allowed_ip=10.5.0.0/24\nendpoint=224.0.0.1:51820\n"},
		{name: "broadcast endpoint", errno: syscall.EINVAL,
			body: pub + others + "allowed_ip=10.5.0.0/24\nendpoint=255.255.255.255:51820\n"},
		{name: "IPv4-mapped endpoint", errno: syscall.EINVAL,
			body: pub + others + "allowed_ip=10.5.0.0/24\nendpoint=[::ffff:192.0.2.2]:51820\n"},
		{name: "remove whose route cannot be removed", errno: syscall.EIO,
			failRemove: []string{"10.0.1.0/24"}, body: pub + "remove=true\n"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			n.routes.fail(st.failAdd, st.failRemove)
			defer n.routes.fail(nil, nil)
			for try := range 2 {
				if _, errno := cl.do(t, "set=1\n"+st.body+"\n"); errno != -int(st.errno) {
					t.Fatalf("try %d: errno %d, want %d", try, errno, -int(st.errno))
				}
				if n.dev.Peer(wgKey) != p {
					t.Fatalf("try %d: the peer is gone or replaced", try)
				}
				if got := peerState(p); got != before {
					t.Fatalf("try %d: peer changed:\n%s\nwas\n%s", try, got, before)
				}
				if got := n.routes.list(); !slices.Equal(got, routes) {
					t.Fatalf("try %d: routes %v, were %v", try, got, routes)
				}
			}
		})
	}
	cl.set(t, pub+"remove=true\n")
	if got := n.routes.list(); !slices.Equal(got, []string{"10.1.0.0/24"}) {
		t.Errorf("routes %v after the remove", got)
	}
}

// TestFailedRouteAddsNoPeer sends a new peer one of whose routes cannot be
// added: no peer is created, no route stays, the peer is not contacted,
// and the same request fails again. Its prefixes are then free.
func TestFailedRouteAddsNoPeer(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	n := newNode(t, binds[0], mustKey(t), "wga")
	// The other bind's receiver sees whatever the device sends to
	// 127.0.0.1:1, the peer's endpoint.
	fns, _, err := binds[1].Open(0)
	if err != nil {
		t.Fatal(err)
	}
	defer binds[1].Close()
	sent := make(chan struct{}, 1)
	go func() {
		bufs, sizes := [][]byte{make([]byte, 2048)}, make([]int, 1)
		if _, err := fns[0](bufs, sizes, make([]conn.Endpoint, 1)); err == nil {
			sent <- struct{}{}
		}
	}()

	cl := dial(t, n.srv.Path())
	n.routes.fail([]string{"192.0.2.0/30"}, nil)
	key := newPublicKey(t)
	req := "set=1\npublic_key=" + key.Hex() + "\nendpoint=127.0.0.1:1\n" +
		"persistent_keepalive_interval=25\nallowed_ip=10.3.0.0/24\nallowed_ip=192.0.2.0/30\n\n"
	for try := range 2 {
		if _, errno := cl.do(t, req); errno != -int(syscall.EIO) {
			t.Fatalf("try %d: errno %d, want -EIO", try, errno)
		}
		if n.dev.Peer(key) != nil {
			t.Fatalf("try %d: the peer was added", try)
		}
		if got := n.routes.list(); len(got) != 0 {
			t.Fatalf("try %d: routes %v left", try, got)
		}
	}
	select {
	case <-sent:
		t.Error("the peer of a refused request was contacted")
	case <-time.After(200 * time.Millisecond):
	}
	other := newPublicKey(t)
	cl.set(t, "public_key="+other.Hex()+"\nallowed_ip=10.3.0.0/24\n")
	if p := n.dev.Peer(other); p == nil || !slices.Equal(p.AllowedIPs(),
		[]netip.Prefix{netip.MustParsePrefix("10.3.0.0/24")}) {
		t.Fatal("the prefix of the refused peer is not free")
	}
}

// TestStaleStagingRemoved leaves the staging directories a killed daemon
// leaves, with and without a socket, among entries that are not such
// directories or not this interface's, and checks that Listen removes
// those and only those.
func TestStaleStagingRemoved(t *testing.T) {
	dev, err := device.New(device.Config{TUN: tuntest.NewChannelTUN().TUN(),
		Bind: bindtest.NewChannelBinds()[0], Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	dir := shortTempDir(t)
	mkdir := func(name string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A socket no one listens on any more, as a SIGKILL leaves it.
	deadSocket := func(path string) {
		t.Helper()
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
	}
	deadSocket(filepath.Join(mkdir(".wgt.123456"), stagedSocket))
	mkdir(".wgt.42") // killed before it bound its socket
	stale := []string{".wgt.123456", ".wgt.42"}

	keep := []string{".wgt.0.99", ".wgt.abc", ".wgt.", ".wgu.77", "wgt.55"}
	for _, name := range keep {
		mkdir(name)
	}
	if err := os.WriteFile(filepath.Join(dir, ".wgt.88"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(mkdir("target"), filepath.Join(dir, ".wgt.89")); err != nil {
		t.Fatal(err)
	}
	// A server of the same name that is starting now: its socket answers.
	live, err := net.ListenUnix("unix", &net.UnixAddr{
		Name: filepath.Join(mkdir(".wgt.31337"), stagedSocket), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	keep = append(keep, ".wgt.88", ".wgt.89", "target", ".wgt.31337")
	if os.Geteuid() == 0 {
		// Another user's directory is not ours to remove.
		if err := os.Chown(mkdir(".wgt.7"), 12345, 12345); err != nil {
			t.Fatal(err)
		}
		keep = append(keep, ".wgt.7")
	}

	srv, err := Listen(Config{Dir: dir, Name: "wgt", Device: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := append(slices.Clone(keep), "wgt.sock")
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %s\nwant %s (%s removed)", strings.Join(got, " "),
			strings.Join(want, " "), strings.Join(stale, " "))
	}
}
