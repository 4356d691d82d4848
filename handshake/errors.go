package handshake

import "errors"

// Sentinel errors. Functions of this package wrap them with the name of the
// operation that failed; test for them with [errors.Is]. No error of this
// package ever contains key material or the bytes of a message.
var (
	// ErrBadKey reports a key string that is not a well-formed key.
	ErrBadKey = errors.New("handshake: bad key")

	// ErrInvalidPublicKey reports a public key for which Curve25519 gives
	// the all-zero shared secret (a point of small order).
	ErrInvalidPublicKey = errors.New("handshake: invalid public key")

	// ErrShortBuffer reports a destination buffer too small for the
	// message to be written.
	ErrShortBuffer = errors.New("handshake: destination buffer too short")

	// ErrShortMessage reports a message shorter than its type requires.
	ErrShortMessage = errors.New("handshake: message too short")

	// ErrLongMessage reports a message longer than its type allows.
	ErrLongMessage = errors.New("handshake: message too long")

	// ErrWrongType reports a message whose type is not one of the
	// handshake types expected at that point.
	ErrWrongType = errors.New("handshake: wrong message type")

	// ErrBadMAC1 reports a message whose mac1 does not verify.
	ErrBadMAC1 = errors.New("handshake: bad mac1")

	// ErrUnknownPeer reports an initiation from a static key that the
	// lookup function does not know.
	ErrUnknownPeer = errors.New("handshake: unknown peer")

	// ErrUnknownIndex reports a response whose receiver index the lookup
	// function does not know.
	ErrUnknownIndex = errors.New("handshake: unknown receiver index")

	// ErrProtocolMismatch reports a message of one protocol (Hop or
	// WireGuard) for a peer configured to speak the other.
	ErrProtocolMismatch = errors.New("handshake: protocol mismatch")

	// ErrReplayedInitiation reports an initiation whose timestamp is not
	// strictly newer than the last one accepted from the same peer.
	ErrReplayedInitiation = errors.New("handshake: replayed initiation")

	// ErrInitiationFlood reports an initiation that arrived sooner than
	// HandshakeInitiationRate after the last one accepted from the peer.
	ErrInitiationFlood = errors.New("handshake: initiation flood")

	// ErrDecrypt reports a sealed field that did not authenticate.
	ErrDecrypt = errors.New("handshake: decryption failed")

	// ErrUnexpectedResponse reports a response for a handshake that has
	// no initiation of ours in flight under that index.
	ErrUnexpectedResponse = errors.New("handshake: unexpected response")

	// ErrNoInitiation reports a call to CreateResponse without a
	// consumed initiation to answer.
	ErrNoInitiation = errors.New("handshake: no initiation to answer")

	// ErrBadCookie reports a cookie reply that does not authenticate
	// against the last mac1 sent.
	ErrBadCookie = errors.New("handshake: bad cookie reply")
)
