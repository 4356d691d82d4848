package device

import (
	"crypto/subtle"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hoprd/hoprd/bind"
	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
)

// Peer is one remote host: its identity, its sessions, the packets waiting
// for a session, its timers and its counters.
//
// Lock order: Peer.mu before Peer.hsMu.
type Peer struct {
	device *Device
	name   string
	public handshake.PublicKey
	proto  *handshake.Protocol
	log    *slog.Logger

	// hs locks itself. It is replaced with Device.keyMu and hsMu held, so
	// either suffices to read it; nil while the device has no private key.
	hs *handshake.Handshake

	allowedIPs []netip.Prefix // guarded by Device.peersMu

	endpoint atomic.Pointer[conn.Endpoint] // where packets to the peer go
	// endpointProblem says why the configured endpoint is not known, for
	// status while the peer has no endpoint; nil when there is nothing to say.
	endpointProblem atomic.Pointer[string]

	mu        sync.RWMutex // guards the fields below
	current   *session     // the session packets are sent with
	previous  *session     // the one before, kept to receive stragglers
	next      *session     // responder's new session, until the initiator uses it
	staged    []stagedPacket
	keepalive time.Duration // persistent keepalive interval, 0 for none
	stopped   bool

	hsMu       sync.Mutex // guards the initiation state below, and psk
	hsIndex    uint32     // local index of the initiation in flight, 0 if none
	hsStarted  time.Time  // when the current round of attempts began
	hsLastSent time.Time

	psk handshake.PresharedKey // guarded by hsMu; rebuilds hs when the key changes

	timers peerTimers

	rxBytes       atomic.Uint64
	txBytes       atomic.Uint64
	lastHandshake atomic.Int64  // unix nanoseconds of the last completed handshake
	hopsRetired   atomic.Uint64 // hops of sessions already closed
	lastProblem   atomic.Pointer[string]

	// epochDropsAtEndpoint counts out-of-window drops of messages from the
	// peer's endpoint address; epochDropsSeen is how many of them status
	// was told of (hop ticker only). Anyone who has seen an index can send
	// messages naming it, so only these count as a sign of misconfiguration.
	epochDropsAtEndpoint atomic.Uint64
	epochDropsSeen       uint64
	drops                dropCounters
}

// stagedPacket is an outbound packet waiting for a session: a copy of just
// its bytes, so that a peer that cannot be reached holds no packet buffers.
type stagedPacket struct {
	data []byte
}

func newPeer(d *Device, pc PeerConfig) *Peer {
	p := &Peer{
		device:    d,
		name:      pc.Name,
		public:    pc.PublicKey,
		proto:     pc.Protocol,
		keepalive: pc.PersistentKeepalive,
		log:       d.log.With("peer", pc.Name),
		psk:       pc.PresharedKey,
	}
	if d.identity != nil {
		p.hs = handshake.NewHandshake(d.identity, pc.PublicKey, pc.PresharedKey, pc.Protocol,
			d.timestamps)
	}
	p.timers.init(p)
	return p
}

// Name returns the peer's configured name.
func (p *Peer) Name() string { return p.name }

// PublicKey returns the peer's public key.
func (p *Peer) PublicKey() handshake.PublicKey { return p.public }

// Protocol returns the handshake protocol the peer speaks.
func (p *Peer) Protocol() *handshake.Protocol { return p.proto }

// SetEndpoint sets where packets to the peer go.
func (p *Peer) SetEndpoint(ap netip.AddrPort) error {
	ep, err := p.device.bind.ParseEndpoint(ap.String())
	if err != nil {
		return err
	}
	p.endpoint.Store(&ep)
	return nil
}

// SetEndpointProblem records why the peer's configured endpoint is not known
// (a DNS name that did not resolve, say). While the peer has no endpoint,
// status shows it as the peer's problem, in place of the bare "no endpoint
// known". An empty msg clears it. It logs nothing: the caller does.
func (p *Peer) SetEndpointProblem(msg string) {
	if msg == "" {
		p.endpointProblem.Store(nil)
		return
	}
	p.endpointProblem.Store(&msg)
}

// getEndpoint returns where packets to the peer go, or nil.
func (p *Peer) getEndpoint() conn.Endpoint {
	if ep := p.endpoint.Load(); ep != nil {
		return *ep
	}
	return nil
}

// SetPersistentKeepalive changes the persistent keepalive interval.
func (p *Peer) SetPersistentKeepalive(d time.Duration) {
	p.mu.Lock()
	p.keepalive = d
	p.mu.Unlock()
	p.startPersistentKeepalive()
}

// SetPresharedKey changes the preshared key used by later handshakes. It
// reports whether the key differs from the one the peer had, comparing
// them in constant time.
func (p *Peer) SetPresharedKey(psk handshake.PresharedKey) (changed bool) {
	p.hsMu.Lock()
	defer p.hsMu.Unlock()
	changed = subtle.ConstantTimeCompare(p.psk[:], psk[:]) == 0
	p.psk = psk
	if p.hs != nil {
		p.hs.SetPresharedKey(psk)
	}
	return changed
}

// updateEndpoint records where an authenticated packet came from, so the
// peer may roam. It stores only on change, which keeps the receive path
// free of allocations while the peer stays put.
func (p *Peer) updateEndpoint(ep conn.Endpoint) {
	if old := p.endpoint.Load(); old != nil && sameEndpoint(*old, ep) {
		return
	}
	stored := ep // storing &ep itself would move ep to the heap on every call
	p.endpoint.Store(&stored)
}

// learnEndpoint gives p the endpoint ep if it has none.
func (p *Peer) learnEndpoint(ep conn.Endpoint) {
	stored := ep
	p.endpoint.CompareAndSwap(nil, &stored)
}

// atEndpoint reports whether a message from ep came from the address of
// p's endpoint, the one it authenticated from last or was configured with.
// Ports are not compared, as a NAT may change them.
func (p *Peer) atEndpoint(ep conn.Endpoint) bool {
	cur := p.getEndpoint()
	return cur != nil && ep != nil && cur.DstIP().WithZone("") == ep.DstIP().WithZone("")
}

// sameEndpoint reports whether a and b name the same remote address and the
// same local source address.
func sameEndpoint(a, b conn.Endpoint) bool {
	if a == b {
		return true
	}
	// The bind hands one pointer to every datagram of a flow, so this is
	// reached after its endpoint cache was emptied or the source cleared.
	if ea, ok := a.(*bind.Endpoint); ok {
		if eb, ok := b.(*bind.Endpoint); ok {
			return ea.DstAddrPort() == eb.DstAddrPort() && ea.SrcIP() == eb.SrcIP() &&
				ea.SrcIfindex() == eb.SrcIfindex()
		}
	}
	sa, ok1 := a.(*conn.StdNetEndpoint)
	sb, ok2 := b.(*conn.StdNetEndpoint)
	if ok1 && ok2 {
		return sa.AddrPort == sb.AddrPort && sa.SrcIP() == sb.SrcIP()
	}
	return a.DstToString() == b.DstToString() && a.SrcToString() == b.SrcToString()
}

// noteProblem records why handshakes with the peer are failing, for status,
// and logs it once per change at most once a minute.
func (p *Peer) noteProblem(msg string) {
	old := p.lastProblem.Load()
	p.lastProblem.Store(&msg)
	if (old == nil || *old != msg) && p.timers.problemLog.Allow() {
		p.log.Warn("peer problem", "reason", msg)
	}
}

// installInitiated makes a session we initiated current: the old current
// becomes previous (make before break), and staged packets go out with it.
func (p *Peer) installInitiated(s *session) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		p.device.indices.remove(s.localIndex)
		s.close()
		return
	}
	retired := p.previous
	switch {
	case p.next != nil && (p.current == nil || p.next.received.Load()):
		// The handshakes crossed: the peer initiated the session we
		// responded to and may already send on it, as it does when no
		// session came before or when a message has arrived on it. It
		// stays to receive on, as previous, and the old current goes.
		defer p.retire(p.current)
		if p.current != nil {
			p.hopsRetired.Add(p.current.sender.Hops())
		}
		p.previous, p.current, p.next = p.next, nil, nil
	case p.next != nil:
		// The peer never used the session we responded to (its own
		// handshake may have failed) and may still send on current,
		// which is kept instead.
		defer p.retire(p.next)
		p.next = nil
		p.demoteCurrentLocked()
	default:
		p.demoteCurrentLocked()
	}
	p.current = s
	p.device.indices.bind(s.localIndex, s)
	p.handshakeDone()
	p.flushStagedLocked()
	p.mu.Unlock()
	p.retire(retired)
}

// installResponded holds a session we responded to as next, until the
// initiator's first packet confirms it. As in WireGuard, the handshake only
// counts as complete then: a response the initiator cannot open (a wrong
// preshared key, say) never shows as a handshake.
func (p *Peer) installResponded(s *session) {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		p.device.indices.remove(s.localIndex)
		s.close()
		return
	}
	retired := p.next
	p.next = s
	p.device.indices.bind(s.localIndex, s)
	p.mu.Unlock()
	p.retire(retired)
}

// confirm promotes next to current once the initiator has used it.
func (p *Peer) confirm(s *session) {
	if s.confirmed.Load() {
		return
	}
	p.mu.Lock()
	if p.next != s {
		p.mu.Unlock()
		return
	}
	s.confirmed.Store(true)
	retired := p.previous
	p.demoteCurrentLocked()
	p.current = s
	p.next = nil
	p.handshakeDone()
	p.flushStagedLocked()
	p.mu.Unlock()
	p.retire(retired)
	p.lastProblem.Store(nil)
	// An initiation of ours still in flight was ignored or voided when the
	// two crossed: with a session in place, none is pending any more.
	p.hsMu.Lock()
	p.dropInitiationLocked()
	p.hsMu.Unlock()
}

// dropInitiationLocked forgets the initiation in flight, if any, so that
// the next one starts a new round of attempts with its own clock. The
// caller holds hsMu.
func (p *Peer) dropInitiationLocked() {
	if p.hsIndex != 0 {
		p.device.indices.remove(p.hsIndex)
		p.hsIndex = 0
	}
}

// retire erases a session that no longer carries traffic.
func (p *Peer) retire(s *session) {
	if s == nil {
		return
	}
	p.device.indices.remove(s.localIndex)
	s.close()
}

// demoteCurrentLocked makes current the previous session. The hops it made
// while current are counted; a previous session keeps hopping (its keys
// must keep moving) but is no longer counted. p.mu must be held.
func (p *Peer) demoteCurrentLocked() {
	if p.current != nil {
		p.hopsRetired.Add(p.current.sender.Hops())
	}
	p.previous = p.current
	p.current = nil
}

// expireSessions drops sessions past RejectAfterTime.
func (p *Peer) expireSessions(now time.Time) {
	p.mu.Lock()
	var dead []*session
	if p.current != nil && p.current.expired(now) {
		p.hopsRetired.Add(p.current.sender.Hops())
	}
	for _, sp := range []**session{&p.current, &p.previous, &p.next} {
		if *sp != nil && (*sp).expired(now) {
			dead = append(dead, *sp)
			*sp = nil
		}
	}
	p.mu.Unlock()
	for _, s := range dead {
		p.retire(s)
	}
}

// clearSessions erases every session (no handshake for 3 × RejectAfterTime,
// or the peer is going away).
func (p *Peer) clearSessions() {
	p.mu.Lock()
	if p.current != nil {
		p.hopsRetired.Add(p.current.sender.Hops())
	}
	dead := []*session{p.current, p.previous, p.next}
	p.current, p.previous, p.next = nil, nil, nil
	p.dropStagedLocked()
	p.mu.Unlock()
	for _, s := range dead {
		p.retire(s)
	}
	p.hsMu.Lock()
	if p.hsIndex != 0 {
		p.device.indices.remove(p.hsIndex)
		p.hsIndex = 0
	}
	if p.hs != nil {
		p.hs.Clear()
	}
	p.hsMu.Unlock()
}

// stop takes the peer out of service: timers stop and keys are erased.
func (p *Peer) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	p.timers.stop()
	p.clearSessions()
	p.hsMu.Lock()
	p.psk.Zero()
	if p.hs != nil {
		p.hs.Zero()
	}
	p.hsMu.Unlock()
}

// Hops returns the key hops done with this peer since the daemon started:
// the epoch steps of each session while it was the one in use.
func (p *Peer) Hops() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := p.hopsRetired.Load()
	if p.current != nil {
		n += p.current.sender.Hops()
	}
	return n
}
