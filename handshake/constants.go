package handshake

import (
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.zx2c4.com/wireguard/tai64n"
)

// Names that seed the handshake hash chain and the MAC keys. The Noise
// construction name is shared; the identifier (the Noise prologue) and the
// two labels tell the protocols apart.
const (
	// NoiseConstruction is the Noise protocol name both protocols hash
	// into the initial chaining key.
	NoiseConstruction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"

	// WireGuardIdentifier is WireGuard's identifier string.
	WireGuardIdentifier = "WireGuard v1 zx2c4 Jason@zx2c4.com"
	// WireGuardLabelMAC1 is WireGuard's label for the mac1 key.
	WireGuardLabelMAC1 = "mac1----"
	// WireGuardLabelCookie is WireGuard's label for the cookie key.
	WireGuardLabelCookie = "cookie--"

	// HopIdentifier is hoprd's identifier string.
	HopIdentifier = "hoprd v1 hop-keyed overlay 2026"
	// HopLabelMAC1 is hoprd's label for the mac1 key.
	HopLabelMAC1 = "hop-mac1"
	// HopLabelCookie is hoprd's label for the cookie key.
	HopLabelCookie = "hop-cook"
)

// Message types: the first four bytes of every message, little-endian.
const (
	// WireGuardTypeInitiation marks a WireGuard handshake initiation.
	WireGuardTypeInitiation uint32 = 1
	// WireGuardTypeResponse marks a WireGuard handshake response.
	WireGuardTypeResponse uint32 = 2
	// WireGuardTypeCookieReply marks a WireGuard cookie reply.
	WireGuardTypeCookieReply uint32 = 3
	// WireGuardTypeTransport marks a WireGuard transport data message.
	WireGuardTypeTransport uint32 = 4

	// HopTypeInitiation marks a hoprd handshake initiation.
	HopTypeInitiation uint32 = 17
	// HopTypeResponse marks a hoprd handshake response.
	HopTypeResponse uint32 = 18
	// HopTypeCookieReply marks a hoprd cookie reply.
	HopTypeCookieReply uint32 = 19
	// HopTypeTransport marks a hoprd transport data message.
	HopTypeTransport uint32 = 20
)

// Sizes of keys and of the handshake messages, in bytes.
const (
	// KeySize is the size of every key: Curve25519 private and public
	// keys, preshared keys and transport secrets.
	KeySize = 32

	// MessageInitiationSize is the size of a handshake initiation.
	MessageInitiationSize = 148
	// MessageResponseSize is the size of a handshake response.
	MessageResponseSize = 92
	// MessageCookieReplySize is the size of a cookie reply.
	MessageCookieReplySize = 64

	// TimestampSize is the size of the TAI64N timestamp an initiation
	// carries.
	TimestampSize = tai64n.TimestampSize

	hashSize        = blake2s.Size                // HASH output and chaining key
	macSize         = blake2s.Size128             // mac1, mac2 and the cookie
	tagSize         = chacha20poly1305.Overhead   // AEAD authentication tag
	cookieNonceSize = chacha20poly1305.NonceSizeX // nonce of a cookie reply
	typeSize        = 4                           // the message type field
	indexSize       = 4                           // a sender or receiver index
	encryptedStatic = KeySize + tagSize           // the initiator's sealed static key
	encryptedTime   = TimestampSize + tagSize     // the initiation's sealed timestamp
	encryptedEmpty  = tagSize                     // the response's sealed empty payload
	encryptedCookie = macSize + tagSize           // a cookie reply's sealed cookie
)

// Field offsets of the handshake initiation:
//
//	type(4) sender(4) ephemeral(32) static(32+16) timestamp(12+16) mac1(16) mac2(16)
const (
	initiationOffsetSender    = typeSize
	initiationOffsetEphemeral = initiationOffsetSender + indexSize
	initiationOffsetStatic    = initiationOffsetEphemeral + KeySize
	initiationOffsetTimestamp = initiationOffsetStatic + encryptedStatic
	initiationOffsetMAC1      = initiationOffsetTimestamp + encryptedTime
	initiationOffsetMAC2      = initiationOffsetMAC1 + macSize
)

// Field offsets of the handshake response:
//
//	type(4) sender(4) receiver(4) ephemeral(32) empty(0+16) mac1(16) mac2(16)
const (
	responseOffsetSender    = typeSize
	responseOffsetReceiver  = responseOffsetSender + indexSize
	responseOffsetEphemeral = responseOffsetReceiver + indexSize
	responseOffsetEmpty     = responseOffsetEphemeral + KeySize
	responseOffsetMAC1      = responseOffsetEmpty + encryptedEmpty
	responseOffsetMAC2      = responseOffsetMAC1 + macSize
)

// Field offsets of the cookie reply:
//
//	type(4) receiver(4) nonce(24) cookie(16+16)
const (
	cookieReplyOffsetReceiver = typeSize
	cookieReplyOffsetNonce    = cookieReplyOffsetReceiver + indexSize
	cookieReplyOffsetCookie   = cookieReplyOffsetNonce + cookieNonceSize
)

// Timing rules of the handshake layer, as WireGuard sets them.
const (
	// CookieRefreshTime is how long a cookie, and the responder's secret
	// it is derived from, stays valid.
	CookieRefreshTime = 120 * time.Second

	// HandshakeInitiationRate is the shortest interval at which a
	// responder accepts successive initiations from one peer.
	HandshakeInitiationRate = time.Second / 20
)
