package device

// Runtime configuration: what may change on a running device, as the
// userspace configuration protocol (the device/uapi package) asks. Every
// change keeps the invariants New and AddPeer establish: each allowed IP
// has one owner, no peer has the interface's own public key, and the
// handshake of every peer is built on the current identity.
//
// Locks: SetPrivateKey takes Device.keyMu for writing, then peersMu, then
// each peer's mu and hsMu, in the device's lock order. Bind changes
// (SetListenPort, SetFwmark) are serialized by Device.net.mu, which is
// never held together with any other device lock.

import (
	"crypto/subtle"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hoprd/hoprd/handshake"
	"golang.zx2c4.com/wireguard/conn"
)

// netState is the part of the device's network state that changes at run
// time: the open bind's receive goroutines and its firewall mark.
type netState struct {
	mu        sync.Mutex     // serializes bind changes; guards the fields below
	fwmark    uint32         // 0: none
	receivers sync.WaitGroup // receive and write goroutines of the open bind
}

// startReceivers starts a receiver and a sequential writer for each
// receive function of a freshly opened bind.
func (d *Device) startReceivers(fns []conn.ReceiveFunc) {
	for _, fn := range fns {
		in := make(chan *inBatch, queueInbound)
		d.net.receivers.Add(2)
		d.start(1, func() {
			defer d.net.receivers.Done()
			d.receive(fn, in)
		})
		d.start(1, func() {
			defer d.net.receivers.Done()
			d.writeSequential(in)
		})
	}
}

// HasPrivateKey reports whether the interface has a private key. Without
// one it neither sends nor answers handshakes.
func (d *Device) HasPrivateKey() bool {
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	return d.identity != nil
}

// PrivateKey returns a copy of the interface's private key, as the
// configuration protocol reports it, and false when there is none. The
// caller must erase the copy when done with it.
func (d *Device) PrivateKey() (handshake.PrivateKey, bool) {
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	if d.identity == nil {
		return handshake.PrivateKey{}, false
	}
	return d.identity.PrivateKey(), true
}

// publicKeyString is the public key as status shows it: empty while the
// interface has no private key.
func (d *Device) publicKeyString() string {
	d.keyMu.RLock()
	defer d.keyMu.RUnlock()
	if d.identity == nil {
		return ""
	}
	return d.public.String()
}

// SetPrivateKey replaces the interface's private key; the zero key removes
// it. Setting the key the interface already has changes nothing. Any other
// change erases every session and handshake in flight, since they were
// authenticated with the old key, and rebuilds each peer's handshake; a
// peer whose public key is the new own key is removed, as WireGuard does.
// The caller may erase k afterwards.
func (d *Device) SetPrivateKey(k handshake.PrivateKey) error {
	var id *handshake.Identity
	if !k.IsZero() {
		id = handshake.NewIdentity(k)
	}
	d.keyMu.Lock()
	defer d.keyMu.Unlock()
	if d.isClosed() {
		if id != nil {
			id.Zero()
		}
		return fmt.Errorf("set private key: %w", ErrClosed)
	}
	if sameIdentity(d.identity, id) {
		if id != nil {
			id.Zero()
		}
		return nil
	}
	old := d.identity
	d.identity, d.cookies, d.public = id, nil, handshake.PublicKey{}
	if id != nil {
		d.cookies = handshake.NewCookieChecker(id)
		d.public = id.PublicKey()
	}

	var gone []*Peer
	d.peersMu.Lock()
	for pub, p := range d.peers {
		if id != nil && pub.Equal(d.public) {
			d.unlinkPeerLocked(p)
			gone = append(gone, p)
			continue
		}
		p.rebuildHandshake(id)
	}
	d.peersMu.Unlock()
	for _, p := range gone {
		p.stop()
		d.log.Warn("removed the peer that has the interface's new public key", "peer", p.name)
	}
	if old != nil {
		old.Zero()
	}
	return nil
}

// sameIdentity reports whether a and b hold the same private key (or are
// both absent), in constant time.
func sameIdentity(a, b *handshake.Identity) bool {
	if a == nil || b == nil {
		return a == b
	}
	ka, kb := a.PrivateKey(), b.PrivateKey()
	defer ka.Zero()
	defer kb.Zero()
	return subtle.ConstantTimeCompare(ka[:], kb[:]) == 1
}

// rebuildHandshake erases p's sessions and its handshake state and builds
// a fresh handshake on id (none when id is nil). Device.keyMu must be held
// for writing and peersMu held.
func (p *Peer) rebuildHandshake(id *handshake.Identity) {
	p.clearSessions()
	p.hsMu.Lock()
	old := p.hs
	p.hs = nil
	if id != nil {
		p.hs = handshake.NewHandshake(id, p.public, p.psk, p.proto, p.device.timestamps)
	}
	p.hsMu.Unlock()
	if old != nil {
		old.Zero()
	}
}

// unlinkPeerLocked takes p out of the device's tables; the caller stops it
// once peersMu is released. peersMu must be held for writing.
func (d *Device) unlinkPeerLocked(p *Peer) {
	delete(d.peers, p.public)
	delete(d.names, p.name)
	for _, pfx := range p.allowedIPs {
		delete(d.claimed, pfx)
	}
	d.allowed.RemoveValue(p)
}

// SetListenPort moves the device to another UDP port (0 picks a free one):
// it closes the bind, waits for its receivers to stop, and opens it again.
// Asking for the port already in use changes nothing. When the new port
// cannot be opened the device goes back to the old one and the error says
// why.
func (d *Device) SetListenPort(port uint16) error {
	d.net.mu.Lock()
	defer d.net.mu.Unlock()
	if d.isClosed() {
		return fmt.Errorf("set listen port %d: %w", port, ErrClosed)
	}
	if port != 0 && port == d.listenPort {
		return nil
	}
	d.bind.Close()
	d.net.receivers.Wait()
	fns, actual, err := d.bind.Open(port)
	if err != nil {
		openErr := fmt.Errorf("set listen port %d: %w", port, err)
		fns, actual, err = d.bind.Open(d.listenPort)
		if err != nil {
			d.log.Error("cannot reopen the old listen port; stopping", "port", d.listenPort,
				"err", err)
			go d.Close()
			return openErr
		}
		d.restartBindLocked(fns, actual)
		return openErr
	}
	d.restartBindLocked(fns, actual)
	d.log.Info("listen port changed", "port", actual)
	return nil
}

// restartBindLocked starts the receivers of a reopened bind and applies
// the firewall mark to its sockets. net.mu must be held.
func (d *Device) restartBindLocked(fns []conn.ReceiveFunc, port uint16) {
	d.listenPort = port
	d.startReceivers(fns)
	if d.net.fwmark != 0 {
		if err := d.bind.SetMark(d.net.fwmark); err != nil {
			d.log.Warn("cannot set the firewall mark on the new sockets", "err", err)
		}
	}
}

// Fwmark returns the firewall mark of the device's UDP sockets, 0 for none.
func (d *Device) Fwmark() uint32 {
	d.net.mu.Lock()
	defer d.net.mu.Unlock()
	return d.net.fwmark
}

// SetFwmark sets the firewall mark of the device's UDP sockets; 0 removes
// it. The mark survives a change of listen port.
func (d *Device) SetFwmark(mark uint32) error {
	d.net.mu.Lock()
	defer d.net.mu.Unlock()
	if d.isClosed() {
		return fmt.Errorf("set fwmark: %w", ErrClosed)
	}
	if err := d.bind.SetMark(mark); err != nil {
		return fmt.Errorf("set fwmark %d: %w", mark, err)
	}
	d.net.fwmark = mark
	return nil
}

// SetAllowedIPs makes prefixes (masked; duplicates count once) the allowed
// IPs of the peer with key pub, replacing the ones it had. It changes
// nothing when a prefix belongs to another peer (ErrPrefixClaimed) or the
// peer is unknown (ErrUnknownPeer). It returns the prefixes the peer gained
// and lost, for whoever keeps routes in step.
func (d *Device) SetAllowedIPs(
	pub handshake.PublicKey,
	prefixes []netip.Prefix,
) (added, removed []netip.Prefix, err error) {
	want := make([]netip.Prefix, 0, len(prefixes))
	for _, pfx := range prefixes {
		if !pfx.IsValid() {
			return nil, nil, fmt.Errorf("set allowed ips: invalid prefix %s", pfx)
		}
		if m := pfx.Masked(); !slices.Contains(want, m) {
			want = append(want, m)
		}
	}
	d.peersMu.Lock()
	defer d.peersMu.Unlock()
	p := d.peers[pub]
	if p == nil {
		return nil, nil, fmt.Errorf("set allowed ips: %w", ErrUnknownPeer)
	}
	for _, pfx := range want {
		if owner, ok := d.claimed[pfx]; ok && owner != p {
			return nil, nil, fmt.Errorf("set allowed ips of %q: %s held by %q: %w",
				p.name, pfx, owner.name, ErrPrefixClaimed)
		}
	}
	for _, pfx := range p.allowedIPs {
		if !slices.Contains(want, pfx) {
			delete(d.claimed, pfx)
			d.allowed.Remove(pfx)
			removed = append(removed, pfx)
		}
	}
	for _, pfx := range want {
		if !slices.Contains(p.allowedIPs, pfx) {
			d.claimed[pfx] = p
			d.allowed.Insert(pfx, p)
			added = append(added, pfx)
		}
	}
	p.allowedIPs = want
	return added, removed, nil
}

// AllowedIPs returns the peer's allowed IPs, in the order they were set.
func (p *Peer) AllowedIPs() []netip.Prefix {
	p.device.peersMu.RLock()
	defer p.device.peersMu.RUnlock()
	return slices.Clone(p.allowedIPs)
}

// Endpoint returns where packets to the peer go, as status shows it, or
// "" when no endpoint is known yet.
func (p *Peer) Endpoint() string {
	if ep := p.getEndpoint(); ep != nil {
		return ep.DstToString()
	}
	return ""
}

// PresharedKey returns a copy of the peer's preshared key, zero when it has
// none. The caller must erase the copy when done with it.
func (p *Peer) PresharedKey() handshake.PresharedKey {
	p.hsMu.Lock()
	defer p.hsMu.Unlock()
	return p.psk
}

// PersistentKeepalive returns the persistent keepalive interval, 0 when
// off.
func (p *Peer) PersistentKeepalive() time.Duration {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.keepalive
}

// LastHandshake returns when the last handshake with the peer completed,
// or the zero time when none has.
func (p *Peer) LastHandshake() time.Time {
	if ns := p.lastHandshake.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// Transfer returns the bytes received from and sent to the peer, counting
// whole transport messages as WireGuard does.
func (p *Peer) Transfer() (rx, tx uint64) {
	return p.rxBytes.Load(), p.txBytes.Load()
}

// SendKeepalive sends an empty message to the peer at once, or starts a
// handshake when there is no session to send it on, as WireGuard does
// when a persistent keepalive is switched on.
func (p *Peer) SendKeepalive() { p.sendKeepalive() }
