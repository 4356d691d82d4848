package handshake

import (
	"crypto/ecdh"
	"crypto/subtle"
	"fmt"
	"log/slog"
)

// Identity is the local static key pair, with the keys derived from its
// public half that the receiving side of mac1 and of cookie replies needs,
// for both protocols. It is immutable once built and safe for concurrent
// use; to change the private key, build a new Identity and new Handshakes.
type Identity struct {
	private PrivateKey
	static  *ecdh.PrivateKey // private, ready for Diffie-Hellman
	public  PublicKey
	keys    [protocolCount]macKeys // indexed by Protocol.index
}

// macKeys are the two keys a protocol derives from a static public key.
type macKeys struct {
	mac1   [hashSize]byte // HASH(label-mac1 || public): keys mac1
	cookie [hashSize]byte // HASH(label-cookie || public): seals cookie replies
}

// deriveMACKeys computes the mac1 and cookie keys of pub in protocol p.
func deriveMACKeys(p *Protocol, pub *PublicKey) macKeys {
	return macKeys{
		mac1:   hashLabel(p.labelMAC1, pub),
		cookie: hashLabel(p.labelCookie, pub),
	}
}

// NewIdentity builds the identity of the private key priv. It keeps a
// clamped copy; the caller may erase priv afterwards.
func NewIdentity(priv PrivateKey) *Identity {
	id := &Identity{private: priv}
	id.private.clamp()
	id.static = newECDHKey(&id.private)
	id.public = PublicKey(id.static.PublicKey().Bytes())
	for _, p := range [...]*Protocol{Hop, WireGuard} {
		id.keys[p.index] = deriveMACKeys(p, &id.public)
	}
	return id
}

// PublicKey returns the identity's public key.
func (id *Identity) PublicKey() PublicKey { return id.public }

// PrivateKey returns the identity's private key, clamped, as the
// configuration protocol reports it.
func (id *Identity) PrivateKey() PrivateKey { return id.private }

// Zero erases the private key and drops the X25519 copy of it. Call it
// only once no Handshake built on the identity is in use.
func (id *Identity) Zero() {
	id.private.Zero()
	id.static = nil
}

// Format prints the identity's public key only, for every fmt verb, so that
// printing the struct cannot reveal the private key.
func (id Identity) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "identity(%s)", id.public)
}

// verifyMAC1 reports whether the mac1 of msg, at off, is the one the
// identity's public key calls for in protocol p.
func (id *Identity) verifyMAC1(p *Protocol, msg []byte, off int) bool {
	var want [macSize]byte
	mac(&want, id.keys[p.index].mac1[:], msg[:off])
	return subtle.ConstantTimeCompare(want[:], msg[off:off+macSize]) == 1
}

// Session is the outcome of a completed handshake: the transport secrets
// for each direction and the indices that name the session on the wire.
// Its fmt and slog forms show the indices and protocol, never the secrets.
type Session struct {
	// Send keys messages this side sends; Receive keys the ones it
	// receives. The initiator's Send is the responder's Receive. They
	// are left out of JSON.
	Send    [KeySize]byte `json:"-"`
	Receive [KeySize]byte `json:"-"`

	// LocalIndex is the index the peer puts in the receiver field of
	// messages to us; RemoteIndex is the one we put in messages to it.
	LocalIndex, RemoteIndex uint32

	// Initiator reports whether this side sent the initiation.
	Initiator bool

	// Protocol is the protocol the handshake spoke.
	Protocol *Protocol
}

// Zero erases the transport secrets.
func (s *Session) Zero() {
	clear(s.Send[:])
	clear(s.Receive[:])
}

// Format prints the session's indices, role and protocol, never its keys.
func (s Session) Format(f fmt.State, _ rune) {
	name := "none"
	if s.Protocol != nil {
		name = s.Protocol.Name
	}
	_, _ = fmt.Fprintf(f, "session(%s local=%d remote=%d initiator=%t)",
		name, s.LocalIndex, s.RemoteIndex, s.Initiator)
}

// LogValue keeps the secrets out of structured logs.
func (s Session) LogValue() slog.Value {
	name := "none"
	if s.Protocol != nil {
		name = s.Protocol.Name
	}
	return slog.GroupValue(
		slog.String("protocol", name),
		slog.Uint64("local_index", uint64(s.LocalIndex)),
		slog.Uint64("remote_index", uint64(s.RemoteIndex)),
		slog.Bool("initiator", s.Initiator),
	)
}
