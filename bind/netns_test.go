package bind

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
)

// inNetns runs fn with the calling thread in the named namespace.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	f, err := os.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			panic(err)
		}
	}()
	fn()
}

// ipCmd runs ip(8) with args and fails the test if it fails.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// Namespaces of the tests in this file: the bind under test runs in nsDUT,
// its remote peer in nsPeer.
const (
	nsPeer = "hbind-peer"
	nsDUT  = "hbind-dut"
)

// netnsPair makes nsPeer and nsDUT, joined by a veth pair: va in nsPeer, vb
// in nsDUT. It skips the test without root, except under CI, where these
// tests must run.
func netnsPair(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI runs the namespace tests as root")
		}
		t.Skip("needs root for network namespaces")
	}
	for _, ns := range []string{nsPeer, nsDUT} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		ipCmd(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	ipCmd(t, "-n", nsPeer, "link", "add", "va", "type", "veth", "peer", "name", "vb",
		"netns", nsDUT)
	ipCmd(t, "-n", nsPeer, "addr", "add", "192.0.2.1/24", "dev", "va")
	ipCmd(t, "-n", nsPeer, "addr", "add", "2001:db8::1/64", "dev", "va", "nodad")
	_ = exec.Command("ip", "netns", "exec", nsDUT, "sysctl", "-qw",
		"net.ipv6.conf.vb.keep_addr_on_down=1").Run()
	ipCmd(t, "-n", nsDUT, "addr", "add", "192.0.2.2/24", "dev", "vb")
	ipCmd(t, "-n", nsDUT, "addr", "add", "192.0.2.3/24", "dev", "vb")
	ipCmd(t, "-n", nsDUT, "addr", "add", "2001:db8::2/64", "dev", "vb", "nodad")
	ipCmd(t, "-n", nsDUT, "addr", "add", "2001:db8::3/64", "dev", "vb", "nodad")
	for _, ns := range []string{nsPeer, nsDUT} {
		ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	}
	ipCmd(t, "-n", nsPeer, "link", "set", "va", "up")
	ipCmd(t, "-n", nsDUT, "link", "set", "vb", "up")
	time.Sleep(300 * time.Millisecond)
}

// peerSocket opens a UDP socket in nsPeer.
func peerSocket(t *testing.T, network, addr string) *net.UDPConn {
	var c *net.UDPConn
	inNetns(t, nsPeer, func() {
		pc, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		c = pc.(*net.UDPConn)
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// readFrom reads up to n datagrams from c, waiting at most 2 s for each,
// and counts them by source.
func readFrom(t *testing.T, c *net.UDPConn, n int) map[netip.AddrPort]int {
	from := map[netip.AddrPort]int{}
	buf := make([]byte, 70000)
	for i := 0; i < n; i++ {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, ap, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Logf("peer read: %v after %d", err, i)
			break
		}
		from[ap]++
	}
	return from
}

// Receive on a secondary address, remove it, reply: the reply must fall
// back to a working source and reach the peer.
func TestStickySourceRemoved(t *testing.T) {
	netnsPair(t)
	for _, tc := range []struct{ fam, peer, victim, victimPfx, other string }{
		{"v4", "192.0.2.1", "192.0.2.3", "192.0.2.3/24", "192.0.2.2"},
		{"v6", "2001:db8::1", "2001:db8::3", "2001:db8::3/64", "2001:db8::2"},
	} {
		t.Run(tc.fam, func(t *testing.T) {
			b, fn, port := openInDUT(t, tc.fam)
			peer := peerSocket(t, "udp"+tc.fam[1:], net.JoinHostPort(tc.peer, "0"))
			dst := netip.AddrPortFrom(netip.MustParseAddr(tc.victim), port)
			if _, err := peer.WriteToUDPAddrPort([]byte("hello"), dst); err != nil {
				t.Fatal(err)
			}
			ep := receiveOne(t, b, fn)
			if ep.SrcToString() != tc.victim {
				t.Fatalf("endpoint source %q, want %s", ep.SrcToString(), tc.victim)
			}
			if err := b.Send([][]byte{[]byte("r1")}, ep); err != nil {
				t.Fatalf("send before removal: %v", err)
			}
			want := netip.AddrPortFrom(netip.MustParseAddr(tc.victim), port)
			if got := readFrom(t, peer, 1); got[want] != 1 {
				t.Fatalf("before removal: peer got %v, want one from %v", got, want)
			}
			ipCmd(t, "-n", nsDUT, "addr", "del", tc.victimPfx, "dev", "vb")
			bufs := [][]byte{make([]byte, 1400), make([]byte, 1400), make([]byte, 1400),
				make([]byte, 100)}
			if err := b.Send(bufs, ep); err != nil {
				t.Errorf("send after removal: %v", err)
			}
			if got := readFrom(t, peer, 4); total(got) != 4 {
				t.Errorf("after removal: peer got %v, want 4", got)
			}
			if ep.SrcIP().IsValid() {
				t.Errorf("source %s kept after removal", ep.SrcIP())
			}
			// Now the address comes back, the peer sends again: a fresh
			// endpoint with the source again.
			ipCmd(t, "-n", nsDUT, "addr", "add", tc.victimPfx, "dev", "vb", "nodad")
			time.Sleep(staleAfter + 200*time.Millisecond)
			if _, err := peer.WriteToUDPAddrPort([]byte("hello2"), dst); err != nil {
				t.Fatal(err)
			}
			ep2 := receiveOne(t, b, fn)
			if ep2 == ep || ep2.SrcToString() != tc.victim {
				t.Errorf("endpoint not renewed: %p (old %p), source %q", ep2, ep,
					ep2.SrcToString())
			}
		})
	}
}

// Interface down, then MTU too small for a GSO segment, then up again.
func TestLinkDownAndMTU(t *testing.T) {
	netnsPair(t)
	for _, tc := range []struct{ fam, peer, local string }{
		{"v4", "192.0.2.1", "192.0.2.2"},
		{"v6", "2001:db8::1", "2001:db8::2"},
	} {
		t.Run(tc.fam, func(t *testing.T) {
			ipCmd(t, "-n", nsDUT, "link", "set", "vb", "mtu", "1500")
			ipCmd(t, "-n", nsPeer, "link", "set", "va", "mtu", "1500")
			b, fn, port := openInDUT(t, tc.fam)
			peer := peerSocket(t, "udp"+tc.fam[1:], net.JoinHostPort(tc.peer, "0"))
			dst := netip.AddrPortFrom(netip.MustParseAddr(tc.local), port)
			if _, err := peer.WriteToUDPAddrPort([]byte("hello"), dst); err != nil {
				t.Fatal(err)
			}
			ep := receiveOne(t, b, fn)
			mk := func(n, size int) [][]byte {
				bb := make([][]byte, n)
				for i := range bb {
					bb[i] = make([]byte, size)
				}
				return bb
			}
			// MTU smaller than the segments: GSO must fall back.
			ipCmd(t, "-n", nsDUT, "link", "set", "vb", "mtu", "1280")
			err := b.Send(mk(20, 1452), ep)
			got := readFrom(t, peer, 20)
			if err != nil || total(got) != 20 {
				t.Errorf("mtu 1280, 20 x 1452 bytes: send error %v, peer got %v", err, got)
			}
			ipCmd(t, "-n", nsDUT, "link", "set", "vb", "mtu", "1500")
			// Link down.
			ipCmd(t, "-n", nsDUT, "link", "set", "vb", "down")
			if err := b.Send(mk(3, 500), ep); err == nil {
				t.Error("send with the link down: no error")
			}
			ipCmd(t, "-n", nsDUT, "link", "set", "vb", "up")
			if tc.fam == "v6" {
				// addresses need to come back: nodad was set, so they stay
				time.Sleep(500 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			err = b.Send(mk(3, 500), ep)
			if got = readFrom(t, peer, 3); err != nil || total(got) != 3 {
				t.Errorf("link up again: send error %v, peer got %v", err, got)
			}
		})
	}
}

// IPv6 disabled in the namespace: Open must still work, v4 must work.
func TestIPv6Disabled(t *testing.T) {
	netnsPair(t)
	out, err := exec.Command("ip", "netns", "exec", nsDUT, "sysctl", "-w",
		"net.ipv6.conf.all.disable_ipv6=1").CombinedOutput()
	if err != nil {
		t.Fatalf("disable IPv6: %v: %s", err, out)
	}
	b := New()
	var fns []conn.ReceiveFunc
	var port uint16
	inNetns(t, nsDUT, func() {
		fns, port, err = b.Open(0)
	})
	if err != nil {
		t.Fatalf("open with ipv6 disabled: %v", err)
	}
	defer b.Close()
	ep, _ := b.ParseEndpoint("[2001:db8::1]:9")
	if err := b.Send([][]byte{{1}}, ep); err == nil {
		t.Error("send over IPv6 with IPv6 disabled: no error")
	}
	peer := peerSocket(t, "udp4", "192.0.2.1:0")
	dst := netip.MustParseAddrPort("192.0.2.2:" + itoa(port))
	if _, err := peer.WriteToUDPAddrPort([]byte("x"), dst); err != nil {
		t.Fatal(err)
	}
	r := newRxBufs()
	tm := time.AfterFunc(3*time.Second, func() { b.Close() })
	k, err := fns[0](r.bufs, r.sizes, r.eps)
	tm.Stop()
	if err != nil || k != 1 {
		t.Fatalf("IPv4 receive with IPv6 disabled: %d datagrams, %v", k, err)
	}
	if err := b.Send([][]byte{[]byte("y")}, r.eps[0]); err != nil {
		t.Errorf("IPv4 reply: %v", err)
	}
	if got := readFrom(t, peer, 1); total(got) != 1 {
		t.Errorf("IPv4 reply: peer got %v", got)
	}
	_ = b.Close()
	inNetns(t, nsDUT, func() {
		fns, port, err = b.Open(0)
	})
	if err != nil || len(fns) == 0 {
		t.Errorf("reopen with IPv6 disabled: %d receive functions, %v", len(fns), err)
	}
}

// openInDUT opens a Bind in nsDUT and returns it, closed when the test
// ends, with its receive function for fam ("v4" or "v6") and its port.
func openInDUT(t *testing.T, fam string) (*Bind, conn.ReceiveFunc, uint16) {
	t.Helper()
	b := New()
	var (
		fns  []conn.ReceiveFunc
		port uint16
		err  error
	)
	inNetns(t, nsDUT, func() { fns, port, err = b.Open(0) })
	if err != nil {
		t.Fatalf("open in %s: %v", nsDUT, err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if fam == "v6" {
		return b, fns[1], port
	}
	return b, fns[0], port
}

// receiveOne waits up to 3 s for one datagram on fn and returns its
// endpoint.
func receiveOne(t *testing.T, b *Bind, fn conn.ReceiveFunc) *Endpoint {
	t.Helper()
	r := newRxBufs()
	tm := time.AfterFunc(3*time.Second, func() { _ = b.Close() })
	defer tm.Stop()
	k, err := fn(r.bufs, r.sizes, r.eps)
	if err != nil || k != 1 {
		t.Fatalf("receive: %d datagrams, %v", k, err)
	}
	return r.eps[0].(*Endpoint)
}

// total counts the datagrams of a readFrom result.
func total(from map[netip.AddrPort]int) int {
	n := 0
	for _, k := range from {
		n += k
	}
	return n
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
