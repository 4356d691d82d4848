package handshake

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/blake2s"
)

// Protocol describes one instance of the handshake: its message types and
// the strings that seed its hash chain and MAC keys. Only the two values
// Hop and WireGuard exist; compare them by pointer. Treat the exported
// fields as read-only.
type Protocol struct {
	// Name names the protocol in logs: "hop" or "wireguard".
	Name string

	// TypeInitiation, TypeResponse, TypeCookieReply and TypeTransport
	// are the values of the little-endian type field that open the
	// protocol's four messages.
	TypeInitiation  uint32
	TypeResponse    uint32
	TypeCookieReply uint32
	TypeTransport   uint32

	index           int            // slot of the protocol's keys in an Identity
	labelMAC1       string         // label of the mac1 key
	labelCookie     string         // label of the cookie encryption key
	initialChainKey [hashSize]byte // HASH(construction)
	initialHash     [hashSize]byte // HASH(initialChainKey || identifier)
}

// Slots of the protocols in per-protocol tables.
const (
	hopIndex = iota
	wireGuardIndex
	protocolCount
)

var (
	// Hop is hoprd's own protocol. Its handshakes are refused by
	// WireGuard implementations, and WireGuard's by it.
	Hop = newProtocol(
		"hop", hopIndex, HopIdentifier, HopLabelMAC1, HopLabelCookie,
		HopTypeInitiation, HopTypeResponse, HopTypeCookieReply, HopTypeTransport,
	)

	// WireGuard is the WireGuard protocol, compatible byte for byte with
	// wireguard-go and the Linux kernel module.
	WireGuard = newProtocol(
		"wireguard", wireGuardIndex,
		WireGuardIdentifier, WireGuardLabelMAC1, WireGuardLabelCookie,
		WireGuardTypeInitiation, WireGuardTypeResponse,
		WireGuardTypeCookieReply, WireGuardTypeTransport,
	)
)

// newProtocol builds a descriptor and precomputes the start of its hash
// chain.
func newProtocol(
	name string,
	index int,
	identifier, labelMAC1, labelCookie string,
	initiation, response, cookieReply, transport uint32,
) *Protocol {
	p := &Protocol{
		Name:            name,
		TypeInitiation:  initiation,
		TypeResponse:    response,
		TypeCookieReply: cookieReply,
		TypeTransport:   transport,
		index:           index,
		labelMAC1:       labelMAC1,
		labelCookie:     labelCookie,
	}
	p.initialChainKey = blake2s.Sum256([]byte(NoiseConstruction))
	p.initialHash = p.initialChainKey
	mixHash(&p.initialHash, []byte(identifier))
	return p
}

// String returns the protocol's name.
func (p *Protocol) String() string { return p.Name }

// ProtocolForType reports which protocol the message type t belongs to.
func ProtocolForType(t uint32) (*Protocol, bool) {
	switch t {
	case WireGuardTypeInitiation, WireGuardTypeResponse,
		WireGuardTypeCookieReply, WireGuardTypeTransport:
		return WireGuard, true
	case HopTypeInitiation, HopTypeResponse, HopTypeCookieReply, HopTypeTransport:
		return Hop, true
	}
	return nil, false
}

// messageKind names the three handshake messages independently of the
// protocol.
type messageKind int

const (
	kindInitiation messageKind = iota
	kindResponse
	kindCookieReply
)

// typeOf returns the protocol's type value for a kind of message.
func (p *Protocol) typeOf(kind messageKind) uint32 {
	switch kind {
	case kindInitiation:
		return p.TypeInitiation
	case kindResponse:
		return p.TypeResponse
	default:
		return p.TypeCookieReply
	}
}

// sizeOf returns the exact length of a kind of message.
func sizeOf(kind messageKind) int {
	switch kind {
	case kindInitiation:
		return MessageInitiationSize
	case kindResponse:
		return MessageResponseSize
	default:
		return MessageCookieReplySize
	}
}

// macOffset returns where mac1 starts in a message of the kind; mac2
// follows it and ends the message.
func macOffset(kind messageKind) int {
	if kind == kindInitiation {
		return initiationOffsetMAC1
	}
	return responseOffsetMAC1
}

// checkMessage checks that msg is a message of the given kind in either
// protocol, of exactly the right length, and returns its protocol.
func checkMessage(msg []byte, kind messageKind) (*Protocol, error) {
	if len(msg) < typeSize {
		return nil, ErrShortMessage
	}
	p, ok := ProtocolForType(binary.LittleEndian.Uint32(msg))
	if !ok || binary.LittleEndian.Uint32(msg) != p.typeOf(kind) {
		return nil, ErrWrongType
	}
	switch size := sizeOf(kind); {
	case len(msg) < size:
		return nil, ErrShortMessage
	case len(msg) > size:
		return nil, ErrLongMessage
	}
	return p, nil
}

// classifyMAC returns the protocol and kind of msg if it is an initiation
// or a response of the right length: the messages that carry mac1 and mac2.
func classifyMAC(msg []byte) (*Protocol, messageKind, bool) {
	for _, kind := range [...]messageKind{kindInitiation, kindResponse} {
		if p, err := checkMessage(msg, kind); err == nil {
			return p, kind, true
		}
	}
	return nil, 0, false
}

// CookieReplyReceiver returns the receiver index of a cookie reply of
// either protocol: the sender index of the message the reply answers, by
// which the caller finds the Handshake to pass the reply to.
func CookieReplyReceiver(msg []byte) (uint32, error) {
	if _, err := checkMessage(msg, kindCookieReply); err != nil {
		return 0, fmt.Errorf("read cookie reply: %w", err)
	}
	return binary.LittleEndian.Uint32(msg[cookieReplyOffsetReceiver:]), nil
}
