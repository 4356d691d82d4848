package handshake

import (
	"crypto/ecdh"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tai64n"
)

// TimestampSource supplies the TAI64N timestamps initiations carry. A
// responder accepts an initiation only if its timestamp is strictly newer
// than the last one it accepted from the same peer, so the source must
// never go backwards, not even across a restart of the process.
type TimestampSource interface {
	// Next returns the timestamp for the next initiation.
	Next() tai64n.Timestamp
}

// WallClock is the TimestampSource that reads the system clock, as
// WireGuard does. tai64n.Now rounds the nanoseconds down to about 16 ms so
// as not to leak fine timing, so two initiations within one such step carry
// the same timestamp and the peer refuses the second as a replay.
type WallClock struct{}

// Next returns the current time as a TAI64N timestamp.
func (WallClock) Next() tai64n.Timestamp { return tai64n.Now() }

// handshakeState is where a Handshake stands in the one round trip.
type handshakeState uint8

const (
	// stateIdle: no handshake in flight; no ephemeral secret is held.
	stateIdle handshakeState = iota
	// stateInitiationCreated: we sent an initiation and await the response.
	stateInitiationCreated
	// stateInitiationConsumed: we accepted an initiation and owe a response.
	stateInitiationConsumed
)

// Handshake is the Noise state with one remote peer, in one protocol. It
// is safe for concurrent use: every method takes its lock.
//
// The long-term configuration (local identity, remote static key,
// protocol) never changes; the preshared key can be replaced with
// SetPresharedKey. Between messages the handshake holds the chaining key,
// the transcript hash and one ephemeral key; the first two are erased and
// the third dropped as soon as a Session is derived or the handshake is
// cleared.
type Handshake struct {
	// Fixed at construction; read without the lock.
	id         *Identity
	protocol   *Protocol
	remote     PublicKey
	peerKeys   macKeys         // mac1 and cookie keys of the remote static key
	timestamps TimestampSource // timestamps of our initiations
	now        func() time.Time
	random     io.Reader // source of ephemeral keys and nothing else

	mu sync.Mutex // guards every field below

	state        handshakeState
	presharedKey PresharedKey
	staticStatic [KeySize]byte // DH(local static, remote static); zero if unusable

	// The in-flight handshake, erased when it completes or is cleared.
	hash            [hashSize]byte   // transcript hash
	chainKey        [hashSize]byte   // chaining key
	localEphemeral  *ecdh.PrivateKey // nil when none
	remoteEphemeral PublicKey
	localIndex      uint32 // our sender index in the message we last wrote
	remoteIndex     uint32 // the peer's sender index from its message

	// Replay and flood protection for initiations from the peer.
	lastTimestamp  tai64n.Timestamp // newest timestamp accepted
	lastInitiation time.Time        // when the last initiation was accepted

	// mac2 for our messages: the cookie the peer gave us and the mac1 it
	// must be bound to.
	lastMAC1    [macSize]byte
	hasLastMAC1 bool
	cookie      [macSize]byte
	cookieSet   time.Time
}

// NewHandshake prepares a handshake between the identity id and the peer
// whose static public key is remote, speaking protocol p (Hop or
// WireGuard). psk may be zero. ts supplies initiation timestamps; nil means
// WallClock. If remote is a point of small order, the handshake can never
// complete and CreateInitiation and ConsumeInitiation fail with
// ErrInvalidPublicKey.
func NewHandshake(
	id *Identity,
	remote PublicKey,
	psk PresharedKey,
	p *Protocol,
	ts TimestampSource,
) *Handshake {
	if ts == nil {
		ts = WallClock{}
	}
	h := &Handshake{
		id:           id,
		protocol:     p,
		remote:       remote,
		peerKeys:     deriveMACKeys(p, &remote),
		timestamps:   ts,
		now:          time.Now,
		random:       rand.Reader,
		presharedKey: psk,
	}
	if err := dh(&h.staticStatic, id.static, remote[:]); err != nil {
		clear(h.staticStatic[:])
	}
	return h
}

// Format prints the peer's public key and the protocol, never the
// handshake's secrets, for every fmt verb.
func (h *Handshake) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "handshake(%s %s)", h.protocol, h.remote)
}

// Remote returns the peer's static public key.
func (h *Handshake) Remote() PublicKey { return h.remote }

// Protocol returns the protocol the handshake speaks.
func (h *Handshake) Protocol() *Protocol { return h.protocol }

// SetPresharedKey replaces the preshared key; the next handshake uses it.
// The caller may erase psk afterwards.
func (h *Handshake) SetPresharedKey(psk PresharedKey) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.presharedKey = psk
}

// Clear abandons any handshake in flight and erases its secrets. The
// configuration, the replay state and any cookie are kept, so the
// handshake can start again.
func (h *Handshake) Clear() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clearLocked()
}

// Zero erases every secret the handshake holds, the preshared key and the
// static-static secret included. The handshake cannot be used afterwards.
func (h *Handshake) Zero() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.clearLocked()
	h.presharedKey.Zero()
	clear(h.staticStatic[:])
	clear(h.cookie[:])
	h.cookieSet = time.Time{}
}

// clearLocked erases the in-flight handshake. h.mu must be held.
func (h *Handshake) clearLocked() {
	clear(h.hash[:])
	clear(h.chainKey[:])
	h.localEphemeral = nil
	clear(h.remoteEphemeral[:])
	h.localIndex = 0
	h.remoteIndex = 0
	h.state = stateIdle
}

// deriveSession splits the final chaining key into the two transport
// secrets, the initiator's sending secret first, and erases the in-flight
// handshake. h.mu must be held.
func (h *Handshake) deriveSession(initiator bool) Session {
	s := Session{
		LocalIndex:  h.localIndex,
		RemoteIndex: h.remoteIndex,
		Initiator:   initiator,
		Protocol:    h.protocol,
	}
	if initiator {
		kdf2(&s.Send, &s.Receive, h.chainKey[:], nil)
	} else {
		kdf2(&s.Receive, &s.Send, h.chainKey[:], nil)
	}
	h.clearLocked()
	return s
}
