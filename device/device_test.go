package device

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"
)

// testPair is two devices joined by in-memory binds and TUNs:
//
//	tunA <-> device A (100.64.0.1) <-bind-> device B (100.64.0.2) <-> tunB
type testPair struct {
	a, b       *Device
	tunA, tunB *tuntest.ChannelTUN
	pa, pb     *Peer // A's view of B, B's view of A
}

var (
	addrA = netip.MustParseAddr("100.64.0.1")
	addrB = netip.MustParseAddr("100.64.0.2")
)

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(discard{}, nil))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func mustKey(t testing.TB) handshake.PrivateKey {
	t.Helper()
	k, err := handshake.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// newTestPair starts two devices that know each other, speaking proto with
// the given hop interval and timers.
// hsPending returns the index of p's initiation in flight, 0 if none.
func hsPending(p *Peer) uint32 {
	p.hsMu.Lock()
	defer p.hsMu.Unlock()
	return p.hsIndex
}

func newTestPair(
	t testing.TB,
	proto *handshake.Protocol,
	hop time.Duration,
	timers Timers,
) *testPair {
	t.Helper()
	return newTestPairHops(t, proto, hop, hop, timers)
}

// newTestPairHops is newTestPair with a hop interval for each side.
func newTestPairHops(
	t testing.TB,
	proto *handshake.Protocol,
	hopA, hopB time.Duration,
	timers Timers,
) *testPair {
	t.Helper()
	binds := bindtest.NewChannelBinds()
	tp := &testPair{tunA: tuntest.NewChannelTUN(), tunB: tuntest.NewChannelTUN()}
	keyA, keyB := mustKey(t), mustKey(t)
	var err error
	tp.a, err = New(Config{PrivateKey: keyA, HopInterval: hopA, TUN: tp.tunA.TUN(),
		Bind: binds[0], Logger: testLogger(t), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	tp.b, err = New(Config{PrivateKey: keyB, HopInterval: hopB, TUN: tp.tunB.TUN(),
		Bind: binds[1], Logger: testLogger(t), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, d := range []*Device{tp.a, tp.b} {
				js, _ := json.Marshal(d.Status())
				t.Logf("status: %s", js)
			}
		}
		tp.a.Close()
		tp.b.Close()
	})
	tp.pa, err = tp.a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(), Protocol: proto,
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:1"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	tp.pb, err = tp.b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(), Protocol: proto,
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:2"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// udpPacket builds an IPv4/UDP packet carrying seq (checksums are not
// checked by anything on this path).
func udpPacket(src, dst netip.Addr, seq uint32, size int) []byte {
	if size < 32 {
		size = 32
	}
	b := make([]byte, size)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], uint16(size))
	b[8] = 64
	b[9] = 17
	s4, d4 := src.As4(), dst.As4()
	copy(b[12:16], s4[:])
	copy(b[16:20], d4[:])
	binary.BigEndian.PutUint16(b[20:], 4000)
	binary.BigEndian.PutUint16(b[22:], 4001)
	binary.BigEndian.PutUint16(b[24:], uint16(size-20))
	binary.BigEndian.PutUint32(b[28:], seq)
	for i := 32; i < size; i++ {
		b[i] = byte(seq) + byte(i)
	}
	return b
}

// expectPacket waits for want on in.
func expectPacket(t testing.TB, in <-chan []byte, want []byte, what string) {
	t.Helper()
	select {
	case got := <-in:
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: got a different packet (%d bytes, want %d)", what, len(got), len(want))
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: no packet within 5s", what)
	}
}

func TestPingBothWays(t *testing.T) {
	for _, proto := range []*handshake.Protocol{handshake.Hop, handshake.WireGuard} {
		t.Run(proto.Name, func(t *testing.T) {
			tp := newTestPair(t, proto, time.Second, Timers{})
			for i := range 3 {
				p := udpPacket(addrA, addrB, uint32(i), 100+i)
				tp.tunA.Outbound <- p
				expectPacket(t, tp.tunB.Inbound, p, "A to B")
				q := udpPacket(addrB, addrA, uint32(i), 1400)
				tp.tunB.Outbound <- q
				expectPacket(t, tp.tunA.Inbound, q, "B to A")
			}
			if tp.pa.lastHandshake.Load() == 0 || tp.pb.lastHandshake.Load() == 0 {
				t.Error("no handshake recorded")
			}
			if tp.pa.txBytes.Load() == 0 || tp.pb.rxBytes.Load() == 0 {
				t.Error("byte counters did not move")
			}
		})
	}
}

// flow sends n packets from one side at the given pace and checks that all
// arrive, in order, on the other.
func flow(t *testing.T, from, to *tuntest.ChannelTUN, src, dst netip.Addr, n int,
	pace time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			from.Outbound <- udpPacket(src, dst, uint32(i), 200)
			time.Sleep(pace)
		}
	}()
	for i := range n {
		select {
		case got := <-to.Inbound:
			if seq := binary.BigEndian.Uint32(got[28:]); seq != uint32(i) {
				t.Fatalf("packet %d: got seq %d", i, seq)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("packet %d of %d did not arrive", i, n)
		}
	}
	<-done
}

func TestHopsLoseNothing(t *testing.T) {
	const hop = 20 * time.Millisecond
	tp := newTestPair(t, handshake.Hop, hop, Timers{})
	flow(t, tp.tunA, tp.tunB, addrA, addrB, 1, 0) // handshake
	before := tp.pa.Hops()
	start := time.Now()
	flow(t, tp.tunA, tp.tunB, addrA, addrB, 200, 2*time.Millisecond)
	flow(t, tp.tunB, tp.tunA, addrB, addrA, 200, 2*time.Millisecond)
	elapsed := time.Since(start)
	hops := tp.pa.Hops() - before
	if want := uint64(elapsed/hop) / 2; hops < want {
		t.Errorf("%d hops in %v at %v, want at least %d", hops, elapsed, hop, want)
	}
	st := tp.b.Status()
	if e := st.Peers[0].Epoch; e == nil || *e == 0 {
		t.Errorf("status epoch = %v, want > 0", e)
	}
}

func TestRekeyMakeBeforeBreak(t *testing.T) {
	timers := Timers{RekeyAfterTime: 300 * time.Millisecond, RejectAfterTime: 2 * time.Second,
		RekeyTimeout: 100 * time.Millisecond}
	tp := newTestPair(t, handshake.Hop, 50*time.Millisecond, timers)
	flow(t, tp.tunA, tp.tunB, addrA, addrB, 1, 0)
	first := tp.pa.lastHandshake.Load()
	flow(t, tp.tunA, tp.tunB, addrA, addrB, 300, 5*time.Millisecond)
	if tp.pa.lastHandshake.Load() == first {
		t.Fatal("no new handshake after RekeyAfterTime")
	}
	if d := tp.pb.drops.total() + tp.b.drops.total(); d != 0 {
		t.Errorf("receiver dropped %d packets across the rekey: %v", d, tp.pb.drops.snapshot())
	}
}

func TestSourceNotAllowed(t *testing.T) {
	tp := newTestPair(t, handshake.Hop, time.Second, Timers{})
	flow(t, tp.tunA, tp.tunB, addrA, addrB, 1, 0)
	spoofed := udpPacket(netip.MustParseAddr("100.64.0.99"), addrB, 7, 100)
	tp.tunA.Outbound <- spoofed
	good := udpPacket(addrA, addrB, 8, 100)
	tp.tunA.Outbound <- good
	expectPacket(t, tp.tunB.Inbound, good, "packet after the spoofed one")
	if n := tp.pb.drops[DropSourceNotAllowed].Load(); n != 1 {
		t.Errorf("source_not_allowed drops = %d, want 1", n)
	}
}

func TestNoRoute(t *testing.T) {
	tp := newTestPair(t, handshake.Hop, time.Second, Timers{})
	tp.tunA.Outbound <- udpPacket(addrA, netip.MustParseAddr("100.64.0.77"), 1, 100)
	good := udpPacket(addrA, addrB, 2, 100)
	tp.tunA.Outbound <- good
	expectPacket(t, tp.tunB.Inbound, good, "routed packet")
	if n := tp.a.drops[DropNoRoute].Load(); n != 1 {
		t.Errorf("no_route drops = %d, want 1", n)
	}
}

func TestPaddedLen(t *testing.T) {
	for _, c := range []struct{ n, mtu, want int }{
		{0, 1420, 0}, {1, 1420, 16}, {16, 1420, 16}, {17, 1420, 32},
		{1419, 1420, 1420}, {1420, 1420, 1420}, {1415, 1420, 1420}, {1500, 1420, 1500},
	} {
		if got := paddedLen(c.n, c.mtu); got != c.want {
			t.Errorf("paddedLen(%d, %d) = %d, want %d", c.n, c.mtu, got, c.want)
		}
	}
}

// TestCrossedInitiations starts both peers' handshakes at the same instant.
// Without a tie-break each side voids the other's initiation and nothing
// flows until a retry RekeyTimeout later; the test allows less than that.
func TestCrossedInitiations(t *testing.T) {
	for range 5 {
		tp := newTestPair(t, handshake.Hop, time.Second, Timers{})
		pa := udpPacket(addrA, addrB, 1, 100)
		pb := udpPacket(addrB, addrA, 1, 100)
		go func() { tp.tunA.Outbound <- pa }()
		go func() { tp.tunB.Outbound <- pb }()
		for _, c := range []struct {
			in   chan []byte
			want []byte
		}{{tp.tunB.Inbound, pa}, {tp.tunA.Inbound, pb}} {
			select {
			case got := <-c.in:
				if !bytes.Equal(got, c.want) {
					t.Fatal("wrong packet")
				}
			case <-time.After(RekeyTimeout - time.Second):
				t.Fatalf("no packet within %v: crossed initiations stalled",
					RekeyTimeout-time.Second)
			}
		}
		// The side that answered must not count its voided initiation as
		// still in flight: its retries would run on the old round's clock
		// and give up early.
		waitUntil(t, 2*time.Second, "no initiation left pending", func() bool {
			return hsPending(tp.pa) == 0 && hsPending(tp.pb) == 0
		})
		tp.a.Close()
		tp.b.Close()
	}
}

// lineCounter counts log lines that contain a substring.
type lineCounter struct {
	mu    sync.Mutex
	lines []string
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.lines = append(c.lines, string(p))
	c.mu.Unlock()
	return len(p), nil
}

func (c *lineCounter) count(sub string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, l := range c.lines {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// TestDropsSummarizedNotLogged floods a device with garbage and checks that
// the log gets one summary per interval, not a line per packet.
func TestDropsSummarizedNotLogged(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	logs := &lineCounter{}
	tunB := tuntest.NewChannelTUN()
	b, err := New(Config{PrivateKey: mustKey(t), TUN: tunB.TUN(), Bind: binds[1],
		Logger: slog.New(slog.NewTextHandler(logs, nil)), DropSummaryEvery: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ep, _ := binds[0].ParseEndpoint("127.0.0.1:1") // reaches binds[1]
	if _, _, err := binds[0].Open(0); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	garbage := [][]byte{{0xff, 0, 0, 0, 1, 2, 3}}
	for range n {
		if err := binds[0].Send(garbage, ep); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for b.drops[DropBadType].Load() < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := b.drops[DropBadType].Load(); got != n {
		t.Fatalf("bad_type drops = %d, want %d", got, n)
	}
	time.Sleep(500 * time.Millisecond)
	summaries := logs.count("packets dropped")
	if summaries < 1 || summaries > 4 {
		t.Errorf("%d summary lines for %d drops, want 1 to 4", summaries, n)
	}
	if total := len(logs.lines); total > summaries+2 {
		t.Errorf("%d log lines for %d drops: %q", total, n, logs.lines)
	}
}

// TestHopIntervalMismatchShown checks that peers hopping at different
// intervals, whose packets the receiver must drop, get a problem in status
// naming the likely cause rather than silent loss.
func TestHopIntervalMismatchShown(t *testing.T) {
	tp := newTestPairHops(t, handshake.Hop, 50*time.Millisecond, time.Second, Timers{})
	flow(t, tp.tunA, tp.tunB, addrA, addrB, 1, 0)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tp.tunA.Outbound <- udpPacket(addrA, addrB, 2, 100)
		select {
		case <-tp.tunB.Inbound:
		case <-time.After(50 * time.Millisecond):
		}
		if st := tp.b.Status(); strings.Contains(st.Peers[0].Problem, "hop_interval") {
			return
		}
	}
	t.Fatalf("no hop_interval problem in status; drops %v", tp.pb.drops.snapshot())
}

// TestPipelineOrder pushes batches of every size through both ways a batch
// can cross the engine, the crypto workers and the reading goroutine, and
// checks that every packet arrives once, intact and in order. Keys hop
// every second, which leaves a packet a second or more to arrive: with
// 20 ms hops the window is half a second, and under the race detector on
// a loaded machine packets waited longer than that in the queues and were
// dropped as epoch_out_of_window, as they should be.
func TestPipelineOrder(t *testing.T) {
	modes := []struct {
		name   string
		inline int
	}{{"workers", 1}, {"inline", math.MaxInt}}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			mp := newMemPairInline(t, handshake.Hop, time.Second, benchPacket, m.inline)
			sent := 0
			for size := 1; size <= batchSize; size += size/4 + 1 {
				for range 20 {
					mp.tunA.reads <- size
					sent += size
				}
			}
			if !mp.tunB.waitWritten(uint64(sent)+1, time.Minute) {
				t.Fatalf("%d of %d packets arrived; drops at B %v",
					mp.tunB.written.Load()-1, sent, mp.pb.drops.snapshot())
			}
			if n := mp.tunB.disorder.Load(); n != 0 {
				t.Errorf("%d packets out of order", n)
			}
			if n := mp.drops(); n != 0 {
				t.Errorf("%d drops", n)
			}
		})
	}
}

func TestSameEndpoint(t *testing.T) {
	b := bind.New()
	parse := func(s string) conn.Endpoint {
		ep, err := b.ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		return ep
	}
	a := parse("192.0.2.1:51820")
	for _, tc := range []struct {
		other conn.Endpoint
		want  bool
	}{
		{a, true},
		{parse("192.0.2.1:51820"), true},
		{parse("192.0.2.1:51821"), false},
		{parse("192.0.2.2:51820"), false},
		{parse("[2001:db8::1]:51820"), false},
	} {
		if got := sameEndpoint(a, tc.other); got != tc.want {
			t.Errorf("sameEndpoint(%s, %s) = %v, want %v", a.DstToString(),
				tc.other.DstToString(), got, tc.want)
		}
	}
}

// TestStagedBounded stages packets for more unreachable peers than the
// staging budget holds: each staged packet is a copy of its bytes, the
// budget caps them all, the rest are counted as drops, and removing the
// peers gives every byte back.
func TestStagedBounded(t *testing.T) {
	const (
		peers = 300
		size  = 1400
	)
	rc := newRouteCase(t, peers, false)
	d := rc.d
	now := time.Now()
	for i := range peers {
		p := peerNamed(t, d, fmt.Sprint("p", i))
		g := getOutGroup(p)
		for j := range queueStaged + 2 {
			b := getBuf()
			g.bufs = append(g.bufs, b)
			g.sizes = append(g.sizes, copy(b[tunOffset:],
				udpPacket(addrA, peerAddr(i), uint32(j), size)))
		}
		if p.prepare(g, now) {
			t.Fatalf("peer %d: group not staged without a session", i)
		}
	}
	var staged, dropped int64
	for i := range peers {
		p := peerNamed(t, d, fmt.Sprint("p", i))
		p.mu.RLock()
		if len(p.staged) > queueStaged {
			t.Errorf("peer %d: %d staged, want at most %d", i, len(p.staged), queueStaged)
		}
		for j, sp := range p.staged {
			if len(sp.data) != size || cap(sp.data) > 2*size {
				t.Fatalf("peer %d packet %d: %d bytes in %d", i, j, len(sp.data), cap(sp.data))
			}
			staged += int64(len(sp.data))
		}
		p.mu.RUnlock()
		dropped += int64(p.drops[DropStagedOverflow].Load())
	}
	if got := d.stagedBytes.Load(); got != staged || got > maxStagedBytes {
		t.Errorf("stagedBytes %d, staged %d, budget %d", got, staged, maxStagedBytes)
	}
	if want := int64(peers*(queueStaged+2)) - staged/size; dropped != want {
		t.Errorf("%d staged_overflow drops, want %d", dropped, want)
	}
	if staged < maxStagedBytes-size {
		t.Errorf("only %d bytes staged, budget %d", staged, maxStagedBytes)
	}
	for i := range peers {
		if err := d.RemovePeer(peerNamed(t, d, fmt.Sprint("p", i)).public); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.stagedBytes.Load(); got != 0 {
		t.Errorf("stagedBytes %d after removing every peer", got)
	}
}

// peerNamed returns d's peer called name.
func peerNamed(t *testing.T, d *Device, name string) *Peer {
	t.Helper()
	d.peersMu.RLock()
	defer d.peersMu.RUnlock()
	p := d.names[name]
	if p == nil {
		t.Fatalf("no peer %q", name)
	}
	return p
}

// The inline path takes every batch on two cores or fewer and only small
// ones on more, as GOMAXPROCS says, unless the config chooses.
func TestInlineMaxDefault(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		procs, config, want int
	}{
		{1, 0, math.MaxInt},
		{2, 0, math.MaxInt},
		{3, 0, inlineMax},
		{16, 0, inlineMax},
		{2, 1, 1},
		{16, 64, 64},
	} {
		runtime.GOMAXPROCS(tc.procs)
		mb, _ := newMemBinds()
		d, err := New(Config{PrivateKey: mustKey(t), TUN: newMemTUN(nil), Bind: mb,
			Logger: testLogger(t), InlineMax: tc.config})
		if err != nil {
			t.Fatal(err)
		}
		if d.inlineMax != tc.want {
			t.Errorf("GOMAXPROCS %d, InlineMax %d: inlineMax %d, want %d", tc.procs,
				tc.config, d.inlineMax, tc.want)
		}
		d.Close()
	}
}

// TestInstallInitiatedKeeps checks which session stays to receive on when
// a handshake we initiated completes while we hold one we responded to:
// that one when the peer may be sending on it (nothing came before it, or a
// message arrived on it), else the old current, which the peer then still
// uses.
func TestInstallInitiatedKeeps(t *testing.T) {
	rc := newRouteCase(t, 1, false)
	p := peerNamed(t, rc.d, "p0")
	next := uint32(100)
	mk := func(initiator bool) *session {
		next++
		s := newSession(p, &handshake.Session{LocalIndex: next, RemoteIndex: next,
			Initiator: initiator, Protocol: handshake.Hop}, time.Now(), time.Second)
		rc.d.indices.bind(next, s)
		return s
	}
	for _, tc := range []struct {
		name                  string
		current, nextUsed     bool
		keepNext, keepCurrent bool
	}{
		{"no current", false, false, true, false},
		{"current, next unused", true, false, false, true},
		{"current, next used", true, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cur *session
			if tc.current {
				cur = mk(true)
			}
			responded := mk(false)
			if tc.nextUsed {
				responded.received.Store(true)
			}
			p.mu.Lock()
			p.current, p.previous, p.next = cur, nil, responded
			p.mu.Unlock()
			initiated := mk(true)
			p.installInitiated(initiated)
			p.mu.RLock()
			gotCur, gotPrev, gotNext := p.current, p.previous, p.next
			p.mu.RUnlock()
			want := cur
			if tc.keepNext {
				want = responded
			}
			if gotCur != initiated || gotPrev != want || gotNext != nil {
				t.Fatalf("current %p previous %p next %p; want %p, %p, nil",
					gotCur, gotPrev, gotNext, initiated, want)
			}
			gone := responded
			if tc.keepNext {
				gone = cur
			}
			if gone != nil && rc.d.indices.lookup(gone.localIndex).sess != nil {
				t.Error("the session let go still has its index")
			}
		})
	}
}

// TestPresharedKeyMismatchShown gives the two sides different preshared
// keys: the initiator's handshakes then fail at the response, and its
// status must say so on the peer, not "no handshake response".
func TestPresharedKeyMismatchShown(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	tunA, tunB := tuntest.NewChannelTUN(), tuntest.NewChannelTUN()
	keyA, keyB := mustKey(t), mustKey(t)
	timers := Timers{RekeyTimeout: 200 * time.Millisecond, RekeyAttemptTime: time.Second}
	a, err := New(Config{PrivateKey: keyA, TUN: tunA.TUN(), Bind: binds[0],
		Logger: testLogger(t), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(Config{PrivateKey: keyB, TUN: tunB.TUN(), Bind: binds[1],
		Logger: testLogger(t), Timers: timers})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pa, err := a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(),
		Protocol: handshake.Hop, PresharedKey: handshake.PresharedKey{1},
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:1"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(),
		Protocol: handshake.Hop, PresharedKey: handshake.PresharedKey{2},
		Endpoint:   netip.MustParseAddrPort("127.0.0.1:2"),
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}}); err != nil {
		t.Fatal(err)
	}
	tunA.Outbound <- udpPacket(addrA, addrB, 1, 100)
	// Past RekeyAttemptTime, so that the round of attempts has given up.
	waitUntil(t, 5*time.Second, "the peer's problem", func() bool {
		return pa.drops[DropHandshakeRejected].Load() > 1 &&
			strings.Contains(peerProblem(a, "b"), "preshared key")
	})
	time.Sleep(timers.RekeyAttemptTime + timers.RekeyTimeout)
	if got := peerProblem(a, "b"); !strings.Contains(got, "preshared key") {
		t.Fatalf("problem after giving up = %q, want the preshared key named", got)
	}
	if n := a.Status().Drops["handshake_rejected"]; n != 0 {
		t.Errorf("%d rejected responses counted on the interface, not the peer", n)
	}
}

// peerProblem returns the problem d's status shows for its peer name.
func peerProblem(d *Device, name string) string {
	for _, ps := range d.Status().Peers {
		if ps.Name == name {
			return ps.Problem
		}
	}
	return ""
}

// TestResolveEndpointUnmapped: a name that resolves to an IPv4 address
// gives the 4-byte form, as a literal does, not the IPv4-mapped IPv6 one
// that would show in status and fail the endpoint checks.
func TestResolveEndpointUnmapped(t *testing.T) {
	for _, s := range []string{"localhost:51820", "127.0.0.1:51820"} {
		ap, err := ResolveEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		if a := ap.Addr(); a.Is4In6() || (a.Is4() && ap.String() != "127.0.0.1:51820") {
			t.Errorf("ResolveEndpoint(%q) = %v, want 127.0.0.1:51820", s, ap)
		}
	}
}
