package device

// The inbound pipeline, in the order a packet travels:
//
//  1. receive (one goroutine per UDP receive function) reads a batch from
//     the bind and sorts it by message type. A copy of each handshake
//     message of its type's exact length goes to the handshake worker.
//     Transport messages are looked up by receiver index; consecutive
//     messages of one session and epoch form a group, whose key
//     the receiver fetches from the session's window (never by trial: the
//     header names the epoch). The batch goes to this receiver's writer and
//     each group to decryptQueue, in that order. A batch of at most
//     Device.inlineMax messages with nothing queued ahead of it skips
//     stages 2 and 3: the receiver opens and delivers it itself
//     (deliverInline).
//  2. decryptWorker (GOMAXPROCS goroutines, shared with nothing else) opens
//     every message of a group in place, then unlocks its done mutex.
//  3. writeSequential (one goroutine per receive function) waits on each
//     group in order, checks the replay window and that each inner source
//     address belongs to the sending peer, updates the peer's endpoint and
//     timers, and writes the packets to the TUN.

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/hoprd/hoprd/device/ratchet"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
)

// inGroup is a run of transport messages of one session and epoch.
type inGroup struct {
	done  sync.Mutex // held until a worker has opened the group
	sess  *session
	key   *ratchet.Key
	epoch uint32    // the epoch every message of the group names
	at    time.Time // when the batch of its first message was read
	bufs  []*packetBuf
	sizes []int // message lengths; the worker sets plaintext lengths, -1 if bad
	eps   []conn.Endpoint
}

// inBatch is the groups of one bind read, in arrival order.
type inBatch struct {
	groups []*inGroup
}

var inGroupPool = sync.Pool{New: func() any {
	return &inGroup{
		bufs:  make([]*packetBuf, 0, batchSize),
		sizes: make([]int, 0, batchSize),
		eps:   make([]conn.Endpoint, 0, batchSize),
	}
}}

func putInGroup(g *inGroup) {
	for i, b := range g.bufs {
		if b != nil {
			putBuf(b)
		}
		g.bufs[i] = nil
	}
	clear(g.eps)
	*g = inGroup{bufs: g.bufs[:0], sizes: g.sizes[:0], eps: g.eps[:0]}
	inGroupPool.Put(g)
}

// hsMessage is a handshake message waiting for the handshake worker: a
// copy, so that the queue holds a few hundred bytes per message, not a
// packet buffer of 64 KiB that anyone could fill it with.
type hsMessage struct {
	buf [handshake.MessageInitiationSize]byte // the largest handshake message
	n   int
	ep  conn.Endpoint
}

// receive is stage 1 for one receive function.
func (d *Device) receive(fn conn.ReceiveFunc, out chan<- *inBatch) {
	defer close(out)
	bs := d.bind.BatchSize()
	bufs := make([]*packetBuf, bs)
	views := make([][]byte, bs)
	sizes := make([]int, bs)
	eps := make([]conn.Endpoint, bs)
	var nonce [12]byte // for deliverInline
	inline := make([][]byte, 0, bs)
	for {
		for i := range bufs {
			if bufs[i] == nil {
				bufs[i] = getBuf()
			}
			views[i] = bufs[i][:]
		}
		n, err := fn(views, sizes, eps)
		if err != nil {
			if d.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Debug("receive", "err", err)
			continue
		}
		now := time.Now()
		var batch *inBatch
		for i := range n {
			if d.sortMessage(&batch, bufs[i], sizes[i], eps[i], now) {
				bufs[i] = nil
			}
		}
		clear(eps[:n])
		if batch == nil || d.deliverInline(batch, &nonce, &inline) {
			continue
		}
		for _, g := range batch.groups {
			g.done.Lock()
		}
		d.inPending.Add(1)
		select {
		case out <- batch:
		case <-d.closed:
			return
		}
		for _, g := range batch.groups {
			select {
			case d.decryptQueue <- g:
			case <-d.closed:
				return
			}
		}
	}
}

var inBatchPool = sync.Pool{New: func() any {
	return &inBatch{groups: make([]*inGroup, 0, 8)}
}}

// queueHandshake queues a copy of a handshake message of type typ for the
// handshake worker, if it has the type's exact length and the queue room.
func (d *Device) queueHandshake(proto *handshake.Protocol, typ uint32, msg []byte,
	ep conn.Endpoint) {
	if len(msg) != handshakeMessageSize(proto, typ) {
		d.drops.add(DropBadLength, 1)
		return
	}
	m := &hsMessage{n: len(msg), ep: ep}
	copy(m.buf[:], msg)
	select {
	case d.handshakeQueue <- m:
	default:
		d.drops.add(DropHandshakeQueueFull, 1)
	}
}

// sortMessage routes one received message. It reports whether it kept buf.
func (d *Device) sortMessage(
	batch **inBatch,
	buf *packetBuf,
	n int,
	ep conn.Endpoint,
	now time.Time,
) bool {
	if n < 4 {
		d.drops.add(DropShort, 1)
		return false
	}
	typ := binary.LittleEndian.Uint32(buf[:4])
	proto, ok := handshake.ProtocolForType(typ)
	if !ok {
		d.drops.add(DropBadType, 1)
		return false
	}
	if typ != proto.TypeTransport {
		d.queueHandshake(proto, typ, buf[:n], ep)
		return false
	}

	hdr, ok := parseTransportHeader(buf[:n])
	if !ok { // the type is a transport type: only the length can fail
		d.drops.add(DropShort, 1)
		return false
	}
	e := d.indices.lookup(hdr.receiver)
	s := e.sess
	if s == nil {
		d.drops.add(DropUnknownIndex, 1)
		return false
	}
	if s.proto != proto {
		s.peer.drops.add(DropProtocolMismatch, 1)
		return false
	}
	if now.Sub(s.created) >= d.timers.RejectAfterTime {
		s.peer.drops.add(DropExpiredSession, 1)
		return false
	}
	epoch := hdr.epoch

	if *batch == nil {
		*batch = inBatchPool.Get().(*inBatch)
	}
	b := *batch
	var g *inGroup
	if k := len(b.groups); k > 0 {
		last := b.groups[k-1]
		if last.sess == s && last.key.Epoch == epoch && len(last.bufs) < batchSize {
			g = last
		}
	}
	if g == nil {
		key, err := s.receiver.Key(epoch, now)
		if err != nil {
			s.peer.drops.add(DropEpochOutOfWindow, 1)
			if s.peer.atEndpoint(ep) {
				s.peer.epochDropsAtEndpoint.Add(1)
			}
			if len(b.groups) == 0 { // an empty batch must not reach the writer
				inBatchPool.Put(b)
				*batch = nil
			}
			return false
		}
		g = inGroupPool.Get().(*inGroup)
		g.sess = s
		g.key = key
		g.epoch = key.Epoch
		g.at = now
		b.groups = append(b.groups, g)
	}
	g.bufs = append(g.bufs, buf)
	g.sizes = append(g.sizes, n)
	g.eps = append(g.eps, ep)
	return true
}

// decryptWorker is stage 2.
func (d *Device) decryptWorker() {
	var nonce [12]byte
	for {
		select {
		case g := <-d.decryptQueue:
			open(g, &nonce)
			g.done.Unlock()
		case <-d.closed:
			return
		}
	}
}

// open decrypts every message of g in place. A message that fails to open
// gets size -1; a good one gets its plaintext length.
func open(g *inGroup, nonce *[12]byte) {
	aead := g.key.AEAD()
	hs := g.sess.headerSize()
	for i, b := range g.bufs {
		n := g.sizes[i]
		copy(nonce[4:], b[hs-8:hs]) // the counter ends the header in both formats
		ct := b[hs:n]
		pt, err := aead.Open(ct[:0], nonce[:], ct, nil)
		if err != nil {
			g.sizes[i] = -1
			continue
		}
		g.sizes[i] = len(pt)
	}
	g.key.Release()
	g.key = nil
}

// writeSequential is stage 3 for one receive function.
func (d *Device) writeSequential(in <-chan *inBatch) {
	views := make([][]byte, 0, batchSize)
	for b := range in {
		for _, g := range b.groups {
			g.done.Lock()
			views = d.deliver(g, views[:0])
			g.done.Unlock()
			putInGroup(g)
		}
		clear(b.groups)
		b.groups = b.groups[:0]
		inBatchPool.Put(b)
		d.inPending.Add(-1)
	}
}

// deliverInline opens and delivers a batch of at most Device.inlineMax
// messages on the receiving goroutine when no writer has a batch to finish,
// which spares the packets two hand-offs between goroutines. Order holds:
// nothing this receiver queued before is still waiting. views is scratch
// space for the TUN write. It reports false, having done nothing, when the
// batch does not qualify.
func (d *Device) deliverInline(b *inBatch, nonce *[12]byte, views *[][]byte) bool {
	if b.messages() > d.inlineMax || d.inPending.Load() != 0 {
		return false
	}
	for _, g := range b.groups {
		open(g, nonce)
		*views = d.deliver(g, (*views)[:0])
		putInGroup(g)
	}
	clear(b.groups)
	b.groups = b.groups[:0]
	inBatchPool.Put(b)
	return true
}

// messages counts the messages of all groups of b.
func (b *inBatch) messages() int {
	n := 0
	for _, g := range b.groups {
		n += len(g.bufs)
	}
	return n
}

// deliver checks the opened messages of g and writes their packets to the
// TUN. views is scratch space for the write.
func (d *Device) deliver(g *inGroup, views [][]byte) [][]byte {
	s := g.sess
	p := s.peer
	hs := s.headerSize()
	var (
		rx        uint64
		data      bool
		authentic bool
		lastEP    conn.Endpoint
		dropped   [numDropReasons]uint64
		anyDrops  bool
	)
	for i, b := range g.bufs {
		n := g.sizes[i]
		if n < 0 {
			dropped[DropDecrypt]++
			anyDrops = true
			continue
		}
		counter := binary.LittleEndian.Uint64(b[hs-8 : hs])
		if !s.checkReplay(counter) {
			dropped[DropReplay]++
			anyDrops = true
			continue
		}
		authentic = true
		lastEP = g.eps[i]
		rx += uint64(n + hs + tagSize)
		if n == 0 {
			continue // keepalive
		}
		pkt := b[hs : hs+n]
		size, ok := innerLength(pkt)
		if !ok {
			dropped[DropBadInnerPacket]++
			anyDrops = true
			continue
		}
		pkt = pkt[:size]
		if src, ok := d.allowed.LookupPacket(pkt, false); !ok || src != p {
			dropped[DropSourceNotAllowed]++
			anyDrops = true
			continue
		}
		data = true
		views = append(views, b[:hs+size])
	}
	if anyDrops {
		for r, c := range dropped {
			if c != 0 {
				p.drops.add(DropReason(r), c)
			}
		}
	}
	if !authentic {
		return views
	}
	if !s.received.Load() {
		// The first message that opened lines our receiving epochs up
		// with the initiator's (a no-op on the initiator's side).
		s.receiver.Anchor(g.epoch, g.at)
		s.received.Store(true)
	}
	p.rxBytes.Add(rx)
	// The endpoint first: confirming flushes what waited for the session.
	p.updateEndpoint(lastEP)
	p.confirm(s)
	p.timers.packetReceived(data)
	if s.initiator && time.Since(s.created) >= d.timers.rekeyOnReceiveAge() {
		d.initiateHandshake(p, false)
	}
	if len(views) > 0 {
		if _, err := d.tun.Write(views, hs); err != nil {
			p.drops.add(DropTUNWriteError, uint64(len(views)))
		}
	}
	return views
}

// innerLength returns the length of the IP packet at the start of b (the
// rest is padding), and whether b holds a whole, plausible packet.
func innerLength(b []byte) (int, bool) {
	switch {
	case len(b) >= 20 && b[0]>>4 == 4:
		n := int(binary.BigEndian.Uint16(b[2:4]))
		return n, n >= 20 && n <= len(b)
	case len(b) >= 40 && b[0]>>4 == 6:
		n := 40 + int(binary.BigEndian.Uint16(b[4:6]))
		return n, n <= len(b)
	}
	return 0, false
}
