package handshake

import (
	"encoding/binary"
	"fmt"

	"golang.zx2c4.com/wireguard/tai64n"
)

// CreateInitiation starts a handshake: it writes the initiation message,
// mac1 and (while a cookie from the peer is fresh) mac2 included, to
// dst[:MessageInitiationSize] and returns its length. localIndex is the
// sender index the caller has reserved for this handshake; the response
// will name it as its receiver. Any handshake already in flight is
// abandoned.
func (h *Handshake) CreateInitiation(dst []byte, localIndex uint32) (int, error) {
	if len(dst) < MessageInitiationSize {
		return 0, fmt.Errorf("create initiation: %w", ErrShortBuffer)
	}
	msg := dst[:MessageInitiationSize]

	h.mu.Lock()
	defer h.mu.Unlock()
	h.clearLocked()
	if err := h.writeInitiation(msg, localIndex); err != nil {
		h.clearLocked()
		return 0, fmt.Errorf("create initiation: %w", err)
	}
	h.addMACs(msg, initiationOffsetMAC1)
	return MessageInitiationSize, nil
}

// writeInitiation performs the initiator's half of the first message and
// writes everything but the MACs. h.mu must be held.
func (h *Handshake) writeInitiation(msg []byte, localIndex uint32) error {
	if isZero(h.staticStatic[:]) {
		return ErrInvalidPublicKey
	}
	var key [hashSize]byte
	var ss [KeySize]byte
	defer clear(key[:])
	defer clear(ss[:])

	// The responder's static key is known in advance: h = HASH(h0 || s_r).
	h.chainKey = h.protocol.initialChainKey
	h.hash = h.protocol.initialHash
	mixHash(&h.hash, h.remote[:])

	binary.LittleEndian.PutUint32(msg, h.protocol.TypeInitiation)
	binary.LittleEndian.PutUint32(msg[initiationOffsetSender:], localIndex)

	// e: a fresh ephemeral key, sent in the clear.
	var err error
	if h.localEphemeral, err = newEphemeral(h.random); err != nil {
		return err
	}
	ephemeral := msg[initiationOffsetEphemeral:initiationOffsetStatic]
	copy(ephemeral, h.localEphemeral.PublicKey().Bytes())
	mixKey(&h.chainKey, ephemeral)
	mixHash(&h.hash, ephemeral)

	// es: DH(e_i, s_r) keys the encryption of our static key.
	if err := dh(&ss, h.localEphemeral, h.remote[:]); err != nil {
		return err
	}
	kdf2(&h.chainKey, &key, h.chainKey[:], ss[:])

	// s: our static public key, sealed.
	static := msg[initiationOffsetStatic:initiationOffsetTimestamp]
	seal(static, &key, h.id.public[:], h.hash[:])
	mixHash(&h.hash, static)

	// ss: DH(s_i, s_r), precomputed, keys the timestamp.
	kdf2(&h.chainKey, &key, h.chainKey[:], h.staticStatic[:])

	// {timestamp}: proves freshness to the responder.
	stamp := h.timestamps.Next()
	timestamp := msg[initiationOffsetTimestamp:initiationOffsetMAC1]
	seal(timestamp, &key, stamp[:], h.hash[:])
	mixHash(&h.hash, timestamp)

	h.localIndex = localIndex
	h.state = stateInitiationCreated
	return nil
}

// ConsumeInitiation processes an initiation received before any peer is
// known. The message type selects the protocol. It checks mac1 (mac2 is the
// caller's decision: check it with a CookieChecker when under load),
// decrypts the initiator's static key, finds the peer's handshake with
// lookup (which may return nil for an unknown key), and requires that
// handshake to speak the message's protocol, the timestamp to be strictly
// newer than the last accepted from that peer, and the last accepted
// initiation to be more than HandshakeInitiationRate old. On success the
// handshake is ready for CreateResponse; on error nothing has changed and
// the returned handshake is nil.
func ConsumeInitiation(
	id *Identity,
	msg []byte,
	lookup func(PublicKey) *Handshake,
) (*Handshake, error) {
	h, err := consumeInitiation(id, msg, lookup)
	if err != nil {
		return nil, fmt.Errorf("consume initiation: %w", err)
	}
	return h, nil
}

// consumeInitiation does the work of ConsumeInitiation.
func consumeInitiation(
	id *Identity,
	msg []byte,
	lookup func(PublicKey) *Handshake,
) (*Handshake, error) {
	p, err := checkMessage(msg, kindInitiation)
	if err != nil {
		return nil, err
	}
	if !id.verifyMAC1(p, msg, initiationOffsetMAC1) {
		return nil, ErrBadMAC1
	}

	var hash, chainKey, key [hashSize]byte
	var ss [KeySize]byte
	defer clear(hash[:])
	defer clear(chainKey[:])
	defer clear(key[:])
	defer clear(ss[:])

	// We are the responder: h = HASH(h0 || s_r) with our own static key.
	chainKey = p.initialChainKey
	hash = p.initialHash
	mixHash(&hash, id.public[:])

	// e
	ephemeral := msg[initiationOffsetEphemeral:initiationOffsetStatic]
	mixKey(&chainKey, ephemeral)
	mixHash(&hash, ephemeral)

	// es: DH(s_r, e_i)
	if err := dh(&ss, id.static, ephemeral); err != nil {
		return nil, err
	}
	kdf2(&chainKey, &key, chainKey[:], ss[:])

	// s: the initiator's static key, which names the peer.
	var remote PublicKey
	static := msg[initiationOffsetStatic:initiationOffsetTimestamp]
	if err := open(remote[:], &key, static, hash[:]); err != nil {
		return nil, err
	}
	mixHash(&hash, static)

	h := lookup(remote)
	if h == nil {
		return nil, ErrUnknownPeer
	}

	h.mu.Lock()
	defer h.mu.Unlock()

	// ss: proves the initiator holds the static private key.
	if isZero(h.staticStatic[:]) {
		return nil, ErrInvalidPublicKey
	}
	kdf2(&chainKey, &key, chainKey[:], h.staticStatic[:])

	// {timestamp}
	var stamp tai64n.Timestamp
	timestamp := msg[initiationOffsetTimestamp:initiationOffsetMAC1]
	if err := open(stamp[:], &key, timestamp, hash[:]); err != nil {
		return nil, err
	}
	mixHash(&hash, timestamp)

	// Only now is the sender authenticated. Anyone may encrypt a known
	// static key to us under either protocol, so a mismatch counts only
	// now, and changes nothing of the handshake's state.
	if h.protocol != p {
		return nil, ErrProtocolMismatch
	}
	// Refuse replays and floods.
	if !stamp.After(h.lastTimestamp) {
		return nil, ErrReplayedInitiation
	}
	now := h.now()
	if now.Sub(h.lastInitiation) <= HandshakeInitiationRate {
		return nil, ErrInitiationFlood
	}

	h.clearLocked()
	h.hash = hash
	h.chainKey = chainKey
	copy(h.remoteEphemeral[:], ephemeral)
	h.remoteIndex = binary.LittleEndian.Uint32(msg[initiationOffsetSender:])
	h.lastTimestamp = stamp
	h.lastInitiation = now
	h.state = stateInitiationConsumed
	return h, nil
}
