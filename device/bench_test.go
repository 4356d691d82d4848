package device

// Benchmarks of the engine's per-packet work, and the in-memory TUN and
// bind they run on. Unlike tuntest and bindtest, these fakes allocate
// nothing per packet, so the allocation figures here and the pins in
// alloc_test.go measure the engine alone.
//
//	memTUN A -> device A -> memBind A ==memLink==> memBind B -> device B -> memTUN B
//	memTUN A <- device A <- memBind A <==memLink== memBind B <- device B <- memTUN B

import (
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// memTUN is a TUN device in memory. Read hands out copies of one template
// packet, as many per call as the next value on reads asks for, each
// stamped with the next sequence number; Write counts the packets it is
// given, checks that their sequence numbers follow on, and keeps nothing.
type memTUN struct {
	pkt     []byte        // the packet every Read returns copies of
	reads   chan int      // each value lets one Read return that many packets
	sent    uint32        // sequence number of the next packet read
	written atomic.Uint64 // packets written so far
	reading atomic.Bool   // set by the first Read
	// disorder counts written packets whose sequence number is not one
	// past the previous one's: reordered, duplicated or lost. next is the
	// number expected; mu guards it.
	disorder atomic.Uint64
	mu       sync.Mutex
	next     uint32
	wrote    chan struct{} // a token after each Write; dropped when one is waiting
	events   chan wgtun.Event
	closed   chan struct{}
	once     sync.Once
}

func newMemTUN(pkt []byte) *memTUN {
	return &memTUN{
		pkt:    pkt,
		reads:  make(chan int, 1024),
		wrote:  make(chan struct{}, 1),
		events: make(chan wgtun.Event),
		closed: make(chan struct{}),
	}
}

// memSeqAt is where udpPacket keeps its sequence number.
const memSeqAt = 28

func (t *memTUN) File() *os.File { return nil }

func (t *memTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	t.reading.Store(true)
	select {
	case n := <-t.reads:
		n = min(n, len(bufs))
		for i := range n {
			sizes[i] = copy(bufs[i][offset:], t.pkt)
			binary.BigEndian.PutUint32(bufs[i][offset+memSeqAt:], t.sent)
			t.sent++
		}
		return n, nil
	case <-t.closed:
		return 0, os.ErrClosed
	}
}

func (t *memTUN) Write(bufs [][]byte, offset int) (int, error) {
	t.mu.Lock()
	for _, b := range bufs {
		if seq := binary.BigEndian.Uint32(b[offset+memSeqAt:]); seq != t.next {
			t.disorder.Add(1)
			t.next = seq
		}
		t.next++
	}
	t.mu.Unlock()
	t.written.Add(uint64(len(bufs)))
	select {
	case t.wrote <- struct{}{}:
	default:
	}
	return len(bufs), nil
}

func (t *memTUN) MTU() (int, error)          { return 1420, nil }
func (t *memTUN) Name() (string, error)      { return "mem0", nil }
func (t *memTUN) Events() <-chan wgtun.Event { return t.events }
func (t *memTUN) BatchSize() int             { return batchSize }

func (t *memTUN) Close() error {
	t.once.Do(func() {
		close(t.closed)
		close(t.events)
	})
	return nil
}

// waitWritten waits until n packets in all have been written, and reports
// whether they were within timeout.
func (t *memTUN) waitWritten(n uint64, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	return t.waitWrittenUntil(n, deadline.C)
}

// waitWrittenUntil waits until n packets in all have been written, and
// reports whether they were before deadline fired.
func (t *memTUN) waitWrittenUntil(n uint64, deadline <-chan time.Time) bool {
	for t.written.Load() < n {
		select {
		case <-t.wrote:
		case <-deadline:
			return false
		}
	}
	return true
}

// memSlotSize bounds a message memBind carries: a full-MTU transport
// message with room to spare.
const memSlotSize = 2048

// memSlot carries up to batchSize messages across a memLink.
type memSlot struct {
	bufs  [batchSize][memSlotSize]byte
	sizes [batchSize]int
	n     int
}

// memLink is one direction between two memBinds: full slots travel on
// full, and come back empty on free.
type memLink struct {
	full chan *memSlot
	free chan *memSlot
}

func newMemLink(slots int) *memLink {
	l := &memLink{full: make(chan *memSlot, slots), free: make(chan *memSlot, slots)}
	for range slots {
		l.free <- new(memSlot)
	}
	return l
}

// memEndpoint is the address one memBind gives the other end.
type memEndpoint struct {
	ap    netip.AddrPort
	bytes []byte
}

func newMemEndpoint(s string) *memEndpoint {
	ap := netip.MustParseAddrPort(s)
	b, _ := ap.MarshalBinary()
	return &memEndpoint{ap: ap, bytes: b}
}

func (e *memEndpoint) ClearSrc()           {}
func (e *memEndpoint) SrcToString() string { return "" }
func (e *memEndpoint) DstToString() string { return e.ap.String() }
func (e *memEndpoint) DstToBytes() []byte  { return e.bytes }
func (e *memEndpoint) DstIP() netip.Addr   { return e.ap.Addr() }
func (e *memEndpoint) SrcIP() netip.Addr   { return netip.Addr{} }

// memBind is one end of an in-memory UDP link. Send copies messages into
// slots and waits for a free slot rather than dropping; the other end's
// receive function hands them out. Every endpoint names the other end.
type memBind struct {
	remote  *memEndpoint
	tx, rx  *memLink
	discard atomic.Bool   // Send drops messages instead of passing them on
	reading atomic.Bool   // set by the first call of the receive function
	sent    atomic.Uint64 // messages given to Send
	closed  chan struct{}
	once    sync.Once
}

// newMemBinds returns the two ends of an in-memory link.
func newMemBinds() (a, b *memBind) {
	ab, ba := newMemLink(16), newMemLink(16)
	a = &memBind{remote: newMemEndpoint("192.0.2.2:51820"), tx: ab, rx: ba,
		closed: make(chan struct{})}
	b = &memBind{remote: newMemEndpoint("192.0.2.1:51820"), tx: ba, rx: ab,
		closed: make(chan struct{})}
	return a, b
}

func (m *memBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	return []conn.ReceiveFunc{m.receive}, port, nil
}

func (m *memBind) receive(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	m.reading.Store(true)
	var s *memSlot
	select {
	case s = <-m.rx.full:
	case <-m.closed:
		return 0, net.ErrClosed
	}
	n := min(s.n, len(packets))
	for i := range n {
		sizes[i] = copy(packets[i], s.bufs[i][:s.sizes[i]])
		eps[i] = m.remote
	}
	m.rx.free <- s
	return n, nil
}

func (m *memBind) Send(bufs [][]byte, _ conn.Endpoint) error {
	m.sent.Add(uint64(len(bufs)))
	if m.discard.Load() {
		return nil
	}
	for len(bufs) > 0 {
		var s *memSlot
		select {
		case s = <-m.tx.free:
		case <-m.closed:
			return net.ErrClosed
		}
		s.n = min(len(bufs), batchSize)
		for i, b := range bufs[:s.n] {
			if len(b) > memSlotSize {
				m.tx.free <- s
				return fmt.Errorf("mem bind: %d-byte message", len(b))
			}
			s.sizes[i] = copy(s.bufs[i][:], b)
		}
		bufs = bufs[s.n:]
		m.tx.full <- s
	}
	return nil
}

func (m *memBind) ParseEndpoint(string) (conn.Endpoint, error) { return m.remote, nil }
func (m *memBind) SetMark(uint32) error                        { return nil }
func (m *memBind) BatchSize() int                              { return batchSize }

func (m *memBind) Close() error {
	m.once.Do(func() { close(m.closed) })
	return nil
}

// memPair is two devices that know each other, joined by memBinds, each
// with a memTUN whose template packet is addressed to the other.
type memPair struct {
	a, b       *Device
	tunA, tunB *memTUN
	pa, pb     *Peer // A's view of B, B's view of A
}

// newMemPair starts a pair speaking proto with the given hop interval and
// size of template packets, and completes a handshake with one packet
// each way, so both sides hold a confirmed current session.
func newMemPair(tb testing.TB, proto *handshake.Protocol, hop time.Duration, size int) *memPair {
	tb.Helper()
	return newMemPairInline(tb, proto, hop, size, 0)
}

// newMemPairInline is newMemPair with both devices' Config.InlineMax.
func newMemPairInline(tb testing.TB, proto *handshake.Protocol, hop time.Duration, size int,
	inline int) *memPair {
	tb.Helper()
	bindA, bindB := newMemBinds()
	mp := &memPair{
		tunA: newMemTUN(udpPacket(addrA, addrB, 1, size)),
		tunB: newMemTUN(udpPacket(addrB, addrA, 1, size)),
	}
	keyA, keyB := mustKey(tb), mustKey(tb)
	var err error
	mp.a, err = New(Config{PrivateKey: keyA, HopInterval: hop, TUN: mp.tunA, Bind: bindA,
		Logger: testLogger(tb), InlineMax: inline})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(mp.a.Close)
	mp.b, err = New(Config{PrivateKey: keyB, HopInterval: hop, TUN: mp.tunB, Bind: bindB,
		Logger: testLogger(tb), InlineMax: inline})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(mp.b.Close)
	mp.pa, err = mp.a.AddPeer(PeerConfig{Name: "b", PublicKey: keyB.PublicKey(),
		Protocol: proto, Endpoint: bindA.remote.ap,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrB, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	mp.pb, err = mp.b.AddPeer(PeerConfig{Name: "a", PublicKey: keyA.PublicKey(),
		Protocol: proto, Endpoint: bindB.remote.ap,
		AllowedIPs: []netip.Prefix{netip.PrefixFrom(addrA, 32)}})
	if err != nil {
		tb.Fatal(err)
	}
	mp.tunA.reads <- 1
	if !mp.tunB.waitWritten(1, 5*time.Second) {
		tb.Fatal("handshake: no packet from A reached B")
	}
	mp.tunB.reads <- 1
	if !mp.tunA.waitWritten(1, 5*time.Second) {
		tb.Fatal("handshake: no packet from B reached A")
	}
	return mp
}

// drops returns every drop counted on either device.
func (mp *memPair) drops() uint64 {
	return mp.a.drops.total() + mp.b.drops.total() + mp.pa.drops.total() +
		mp.pb.drops.total()
}

// pushWindow is how many packets push lets travel between the TUNs at a
// time, as a TCP window would: enough to keep every stage busy, few
// enough that the buffers in flight (64 KiB each) stay in the tens of MiB.
const pushWindow = 1024

// push sends n packets from A's TUN to B's TUN in reads of benchBatch,
// keeping at most pushWindow in flight, and waits for all of them. It
// reports false if they did not all arrive within timeout.
func (mp *memPair) push(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	base := mp.tunB.written.Load()
	for sent := 0; sent < n; {
		if !mp.tunB.waitWrittenUntil(base+uint64(max(sent-pushWindow+benchBatch, 0)),
			deadline.C) {
			return false
		}
		k := min(benchBatch, n-sent)
		mp.tunA.reads <- k
		sent += k
	}
	return mp.tunB.waitWrittenUntil(base+uint64(n), deadline.C)
}

// currentSession returns p's current session.
func currentSession(tb testing.TB, p *Peer) *session {
	tb.Helper()
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.current == nil {
		tb.Fatal("peer has no current session")
	}
	return p.current
}

// Benchmark parameters: a TUN read of one 64 KiB TSO segment at MTU 1420
// yields about 46 packets; 64 stands for a busy read.
const (
	benchPacket = 1420
	benchBatch  = 64
)

// BenchmarkPipeline pushes 1420-byte packets through both devices of a
// memPair, A's TUN to B's TUN, in TUN reads of benchBatch packets with at
// most pushWindow in flight: route, counters and key, seal, send, receive,
// open, replay and source checks, TUN write, with every goroutine of both
// engines at work. One op is one packet; cpu-ns/op is the CPU time both
// engines spent on it, steadier than ns/op on a shared machine.
func BenchmarkPipeline(b *testing.B) {
	cases := []struct {
		name  string
		proto *handshake.Protocol
		hop   time.Duration
	}{
		{"hop-1s", handshake.Hop, time.Second},
		{"hop-50ms", handshake.Hop, 50 * time.Millisecond},
		{"wireguard", handshake.WireGuard, 0},
	}
	modes := []struct {
		name   string
		inline int
	}{{"workers", 1}, {"inline", math.MaxInt}}
	for _, tc := range cases {
		for _, m := range modes {
			b.Run(tc.name+"/"+m.name, func(b *testing.B) {
				benchPipeline(b, newMemPairInline(b, tc.proto, tc.hop, benchPacket, m.inline))
			})
		}
	}
}

// benchPipeline measures b.N packets from mp's A to its B.
func benchPipeline(b *testing.B, mp *memPair) {
	if !mp.push(4*pushWindow, time.Minute) { // fill the buffer pools
		b.Fatalf("packets lost; %d drops", mp.drops())
	}
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	if !mp.push(b.N, time.Minute) {
		b.Fatalf("packets lost; %d drops", mp.drops())
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	if n := mp.tunB.disorder.Load(); n != 0 {
		b.Fatalf("%d packets out of order", n)
	}
}

// cpuTime returns the CPU time this process has used, user and system, in
// nanoseconds. On a shared machine it varies less than the wall clock.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// routeCase is a device with peers owning one /32 each, and a TUN read's
// worth of packets addressed to them.
type routeCase struct {
	d     *Device
	bufs  []*packetBuf
	sizes []int
}

// newRouteCase starts a device with n peers, 100.64.0.0/10 host routes
// from 100.64.0.2 up, and a batch of benchBatch packets to the first
// peer, or each to a different peer when spread is set.
func newRouteCase(tb testing.TB, n int, spread bool) *routeCase {
	tb.Helper()
	bindA, _ := newMemBinds()
	tun := newMemTUN(nil)
	d, err := New(Config{PrivateKey: mustKey(tb), HopInterval: time.Second,
		TUN: tun, Bind: bindA, Logger: testLogger(tb)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.Close)
	waitReading(tb, tun, bindA)
	for i := range n {
		var pub handshake.PublicKey
		binary.LittleEndian.PutUint64(pub[:], uint64(i)+1)
		pub[31] = 0x40
		if _, err := d.AddPeer(PeerConfig{Name: fmt.Sprint("p", i), PublicKey: pub,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(peerAddr(i), 32)}}); err != nil {
			tb.Fatal(err)
		}
	}
	rc := &routeCase{d: d, bufs: make([]*packetBuf, benchBatch), sizes: make([]int, benchBatch)}
	for i := range rc.bufs {
		dst := peerAddr(0)
		if spread {
			dst = peerAddr(i * (n / benchBatch))
		}
		rc.bufs[i] = new(packetBuf)
		rc.sizes[i] = copy(rc.bufs[i][tunOffset:], udpPacket(addrA, dst, uint32(i), 100))
	}
	return rc
}

// waitReading waits until a new device's readers wait on tun and bind. A
// reader fills its batch of buffers before it first reads, and a pin that
// starts earlier would count those as its own, as it did on a loaded
// machine.
func waitReading(tb testing.TB, tun *memTUN, bind *memBind) {
	tb.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if tun.reading.Load() && bind.reading.Load() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	tb.Fatal("device readers did not start within 5 s")
}

// peerAddr is the overlay address of peer i in a routeCase.
func peerAddr(i int) netip.Addr {
	v := uint32(100)<<24 | uint32(64)<<16 + uint32(i) + 2
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// run routes the batch once into batch, which it then empties again
// without recycling the packet buffers, which it owns.
func (rc *routeCase) run(batch *outBatch, work []*packetBuf) {
	copy(work, rc.bufs)
	rc.d.route(batch, work, rc.sizes)
	for _, g := range batch.groups {
		clear(g.bufs)
		g.bufs = g.bufs[:0]
		g.sizes = g.sizes[:0]
	}
}

// BenchmarkRoute measures stage 1's routing of one TUN read: the
// longest-prefix match of each destination among 1 or 10,000 peers and
// the grouping by peer. One op is one packet.
func BenchmarkRoute(b *testing.B) {
	cases := []struct {
		name   string
		peers  int
		spread bool
	}{
		{"1-peer", 1, false},
		{"10k-peers/one-dst", 10000, false},
		{"10k-peers/64-dsts", 10000, true},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			rc := newRouteCase(b, tc.peers, tc.spread)
			work := make([]*packetBuf, benchBatch)
			route := func() {
				batch := outBatchPool.Get().(*outBatch)
				rc.run(batch, work)
				for _, g := range batch.groups {
					putOutGroup(g)
				}
				clear(batch.groups)
				batch.groups = batch.groups[:0]
				outBatchPool.Put(batch)
			}
			route() // fills the pools, which a short run would count per packet
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += benchBatch {
				route()
			}
		})
	}
}

// newSealGroup returns a group of benchBatch 1420-byte packets for p,
// bound to its current session, whose buffers the caller owns.
func newSealGroup(tb testing.TB, p *Peer) *outGroup {
	tb.Helper()
	g := &outGroup{peer: p}
	pkt := udpPacket(addrA, addrB, 7, benchPacket)
	for range benchBatch {
		buf := new(packetBuf)
		copy(buf[tunOffset:], pkt)
		g.bufs = append(g.bufs, buf)
		g.sizes = append(g.sizes, len(pkt))
	}
	g.msgs = make([][]byte, 0, benchBatch)
	return g
}

// rebind gives g fresh counters and a reference to the epoch key, as
// prepare does, and forgets its sealed messages.
func rebind(p *Peer, g *outGroup, s *session, now time.Time) {
	g.msgs = g.msgs[:0]
	p.mu.Lock()
	p.bindLocked(g, s, now)
	p.mu.Unlock()
}

// BenchmarkSeal measures stage 2 of the send path: padding, framing and
// sealing a group of 1420-byte packets in place. One op is one packet.
func BenchmarkSeal(b *testing.B) {
	mp := newMemPair(b, handshake.Hop, time.Second, 100)
	s := currentSession(b, mp.pa)
	g := newSealGroup(b, mp.pa)
	var nonce [12]byte
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBatch {
		rebind(mp.pa, g, s, time.Now())
		mp.a.seal(g, &nonce)
	}
}

// openCase holds a group of messages A sealed for B, and an inGroup of
// B's to open copies of them in.
type openCase struct {
	sealed [][]byte // the messages, as A sent them
	in     *inGroup
	recv   *session // B's session the messages belong to
}

func newOpenCase(tb testing.TB, mp *memPair) *openCase {
	tb.Helper()
	g := newSealGroup(tb, mp.pa)
	rebind(mp.pa, g, currentSession(tb, mp.pa), time.Now())
	var nonce [12]byte
	mp.a.seal(g, &nonce)
	oc := &openCase{recv: currentSession(tb, mp.pb), in: &inGroup{}}
	for _, m := range g.msgs {
		oc.sealed = append(oc.sealed, append([]byte(nil), m...))
		oc.in.bufs = append(oc.in.bufs, new(packetBuf))
		oc.in.sizes = append(oc.in.sizes, len(m))
		oc.in.eps = append(oc.in.eps, nil)
	}
	oc.in.sess = oc.recv
	return oc
}

// load copies the sealed messages into the group and takes a reference
// to their epoch key, as the receiver does.
func (oc *openCase) load(tb testing.TB) {
	for i, m := range oc.sealed {
		oc.in.sizes[i] = copy(oc.in.bufs[i][:], m)
	}
	var epoch uint32 // WireGuard's header names none: always 0
	if oc.recv.proto == handshake.Hop {
		epoch = binary.LittleEndian.Uint32(oc.sealed[0][8:12])
	}
	k, err := oc.recv.receiver.Key(epoch, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	oc.in.key = k
}

// BenchmarkOpen measures stage 2 of the receive path: opening a group of
// 1420-byte packets in place. Each op also copies one sealed message into
// its buffer (a few percent of the time). One op is one packet.
func BenchmarkOpen(b *testing.B) {
	mp := newMemPair(b, handshake.Hop, time.Second, 100)
	oc := newOpenCase(b, mp)
	var nonce [12]byte
	b.SetBytes(benchPacket)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += benchBatch {
		oc.load(b)
		open(oc.in, &nonce)
		if oc.in.sizes[0] < 0 {
			b.Fatal("message did not open")
		}
	}
}
