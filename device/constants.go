package device

import (
	"math/rand/v2"
	"time"
)

// Protocol constants, named as the WireGuard paper names them. hoprd keeps
// WireGuard's session timers in both modes; only the key schedule within a
// session differs.
const (
	RekeyAfterMessages  = 1 << 60
	RejectAfterMessages = 1<<64 - 1<<13 - 1
	RekeyAfterTime      = 120 * time.Second
	RejectAfterTime     = 180 * time.Second
	RekeyAttemptTime    = 90 * time.Second
	RekeyTimeout        = 5 * time.Second
	RekeyTimeoutJitter  = 334 * time.Millisecond
	KeepaliveTimeout    = 10 * time.Second
	CookieRefreshTime   = 120 * time.Second
	HandshakeInitRate   = 50 * time.Millisecond
)

// Timers are the session timers a device runs on. The zero value of a
// field means the protocol's constant; tests shorten them.
type Timers struct {
	RekeyAfterTime   time.Duration
	RejectAfterTime  time.Duration
	RekeyAttemptTime time.Duration
	RekeyTimeout     time.Duration
	KeepaliveTimeout time.Duration
}

// withDefaults fills zero fields with the protocol's constants.
func (t Timers) withDefaults() Timers {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&t.RekeyAfterTime, RekeyAfterTime)
	def(&t.RejectAfterTime, RejectAfterTime)
	def(&t.RekeyAttemptTime, RekeyAttemptTime)
	def(&t.RekeyTimeout, RekeyTimeout)
	def(&t.KeepaliveTimeout, KeepaliveTimeout)
	return t
}

// rekeyOnReceiveAge is the age of a session we initiated from which a
// packet received on it triggers a new handshake, so that the session is
// replaced before the peer stops accepting it.
func (t *Timers) rekeyOnReceiveAge() time.Duration {
	return t.RejectAfterTime - t.KeepaliveTimeout - t.RekeyTimeout
}

// rekeyTimeoutWithJitter spreads retries so peers do not fall into step.
func (t *Timers) rekeyTimeoutWithJitter() time.Duration {
	return t.RekeyTimeout + rand.N(RekeyTimeoutJitter)
}

// Transport message layout. WireGuard's header is type, receiver index and
// counter; hoprd's hop header inserts the epoch before the counter.
//
//	WireGuard: type(4) receiver(4) counter(8)            = 16 bytes
//	hop:       type(4) receiver(4) epoch(4) counter(8)   = 20 bytes
const (
	wgHeaderSize  = 16
	hopHeaderSize = 20
	tagSize       = 16 // Poly1305 tag
	paddingUnit   = 16 // plaintexts are padded to a multiple of this, capped at the MTU
)

// Tunables: not part of any protocol.
const (
	// maxMessageSize is the largest UDP datagram, and the size of every
	// packet buffer (full-size buffers let the TUN coalesce on write).
	maxMessageSize = 1<<16 - 1

	// tunOffset is where a packet read from the TUN begins in its buffer:
	// room for the largest transport header, which is written in place in
	// front of the packet before sealing.
	tunOffset = 32

	// maxPlaintext is the largest packet that fits a buffer with the
	// headroom in front and the tag behind; larger ones are dropped.
	maxPlaintext = maxMessageSize - tunOffset - tagSize

	// maxReadFailures is how many TUN reads in a row may fail before the
	// device gives up on the TUN.
	maxReadFailures = 64

	// batchSize caps the packets handled per read or write.
	batchSize = 128

	queueOutbound  = 256  // batches between the TUN reader and the sender
	queueInbound   = 256  // batches between a UDP receiver and its writer
	queueCrypto    = 1024 // groups waiting for a crypto worker
	queueHandshake = 1024 // handshake messages waiting for processing
	queueStaged    = 128  // packets held per peer while a handshake runs

	// maxStagedBytes bounds the staged packets of all peers together, so
	// that traffic to many unreachable peers cannot exhaust memory.
	maxStagedBytes = 32 << 20

	// underLoadThreshold is the handshake queue depth from which
	// initiations must carry a valid cookie (mac2).
	underLoadThreshold = queueHandshake / 8
	// underLoadAfter keeps the device under load for this long after the
	// queue last crossed the threshold.
	underLoadAfter = time.Second

	// inlineMax is the most packets a batch may hold to skip the queues
	// and the crypto workers when nothing is queued ahead of it, on a
	// machine with more than fewCores cores: a ping or an ACK then crosses
	// the engine on one goroutine, without waking two others.
	inlineMax = 4
	// fewCores is the core count up to which every batch skips the queues
	// when nothing is queued ahead of it (see Config.InlineMax).
	fewCores = 2
)
