package device

// Handshakes run on one worker goroutine, apart from the data path. Each
// message is checked in order of cost: its mac1 first (a keyed hash), then,
// when the device is under load, its mac2 cookie, then the rate limit per
// source address; only then the Curve25519 operations.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"time"

	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
)

// handshakeWorker processes queued handshake messages until Close.
func (d *Device) handshakeWorker() {
	var out [handshake.MessageInitiationSize]byte
	for {
		var m *hsMessage
		select {
		case m = <-d.handshakeQueue:
		case <-d.closed:
			return
		}
		d.handleHandshake(m, out[:])
	}
}

// handleHandshake dispatches one handshake message by type. It holds keyMu
// for reading, so the identity and the peers' handshakes stay put.
func (d *Device) handleHandshake(m *hsMessage, out []byte) {
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	if d.identity == nil {
		d.drops.add(DropNoPrivateKey, 1)
		return
	}
	msg := m.buf[:m.n] // of its type's length: queueHandshake checked
	typ := binary.LittleEndian.Uint32(msg[:4])
	proto, _ := handshake.ProtocolForType(typ)
	switch typ {
	case proto.TypeInitiation, proto.TypeResponse:
		if !d.checkMACs(msg, m.ep, out) {
			return
		}
		if typ == proto.TypeInitiation {
			d.handleInitiation(msg, m.ep, out)
		} else {
			d.handleResponse(msg, m.ep)
		}
	case proto.TypeCookieReply:
		d.handleCookieReply(msg)
	}
}

// handshakeMessageSize is the exact length of a handshake message of type
// typ in protocol proto.
func handshakeMessageSize(proto *handshake.Protocol, typ uint32) int {
	switch typ {
	case proto.TypeInitiation:
		return handshake.MessageInitiationSize
	case proto.TypeResponse:
		return handshake.MessageResponseSize
	case proto.TypeCookieReply:
		return handshake.MessageCookieReplySize
	}
	return -1
}

// checkMACs checks mac1, and under load mac2, answering a message without
// a valid cookie with a cookie reply. It reports whether to go on.
func (d *Device) checkMACs(msg []byte, ep conn.Endpoint, out []byte) bool {
	if !d.cookies.CheckMAC1(msg) {
		d.drops.add(DropBadMAC1, 1)
		return false
	}
	if !d.underLoad() {
		return true
	}
	src := ep.DstToBytes()
	if !d.cookies.CheckMAC2(msg, src) {
		n, err := d.cookies.CreateReply(out, msg, src)
		if err == nil {
			d.bind.Send([][]byte{out[:n]}, ep)
		}
		d.drops.add(DropCookieRequired, 1)
		return false
	}
	if !d.limiter.Allow(ep.DstIP()) {
		d.drops.add(DropRateLimited, 1)
		return false
	}
	return true
}

// handleInitiation answers a valid initiation with a response and holds
// the new session until the initiator confirms it.
func (d *Device) handleInitiation(msg []byte, ep conn.Endpoint, out []byte) {
	proto, _ := handshake.ProtocolForType(binary.LittleEndian.Uint32(msg[:4]))
	var (
		found   *handshake.Handshake
		yielded *Peer
		// locked is the peer whose hsMu is held from the moment it is known
		// until the response is made: the TUN reader must not start an
		// initiation of ours in between, which would replace the state of
		// the one being answered.
		locked *Peer
	)
	hs, err := handshake.ConsumeInitiation(d.identity, msg,
		func(pub handshake.PublicKey) *handshake.Handshake {
			found = d.lookupHandshake(pub)
			if found == nil || found.Protocol() != proto {
				return found
			}
			if d.keepOwnInitiation(pub, ep) {
				yielded = d.Peer(pub)
				return nil
			}
			if locked = d.Peer(pub); locked != nil {
				locked.hsMu.Lock()
			}
			return found
		})
	unlock := func() {
		if locked != nil {
			locked.hsMu.Unlock()
			locked = nil
		}
	}
	if yielded != nil {
		yielded.drops.add(DropHandshakeCrossed, 1)
		return
	}
	if err != nil {
		unlock()
		d.initiationFailed(found, msg, err)
		return
	}
	p := locked
	if p == nil || p.public != hs.Remote() {
		unlock()
		d.drops.add(DropHandshakeUnknownPeer, 1)
		return
	}
	idx := d.indices.newIndex(p)
	s, n, err := hs.CreateResponse(out, idx)
	if err == nil {
		// Answering voided any initiation of ours (the peer kept its own
		// when they crossed).
		p.dropInitiationLocked()
	}
	unlock()
	if err != nil {
		d.indices.remove(idx)
		p.drops.add(DropHandshakeRejected, 1)
		return
	}
	// The session must be reachable by its index before the response leaves:
	// the initiator may answer with data at once. A known endpoint stays:
	// only the initiator's first message on the session, which confirms it,
	// moves it (deliver). An initiation proves no liveness, and a captured
	// one replayed from elsewhere to a responder that has forgotten its
	// timestamp (after a restart) would otherwise steer our traffic away.
	// A peer with no endpoint at all gets this one, so that we can initiate
	// ourselves if that first message is lost: there is nothing to steer.
	sess := newSession(p, &s, time.Now(), d.hopInterval)
	p.learnEndpoint(ep)
	p.installResponded(sess)
	if err := d.bind.Send([][]byte{out[:n]}, ep); err != nil {
		p.drops.add(DropSendError, 1)
	}
}

// keepOwnInitiation settles two initiations that cross: both peers sent
// one before seeing the other's. A peer's handshake state holds one
// handshake at a time, so answering the other's initiation would void our
// own and the response to it, and each side would void the other's in the
// same way. Instead the side with the greater public key keeps its own
// initiation and ignores the other's; the other side answers. An
// initiation of ours older than RekeyTimeout no longer counts, nor does one
// sent to another address than the one this initiation comes from: a peer
// that moved cannot have seen ours, and must be answered. (Ports are not
// compared: a NAT may change the port but not the peer.)
func (d *Device) keepOwnInitiation(remote handshake.PublicKey, from conn.Endpoint) bool {
	p := d.Peer(remote)
	if p == nil || bytes.Compare(d.public[:], remote[:]) <= 0 {
		return false
	}
	// Zones are left out: a configured link-local endpoint names its
	// interface, a received one its index.
	if ep := p.getEndpoint(); ep == nil ||
		ep.DstIP().WithZone("") != from.DstIP().WithZone("") {
		return false
	}
	p.hsMu.Lock()
	defer p.hsMu.Unlock()
	return p.hsIndex != 0 && time.Since(p.hsLastSent) < d.timers.RekeyTimeout
}

// initiationFailed counts a rejected initiation against its peer when the
// peer is known, and records why for status.
func (d *Device) initiationFailed(hs *handshake.Handshake, msg []byte, err error) {
	var p *Peer
	if hs != nil {
		p = d.Peer(hs.Remote())
	}
	reason := DropHandshakeRejected
	switch {
	case errors.Is(err, handshake.ErrUnknownPeer):
		reason = DropHandshakeUnknownPeer
	case errors.Is(err, handshake.ErrReplayedInitiation):
		reason = DropHandshakeReplay
	case errors.Is(err, handshake.ErrProtocolMismatch):
		reason = DropProtocolMismatch
	case errors.Is(err, handshake.ErrInitiationFlood):
		reason = DropHandshakeFlood
	}
	if p == nil {
		d.drops.add(reason, 1)
		return
	}
	p.drops.add(reason, 1)
	if reason == DropProtocolMismatch {
		proto, _ := handshake.ProtocolForType(binary.LittleEndian.Uint32(msg[:4]))
		p.noteProblem("peer speaks the " + proto.Name + " protocol but is configured as " +
			p.proto.Name)
	}
}

// handleResponse completes a handshake we initiated.
func (d *Device) handleResponse(msg []byte, ep conn.Endpoint) {
	var claimed *Peer // the peer whose initiation the response names
	hs, s, err := handshake.ConsumeResponse(d.identity, msg,
		func(idx uint32) *handshake.Handshake {
			e := d.indices.lookup(idx)
			if e.peer == nil || e.sess != nil {
				return nil
			}
			claimed = e.peer
			return e.peer.hs
		})
	if err != nil {
		if claimed == nil {
			d.drops.add(DropHandshakeRejected, 1)
			return
		}
		// Its mac1 was right and it names our initiation, yet it does not
		// authenticate: most often the two sides' preshared keys differ.
		// Anyone who saw our initiation can send such a response, so only
		// one from the address we sent the initiation to says so.
		claimed.drops.add(DropHandshakeRejected, 1)
		if claimed.atEndpoint(ep) {
			claimed.noteProblem(problemResponseRejected)
		}
		return
	}
	p := d.Peer(hs.Remote())
	if p == nil {
		s.Zero()
		return
	}
	p.hsMu.Lock()
	if p.hsIndex != s.LocalIndex {
		p.hsMu.Unlock()
		s.Zero()
		p.drops.add(DropHandshakeRejected, 1)
		return
	}
	p.hsIndex = 0
	p.hsMu.Unlock()

	sess := newSession(p, &s, time.Now(), d.hopInterval)
	p.updateEndpoint(ep)
	p.installInitiated(sess)
	p.lastProblem.Store(nil)
}

// problemResponseRejected is the problem status shows for a peer whose
// handshake responses fail to authenticate.
const problemResponseRejected = "handshake responses from the peer fail to authenticate: " +
	"check that both sides use the same preshared key (preshared_key_file)"

// handleCookieReply stores the cookie a loaded peer sent us.
func (d *Device) handleCookieReply(msg []byte) {
	if len(msg) < 8 {
		d.drops.add(DropShort, 1)
		return
	}
	e := d.indices.lookup(binary.LittleEndian.Uint32(msg[4:8]))
	if e.peer == nil {
		d.drops.add(DropUnknownIndex, 1)
		return
	}
	if err := e.peer.hs.ConsumeCookieReply(msg); err != nil {
		e.peer.drops.add(DropHandshakeRejected, 1)
	}
}

// initiateHandshake sends an initiation to p unless one was sent less than
// RekeyTimeout ago, whether or not it was answered; a retry (force) waits
// only for the rate limit the responder enforces. Retries are driven by
// the peer's retransmit timer.
func (d *Device) initiateHandshake(p *Peer, force bool) {
	now := time.Now()
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	p.hsMu.Lock()
	defer p.hsMu.Unlock()
	if p.hs == nil {
		p.noteProblem("the interface has no private key")
		return
	}
	since := now.Sub(p.hsLastSent)
	if since < HandshakeInitRate || (!force && since < d.timers.RekeyTimeout) {
		return
	}
	if p.hsIndex == 0 {
		p.hsStarted = now
	}
	ep := p.getEndpoint()
	if ep == nil {
		p.noteProblem("no endpoint known: waiting for the peer to initiate")
		return
	}
	if p.hsIndex != 0 {
		d.indices.remove(p.hsIndex)
	}
	p.hsIndex = d.indices.newIndex(p)
	var out [handshake.MessageInitiationSize]byte
	n, err := p.hs.CreateInitiation(out[:], p.hsIndex)
	if err != nil {
		d.indices.remove(p.hsIndex)
		p.hsIndex = 0
		p.noteProblem("cannot create initiation: " + err.Error())
		return
	}
	p.hsLastSent = now
	if err := d.bind.Send([][]byte{out[:n]}, ep); err != nil {
		p.drops.add(DropSendError, 1)
	}
	p.timers.handshakeSent(d.timers.rekeyTimeoutWithJitter())
}

// retryHandshake runs when an initiation went unanswered for RekeyTimeout.
func (d *Device) retryHandshake(p *Peer) {
	p.hsMu.Lock()
	pending := p.hsIndex != 0
	gaveUp := pending && time.Since(p.hsStarted) >= d.timers.RekeyAttemptTime
	if gaveUp {
		d.indices.remove(p.hsIndex)
		p.hsIndex = 0
	}
	p.hsMu.Unlock()
	if !pending {
		return
	}
	if gaveUp {
		// Responses that arrived and failed say more than "no response".
		if msg := p.lastProblem.Load(); msg == nil || *msg != problemResponseRejected {
			p.noteProblem("no handshake response within " + d.timers.RekeyAttemptTime.String())
		}
		p.mu.Lock()
		p.dropStagedLocked()
		p.mu.Unlock()
		return
	}
	d.initiateHandshake(p, true)
}

// handshakeDone runs after a handshake completes in either role.
func (p *Peer) handshakeDone() {
	p.lastHandshake.Store(time.Now().UnixNano())
	p.timers.handshakeComplete()
}
