package bind

import (
	"bytes"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
)

func TestParseEndpoint(t *testing.T) {
	good := []struct {
		in, dst string // dst as DstToString gives it
	}{
		{"127.0.0.1:51820", "127.0.0.1:51820"},
		{"192.0.2.7:0", "192.0.2.7:0"},
		{"[::1]:1", "[::1]:1"},
		{"[2001:db8::1]:65535", "[2001:db8::1]:65535"},
		{"[fe80::1%1]:5", "[fe80::1%1]:5"},
		{"[fe80::1%lo]:5", "[fe80::1%lo]:5"},
		{"[::ffff:1.2.3.4]:9", "[::ffff:1.2.3.4]:9"},
	}
	b, std := New(), conn.NewStdNetBind()
	for _, tc := range good {
		ep, err := b.ParseEndpoint(tc.in)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", tc.in, err)
			continue
		}
		if got := ep.DstToString(); got != tc.dst {
			t.Errorf("ParseEndpoint(%q) = %s, want %s", tc.in, got, tc.dst)
		}
		if ep.SrcIP().IsValid() || ep.SrcToString() != "" {
			t.Errorf("ParseEndpoint(%q) has source %q", tc.in, ep.SrcToString())
		}
		sep, err := std.ParseEndpoint(tc.in)
		if err != nil {
			t.Fatalf("std ParseEndpoint(%q): %v", tc.in, err)
		}
		if !bytes.Equal(ep.DstToBytes(), sep.DstToBytes()) {
			t.Errorf("ParseEndpoint(%q): DstToBytes %x, StdNetEndpoint's %x", tc.in,
				ep.DstToBytes(), sep.DstToBytes())
		}
		if ep.DstIP() != sep.DstIP() {
			t.Errorf("ParseEndpoint(%q): DstIP %v, want %v", tc.in, ep.DstIP(), sep.DstIP())
		}
	}
	bad := []string{
		"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "localhost:80", ":80",
		"[::1]", "::1:80", "1.2.3.4%eth0:1", "[fe80::1%no-such-if0]:5", "[::1]:-1",
	}
	for _, in := range bad {
		ep, err := b.ParseEndpoint(in)
		if err == nil {
			t.Errorf("ParseEndpoint(%q) = %s, want an error", in, ep.DstToString())
		} else if !strings.HasPrefix(err.Error(), "bind: parse endpoint") {
			t.Errorf("ParseEndpoint(%q): error %q lacks the operation", in, err)
		}
	}
	// A zone names an interface: its index is the scope id.
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatalf("loopback interface: %v", err)
	}
	ep, _ := b.ParseEndpoint("[fe80::1%lo]:5")
	if got := ep.(*Endpoint).scope; got != uint32(lo.Index) {
		t.Errorf("scope of %%lo: %d, want %d", got, lo.Index)
	}
}

// Datagrams of one flow share one *Endpoint; other flows get others.
func TestIntern(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			rx := New()
			fns, port := openBind(t, rx)
			to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(fam.addr, port))
			c1, c2 := dial(t, fam.addr, to), dial(t, fam.addr, to)
			send(t, c1, 1)
			send(t, c1, 2)
			send(t, c2, 3)
			got := receiveN(t, rx, fns[fam.name], 3)
			if got[0].ep != got[1].ep {
				t.Errorf("one flow, two endpoints: %p %p", got[0].ep, got[1].ep)
			}
			if got[0].ep == got[2].ep {
				t.Errorf("two flows, one endpoint %s", got[0].ep.DstToString())
			}
			if s := got[2].ep.DstToString(); s != c2.LocalAddr().String() {
				t.Errorf("second flow from %s, want %s", s, c2.LocalAddr())
			}
			if src := got[0].ep.SrcIP(); src != fam.addr {
				t.Errorf("source %v, want %v", src, fam.addr)
			}
		})
	}
}

// dial returns a UDP socket on addr connected to to.
func dial(t *testing.T, addr netip.Addr, to *net.UDPAddr) *net.UDPConn {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)), to)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// send writes datagram i of 100 bytes to c.
func send(t *testing.T, c *net.UDPConn, i int) {
	t.Helper()
	if _, err := c.Write(payload(i, 100)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// The cache stays within its limit, and endpoints it dropped are left as
// they were: peers still hold them.
func TestInternBound(t *testing.T) {
	rx := &Bind{cacheLimit: 8}
	fns, port := openBind(t, rx)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, port))
	r := rx.socks.Load().rx4
	var eps []conn.Endpoint
	var names []string
	for i := range 20 {
		c := dial(t, loop4, to)
		send(t, c, i)
		ep := receiveN(t, rx, fns["v4"], 1)[0].ep
		eps, names = append(eps, ep), append(names, c.LocalAddr().String())
		if n := len(r.cache); n > 8 {
			t.Fatalf("cache holds %d endpoints, limit 8", n)
		}
	}
	for i, ep := range eps {
		if ep.DstToString() != names[i] || ep.SrcIP() != loop4 {
			t.Fatalf("endpoint %d changed: %s from %v, want %s from %v", i,
				ep.DstToString(), ep.SrcIP(), names[i], loop4)
		}
	}
}

// Thousands of sources do not grow the cache past its default limit.
func TestInternManySources(t *testing.T) {
	rx := New()
	fns, port := openBind(t, rx)
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, port))
	r := rx.socks.Load().rx4
	const sources, batch = 3000, 100
	seen := make(map[conn.Endpoint]bool)
	for i := 0; i < sources; i += batch {
		for j := i; j < i+batch; j++ {
			// Loopback answers for all of 127/8: every source its own address.
			from := netip.AddrFrom4([4]byte{127, 1, byte(j / 250), byte(j%250 + 1)})
			c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(from, 0)), to)
			if err != nil {
				t.Fatalf("dial from %v: %v", from, err)
			}
			_, err = c.Write(payload(j, 64))
			_ = c.Close()
			if err != nil {
				t.Fatalf("write: %v", err)
			}
		}
		for _, d := range receiveN(t, rx, fns["v4"], batch) {
			seen[d.ep] = true
		}
		if n := len(r.cache); n > defaultCacheLimit {
			t.Fatalf("cache holds %d endpoints, limit %d", n, defaultCacheLimit)
		}
	}
	if len(seen) != sources {
		t.Fatalf("%d endpoints for %d sources", len(seen), sources)
	}
}

// A reply through a received endpoint leaves from the address the request
// was sent to, even when routing would pick another.
func TestStickySource(t *testing.T) {
	b := New()
	fns, port := openBind(t, b)
	to := netip.MustParseAddr("127.0.0.2") // routing would answer from 127.0.0.1
	client, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, 0)))
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer client.Close()
	// An unconnected socket accepts a reply from any source.
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(to, port))
	if _, err := client.WriteToUDP(payload(1, 100), dst); err != nil {
		t.Fatalf("write: %v", err)
	}
	ep := receiveN(t, b, fns["v4"], 1)[0].ep
	if ep.SrcIP() != to || ep.SrcToString() != "127.0.0.2" {
		t.Fatalf("endpoint source %v, want %v", ep.SrcIP(), to)
	}
	if err := b.Send([][]byte{payload(2, 100)}, ep); err != nil {
		t.Fatalf("reply: %v", err)
	}
	buf := make([]byte, 200)
	_ = client.SetReadDeadline(time.Now().Add(recvTimeout))
	n, from, err := client.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("read reply: %v", err)
	}
	if want := netip.AddrPortFrom(to, port); from != want || index(buf[:n]) != 2 {
		t.Fatalf("reply %d from %v, want 2 from %v", index(buf[:n]), from, want)
	}
}

// A sticky source that is no longer local is cleared, and the datagrams go
// out from the address routing picks.
func TestStaleSource(t *testing.T) {
	cases := []struct {
		name    string
		fam     int // index in families
		src     string
		ifindex int32
	}{
		{"v4/address", 0, "192.0.2.1", 1},         // ENETUNREACH on Linux 6.18
		{"v4/interface", 0, "127.0.0.1", 1 << 20}, // ENODEV
		{"v6/address", 1, "2001:db8::1", 1},       // EINVAL
		{"v6/interface", 1, "::1", 1 << 20},       // ENODEV
	}
	for _, tc := range cases {
		fam := families[tc.fam]
		t.Run(tc.name, func(t *testing.T) {
			rx, tx := New(), New()
			fns, port := openBind(t, rx)
			_, txPort := openBind(t, tx)
			src := netip.MustParseAddr(tc.src)
			ep := newEndpoint(netip.AddrPortFrom(fam.addr, port), 0, src, tc.ifindex)
			want := payloads(repeat(4, datagramSize))
			if err := tx.Send(want, ep); err != nil {
				t.Fatalf("send: %v", err)
			}
			if ep.SrcIP().IsValid() {
				t.Fatalf("source %v kept", ep.SrcIP())
			}
			got := receiveN(t, rx, fns[fam.name], 4)
			checkDatagrams(t, got, want)
			from := netip.AddrPortFrom(fam.addr, txPort).String()
			if s := got[0].ep.DstToString(); s != from {
				t.Fatalf("from %s, want %s", s, from)
			}
		})
	}
}

// A cleared endpoint is not revived by the cache: a datagram of the flow
// staleAfter later gets a new endpoint with the source.
func TestInternReplacesCleared(t *testing.T) {
	rx := New()
	fns, port := openBind(t, rx)
	c := dial(t, loop4, net.UDPAddrFromAddrPort(netip.AddrPortFrom(loop4, port)))
	send(t, c, 1)
	old := receiveN(t, rx, fns["v4"], 1)[0].ep
	old.ClearSrc()
	// Right after a send cleared it, the flow keeps the cleared endpoint:
	// an address that receives but cannot send must not cost an endpoint
	// per datagram.
	send(t, c, 2)
	if ep := receiveN(t, rx, fns["v4"], 1)[0].ep; ep != old {
		t.Fatal("cleared endpoint replaced at once")
	}
	// staleAfter later, the next datagram brings a new endpoint.
	o := old.(*Endpoint)
	o.srcGone.Store(o.srcGone.Load() - int64(staleAfter))
	send(t, c, 3)
	ep := receiveN(t, rx, fns["v4"], 1)[0].ep
	if ep == old || ep.SrcIP() != loop4 {
		t.Fatalf("after ClearSrc: same endpoint %v, source %v", ep == old, ep.SrcIP())
	}
	if old.SrcIP().IsValid() {
		t.Fatalf("cleared endpoint got source %v back", old.SrcIP())
	}
	send(t, c, 4)
	if again := receiveN(t, rx, fns["v4"], 1)[0].ep; again != ep {
		t.Fatal("new endpoint not interned")
	}
}
