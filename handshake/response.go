package handshake

import (
	"encoding/binary"
	"fmt"
)

// CreateResponse answers the initiation ConsumeInitiation accepted: it
// writes the response message, MACs included, to dst[:MessageResponseSize]
// and returns the responder's Session and the message length. localIndex
// is the sender index the caller has reserved for the session. The
// handshake's secrets are erased before it returns, success or not.
func (h *Handshake) CreateResponse(dst []byte, localIndex uint32) (Session, int, error) {
	if len(dst) < MessageResponseSize {
		return Session{}, 0, fmt.Errorf("create response: %w", ErrShortBuffer)
	}
	msg := dst[:MessageResponseSize]

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateInitiationConsumed {
		return Session{}, 0, fmt.Errorf("create response: %w", ErrNoInitiation)
	}
	if err := h.writeResponse(msg, localIndex); err != nil {
		h.clearLocked()
		return Session{}, 0, fmt.Errorf("create response: %w", err)
	}
	h.addMACs(msg, responseOffsetMAC1)
	return h.deriveSession(false), MessageResponseSize, nil
}

// writeResponse performs the responder's half of the second message and
// writes everything but the MACs. h.mu must be held.
func (h *Handshake) writeResponse(msg []byte, localIndex uint32) error {
	var tau, key [hashSize]byte
	var ss [KeySize]byte
	defer clear(tau[:])
	defer clear(key[:])
	defer clear(ss[:])

	binary.LittleEndian.PutUint32(msg, h.protocol.TypeResponse)
	binary.LittleEndian.PutUint32(msg[responseOffsetSender:], localIndex)
	binary.LittleEndian.PutUint32(msg[responseOffsetReceiver:], h.remoteIndex)

	// e
	var err error
	if h.localEphemeral, err = newEphemeral(h.random); err != nil {
		return err
	}
	ephemeral := msg[responseOffsetEphemeral:responseOffsetEmpty]
	copy(ephemeral, h.localEphemeral.PublicKey().Bytes())
	mixKey(&h.chainKey, ephemeral)
	mixHash(&h.hash, ephemeral)

	// ee: DH(e_r, e_i)
	if err := dh(&ss, h.localEphemeral, h.remoteEphemeral[:]); err != nil {
		return err
	}
	mixKey(&h.chainKey, ss[:])

	// se: DH(e_r, s_i)
	if err := dh(&ss, h.localEphemeral, h.remote[:]); err != nil {
		return err
	}
	mixKey(&h.chainKey, ss[:])

	// psk: the preshared key, zero if none, goes into both chains.
	kdf3(&h.chainKey, &tau, &key, h.chainKey[:], h.presharedKey[:])
	mixHash(&h.hash, tau[:])

	// {}: an empty payload whose tag authenticates the whole transcript.
	empty := msg[responseOffsetEmpty:responseOffsetMAC1]
	seal(empty, &key, nil, h.hash[:])
	mixHash(&h.hash, empty)

	h.localIndex = localIndex
	return nil
}

// ConsumeResponse completes a handshake this side initiated. The message
// type selects the protocol. It checks mac1 against id, the identity the
// response is addressed to, finds the handshake by the
// response's receiver index with lookup (which may return nil), and
// requires that handshake to speak the message's protocol and to have an
// initiation in flight under that index. It returns the handshake and the
// initiator's Session, and erases the handshake's secrets. A response that
// fails to authenticate leaves the handshake in flight, so that a forged
// response cannot cancel it.
func ConsumeResponse(
	id *Identity,
	msg []byte,
	lookup func(receiverIndex uint32) *Handshake,
) (*Handshake, Session, error) {
	h, s, err := consumeResponse(id, msg, lookup)
	if err != nil {
		return nil, Session{}, fmt.Errorf("consume response: %w", err)
	}
	return h, s, nil
}

// consumeResponse does the work of ConsumeResponse.
func consumeResponse(
	id *Identity,
	msg []byte,
	lookup func(receiverIndex uint32) *Handshake,
) (*Handshake, Session, error) {
	p, err := checkMessage(msg, kindResponse)
	if err != nil {
		return nil, Session{}, err
	}
	if !id.verifyMAC1(p, msg, responseOffsetMAC1) {
		return nil, Session{}, ErrBadMAC1
	}
	receiver := binary.LittleEndian.Uint32(msg[responseOffsetReceiver:])
	h := lookup(receiver)
	if h == nil {
		return nil, Session{}, ErrUnknownIndex
	}
	if h.protocol != p {
		return nil, Session{}, ErrProtocolMismatch
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != stateInitiationCreated || h.localIndex != receiver {
		return nil, Session{}, ErrUnexpectedResponse
	}

	// Work on copies, committed only once the response authenticates.
	var hash, chainKey, tau, key [hashSize]byte
	var ss [KeySize]byte
	defer clear(hash[:])
	defer clear(chainKey[:])
	defer clear(tau[:])
	defer clear(key[:])
	defer clear(ss[:])
	hash = h.hash
	chainKey = h.chainKey

	// e
	ephemeral := msg[responseOffsetEphemeral:responseOffsetEmpty]
	mixKey(&chainKey, ephemeral)
	mixHash(&hash, ephemeral)

	// ee: DH(e_i, e_r)
	if err := dh(&ss, h.localEphemeral, ephemeral); err != nil {
		return nil, Session{}, err
	}
	mixKey(&chainKey, ss[:])

	// se: DH(s_i, e_r)
	if err := dh(&ss, h.id.static, ephemeral); err != nil {
		return nil, Session{}, err
	}
	mixKey(&chainKey, ss[:])

	// psk
	kdf3(&chainKey, &tau, &key, chainKey[:], h.presharedKey[:])
	mixHash(&hash, tau[:])

	// {}
	empty := msg[responseOffsetEmpty:responseOffsetMAC1]
	if err := open(nil, &key, empty, hash[:]); err != nil {
		return nil, Session{}, err
	}

	h.chainKey = chainKey
	h.remoteIndex = binary.LittleEndian.Uint32(msg[responseOffsetSender:])
	return h, h.deriveSession(true), nil
}
