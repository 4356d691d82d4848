package device

// The outbound pipeline, in the order a packet travels:
//
//  1. readTUN (one goroutine) reads a batch from the TUN, finds each
//     packet's peer by longest-prefix match on its destination, and groups
//     the batch by peer. For each group it picks the peer's current session,
//     assigns counters and takes a reference to the epoch key (prepare).
//     Without a usable session the packets are staged on the peer and a
//     handshake starts. The batch goes to sendQueue and each group to
//     encryptQueue, in that order, so the sender sees batches in read order.
//     A batch of at most Device.inlineMax packets with nothing queued ahead
//     of it skips stages 2 and 3: the reader seals and sends it itself
//     (sendInline).
//  2. encryptWorker (GOMAXPROCS goroutines) pads each packet, writes the
//     transport header in front of it and seals it in place, then unlocks
//     the group's done mutex.
//  3. sendSequential (one goroutine) takes batches in order, waits on each
//     group's done mutex and hands the sealed packets to the bind.

import (
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/hoprd/hoprd/device/ratchet"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// outGroup is a run of packets for one peer, sealed with one epoch key.
type outGroup struct {
	done  sync.Mutex // held until a worker has sealed the group
	peer  *Peer
	sess  *session
	key   *ratchet.Key
	epoch uint32
	first uint64       // counter of pkts[0]
	bufs  []*packetBuf // packets start at tunOffset
	sizes []int        // plaintext lengths
	msgs  [][]byte     // the sealed messages, set by the worker
	keep  bool         // a keepalive: no data
}

// outBatch is the groups of one TUN read, in read order.
type outBatch struct {
	groups []*outGroup
}

var outGroupPool = sync.Pool{New: func() any {
	return &outGroup{
		bufs:  make([]*packetBuf, 0, batchSize),
		sizes: make([]int, 0, batchSize),
		msgs:  make([][]byte, 0, batchSize),
	}
}}

var outBatchPool = sync.Pool{New: func() any {
	return &outBatch{groups: make([]*outGroup, 0, 8)}
}}

func getOutGroup(p *Peer) *outGroup {
	g := outGroupPool.Get().(*outGroup)
	g.peer = p
	return g
}

func putOutGroup(g *outGroup) {
	for i, b := range g.bufs {
		if b != nil {
			putBuf(b)
		}
		g.bufs[i] = nil
	}
	for i := range g.msgs {
		g.msgs[i] = nil
	}
	*g = outGroup{bufs: g.bufs[:0], sizes: g.sizes[:0], msgs: g.msgs[:0]}
	outGroupPool.Put(g)
}

// readTUN is stage 1. It returns when the TUN is closed.
func (d *Device) readTUN() {
	var nonce [12]byte // for sendInline
	failures := 0      // consecutive read errors
	bs := d.tun.BatchSize()
	bufs := make([]*packetBuf, bs)
	views := make([][]byte, bs)
	sizes := make([]int, bs)
	for {
		for i := range bufs {
			if bufs[i] == nil {
				bufs[i] = getBuf()
			}
			views[i] = bufs[i][:]
		}
		n, err := d.tun.Read(views, sizes, tunOffset)
		if err != nil && !errors.Is(err, wgtun.ErrTooManySegments) {
			if d.isClosed() {
				return
			}
			// A packet too large for the buffers is refused by the read; the
			// TUN goes on. Only a TUN that keeps failing stops the device.
			if failures++; failures < maxReadFailures && !errors.Is(err, os.ErrClosed) {
				d.drops.add(DropTUNReadError, 1)
				continue
			}
			if errors.Is(err, os.ErrClosed) {
				// The link went away (ip link del, wg-quick down): what
				// watches the link says so; this is no fault of the TUN.
				d.log.Info("tun closed, stopping the device")
			} else {
				d.log.Error("read tun", "err", err)
			}
			go d.Close()
			return
		}
		failures = 0
		if n == 0 {
			continue
		}
		batch := outBatchPool.Get().(*outBatch)
		d.route(batch, bufs[:n], sizes[:n])
		if now := time.Now(); !d.sendInline(batch, now, &nonce) {
			d.dispatch(batch, now)
		}
	}
}

// route groups the packets of one TUN read by the peer that owns each
// destination, taking their buffers out of bufs. A packet no peer owns is
// counted and its buffer left in bufs for the next read.
func (d *Device) route(batch *outBatch, bufs []*packetBuf, sizes []int) {
	for i := range bufs {
		if sizes[i] > maxPlaintext {
			d.drops.add(DropTooBig, 1)
			continue
		}
		pkt := bufs[i][tunOffset : tunOffset+sizes[i]]
		p, ok := d.allowed.LookupPacket(pkt, true)
		if !ok {
			d.drops.add(DropNoRoute, 1)
			continue
		}
		g := batch.groupFor(p)
		g.bufs = append(g.bufs, bufs[i])
		g.sizes = append(g.sizes, sizes[i])
		bufs[i] = nil
	}
}

// groupFor returns the batch's group for p, adding one if needed. Batches
// hold few peers, so a linear search beats a map.
func (b *outBatch) groupFor(p *Peer) *outGroup {
	for _, g := range b.groups {
		if g.peer == p {
			return g
		}
	}
	g := getOutGroup(p)
	b.groups = append(b.groups, g)
	return g
}

// dispatch prepares each group of a batch and queues the batch for sending
// and its groups for sealing.
func (d *Device) dispatch(b *outBatch, now time.Time) {
	kept := b.groups[:0]
	for _, g := range b.groups {
		if g.peer.prepare(g, now) {
			kept = append(kept, g)
		}
	}
	b.groups = kept
	d.enqueue(b)
}

// sendInline seals and sends a batch of at most Device.inlineMax packets
// on the calling goroutine when no batch is queued for sending, which spares
// the packets two hand-offs between goroutines. Order holds: the reader is
// the only source of data batches, nothing it queued before is still
// waiting, and a batch queued by another goroutine while the groups got
// their counters (staged packets flushed under Peer.mu) keeps the groups
// behind it in the queue. It reports false, having done nothing, when the
// batch does not qualify.
func (d *Device) sendInline(b *outBatch, now time.Time, nonce *[12]byte) bool {
	if b.packets() > d.inlineMax || d.outPending.Load() != 0 {
		return false
	}
	kept := b.groups[:0]
	for _, g := range b.groups {
		if g.peer.prepare(g, now) {
			kept = append(kept, g)
		}
	}
	clear(b.groups[len(kept):])
	b.groups = kept
	if d.outPending.Load() != 0 {
		d.enqueue(b)
		return true
	}
	for _, g := range b.groups {
		d.seal(g, nonce)
		d.transmit(g)
		putOutGroup(g)
	}
	clear(b.groups)
	b.groups = b.groups[:0]
	outBatchPool.Put(b)
	return true
}

// packets counts the packets of all groups of b.
func (b *outBatch) packets() int {
	n := 0
	for _, g := range b.groups {
		n += len(g.bufs)
	}
	return n
}

// enqueue hands a prepared batch to the sender and its groups to the
// workers. Groups are locked before they become visible to either.
func (d *Device) enqueue(b *outBatch) {
	if len(b.groups) == 0 {
		outBatchPool.Put(b)
		return
	}
	for _, g := range b.groups {
		g.done.Lock()
	}
	d.outPending.Add(1)
	select {
	case d.sendQueue <- b:
	case <-d.closed:
		return
	}
	for _, g := range b.groups {
		select {
		case d.encryptQueue <- g:
		case <-d.closed:
			return
		}
	}
}

// prepare binds g to the peer's current session: counters and an epoch key.
// It reports false when g's packets were staged to wait for a handshake (g
// is then empty and recycled).
func (p *Peer) prepare(g *outGroup, now time.Time) bool {
	p.mu.Lock()
	s := p.current
	if s == nil || s.expired(now) || len(p.staged) > 0 {
		p.stageLocked(g)
		p.mu.Unlock()
		putOutGroup(g)
		p.device.initiateHandshake(p, false)
		return false
	}
	p.bindLocked(g, s, now)
	p.mu.Unlock()
	if s.initiator && (now.Sub(s.created) >= p.device.timers.RekeyAfterTime ||
		s.sendCounter.Load() >= RekeyAfterMessages) {
		p.device.initiateHandshake(p, false)
	}
	return true
}

// bindLocked assigns g's counters and epoch key from s. p.mu must be held,
// so that groups of one peer get counters in queue order.
func (p *Peer) bindLocked(g *outGroup, s *session, now time.Time) {
	g.sess = s
	g.key = s.sender.Current(now)
	g.epoch = g.key.Epoch
	n := uint64(len(g.bufs))
	g.first = s.sendCounter.Add(n) - n
}

// stageLocked copies g's packets onto the peer's staged queue and recycles
// their buffers. A full queue drops its oldest packet; when all peers
// together hold maxStagedBytes, the new packet is dropped instead. p.mu
// must be held.
func (p *Peer) stageLocked(g *outGroup) {
	d := p.device
	for i, b := range g.bufs {
		if p.stopped {
			break // removed: nothing would flush or drop them
		}
		n := g.sizes[i]
		full := len(p.staged) >= queueStaged
		freed := 0 // bytes of the oldest packet, pushed out when the queue is full
		if full {
			freed = len(p.staged[0].data)
		}
		if d.stagedBytes.Add(int64(n-freed)) > maxStagedBytes {
			d.stagedBytes.Add(-int64(n - freed))
			p.drops.add(DropStagedOverflow, 1)
			continue
		}
		var data []byte
		if full {
			data = p.staged[0].data // reused for the new packet when it fits
			copy(p.staged, p.staged[1:])
			p.staged = p.staged[:len(p.staged)-1]
			p.drops.add(DropStagedOverflow, 1)
		}
		if cap(data) < n {
			data = make([]byte, n)
		}
		data = data[:n]
		copy(data, b[tunOffset:tunOffset+n])
		p.staged = append(p.staged, stagedPacket{data: data})
	}
	for i, b := range g.bufs {
		putBuf(b)
		g.bufs[i] = nil
	}
}

// dropStagedLocked forgets the staged packets. p.mu must be held.
func (p *Peer) dropStagedLocked() {
	for _, sp := range p.staged {
		p.device.stagedBytes.Add(-int64(len(sp.data)))
	}
	clear(p.staged)
	p.staged = p.staged[:0]
}

// flushStagedLocked sends the staged packets with the current session, or
// a keepalive if none are staged and we initiated (so the responder can
// confirm the session). p.mu must be held.
func (p *Peer) flushStagedLocked() {
	s := p.current
	if s == nil {
		return
	}
	now := time.Now()
	b := outBatchPool.Get().(*outBatch)
	g := getOutGroup(p)
	if len(p.staged) == 0 {
		if !s.initiator {
			putOutGroup(g)
			outBatchPool.Put(b)
			return
		}
		g.bufs = append(g.bufs, getBuf())
		g.sizes = append(g.sizes, 0)
		g.keep = true
	}
	for _, sp := range p.staged {
		if len(g.bufs) == batchSize {
			p.bindLocked(g, s, now)
			b.groups = append(b.groups, g)
			g = getOutGroup(p)
		}
		buf := getBuf()
		n := copy(buf[tunOffset:], sp.data)
		g.bufs = append(g.bufs, buf)
		g.sizes = append(g.sizes, n)
	}
	p.dropStagedLocked()
	p.bindLocked(g, s, now)
	b.groups = append(b.groups, g)
	p.device.enqueue(b)
}

// sendKeepalive sends an empty transport message, or starts a handshake
// when there is no session to send it on.
func (p *Peer) sendKeepalive() {
	now := time.Now()
	p.mu.Lock()
	s := p.current
	if s == nil || s.expired(now) {
		p.mu.Unlock()
		p.device.initiateHandshake(p, false)
		return
	}
	g := getOutGroup(p)
	g.bufs = append(g.bufs, getBuf())
	g.sizes = append(g.sizes, 0)
	g.keep = true
	p.bindLocked(g, s, now)
	b := outBatchPool.Get().(*outBatch)
	b.groups = append(b.groups, g)
	p.device.enqueue(b)
	p.mu.Unlock()
}

// encryptWorker is stage 2.
func (d *Device) encryptWorker() {
	var nonce [12]byte
	for {
		select {
		case g := <-d.encryptQueue:
			d.seal(g, &nonce)
			g.done.Unlock()
		case <-d.closed:
			return
		}
	}
}

// seal pads, frames and encrypts every packet of g in place.
func (d *Device) seal(g *outGroup, nonce *[12]byte) {
	aead := g.key.AEAD()
	hs := g.sess.headerSize()
	hop := hs == hopHeaderSize
	for i, b := range g.bufs {
		n := g.sizes[i]
		padded := paddedLen(n, d.mtu)
		clear(b[tunOffset+n : tunOffset+padded])
		counter := g.first + uint64(i)

		h := b[tunOffset-hs : tunOffset]
		binary.LittleEndian.PutUint32(h[0:4], g.sess.proto.TypeTransport)
		binary.LittleEndian.PutUint32(h[4:8], g.sess.remoteIndex)
		if hop {
			binary.LittleEndian.PutUint32(h[8:12], g.epoch)
			binary.LittleEndian.PutUint64(h[12:20], counter)
		} else {
			binary.LittleEndian.PutUint64(h[8:16], counter)
		}
		binary.LittleEndian.PutUint64(nonce[4:], counter)
		pt := b[tunOffset : tunOffset+padded]
		aead.Seal(pt[:0], nonce[:], pt, nil)
		g.msgs = append(g.msgs, b[tunOffset-hs:tunOffset+padded+tagSize])
	}
	g.key.Release()
	g.key = nil
}

// paddedLen rounds n up to a multiple of paddingUnit, capped at mtu. A
// packet already larger than the MTU is not padded.
func paddedLen(n, mtu int) int {
	if n >= mtu {
		return n
	}
	return min((n+paddingUnit-1)&^(paddingUnit-1), mtu)
}

// sendSequential is stage 3.
func (d *Device) sendSequential() {
	for {
		var b *outBatch
		select {
		case b = <-d.sendQueue:
		case <-d.closed:
			return
		}
		for _, g := range b.groups {
			g.done.Lock()
			d.transmit(g)
			g.done.Unlock()
			putOutGroup(g)
		}
		clear(b.groups)
		b.groups = b.groups[:0]
		outBatchPool.Put(b)
		d.outPending.Add(-1)
	}
}

// transmit sends a sealed group to its peer's endpoint.
func (d *Device) transmit(g *outGroup) {
	p := g.peer
	ep := p.getEndpoint()
	if ep == nil {
		p.drops.add(DropSendError, uint64(len(g.msgs)))
		return
	}
	var bytes uint64
	for _, m := range g.msgs {
		bytes += uint64(len(m))
	}
	if err := d.bind.Send(g.msgs, ep); err != nil {
		p.drops.add(DropSendError, uint64(len(g.msgs)))
		return
	}
	p.txBytes.Add(bytes)
	p.timers.packetSent(!g.keep)
}
