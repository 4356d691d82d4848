package handshake

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.zx2c4.com/wireguard/tai64n"
)

// Indices the tests reserve for the two sides.
const (
	initiatorIndex = 0x11111111
	responderIndex = 0x22222222
)

// testPrivateKey derives a fixed, clamped private key from a seed byte.
func testPrivateKey(seed byte) PrivateKey {
	k := PrivateKey(blake2s.Sum256([]byte{'k', 'e', 'y', seed}))
	k.clamp()
	return k
}

// testPublicKey returns the public key of testPrivateKey(seed).
func testPublicKey(seed byte) PublicKey {
	k := testPrivateKey(seed)
	return k.PublicKey()
}

// stepClock is a TimestampSource whose timestamps rise by one second per
// call, so that successive initiations are never replays of each other.
type stepClock struct {
	mu sync.Mutex
	n  uint64
}

// Next returns the next timestamp.
func (c *stepClock) Next() tai64n.Timestamp {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	var ts tai64n.Timestamp
	binary.BigEndian.PutUint64(ts[:8], 0x400000000000000a+1_700_000_000+c.n)
	return ts
}

// fixedClock is a TimestampSource that always returns the same timestamp.
type fixedClock struct{}

// Next returns the fixed timestamp.
func (fixedClock) Next() tai64n.Timestamp {
	var ts tai64n.Timestamp
	binary.BigEndian.PutUint64(ts[:8], 0x400000000000000a+1_700_000_000)
	return ts
}

// fakeTime is a manual clock for the flood and cookie rules.
type fakeTime struct {
	mu sync.Mutex
	t  time.Time
}

// newFakeTime returns a clock set to a fixed instant.
func newFakeTime() *fakeTime {
	return &fakeTime{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// now returns the clock's time.
func (f *fakeTime) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// advance moves the clock forward by d.
func (f *fakeTime) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// detRand returns a deterministic source of "random" bytes.
func detRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], seed)
	return rand.NewChaCha8(s)
}

// pair is two peers, each holding a Handshake with the other.
type pair struct {
	initID, respID *Identity
	init           *Handshake // the initiator's handshake with the responder
	resp           *Handshake // the responder's handshake with the initiator
	clock          *fakeTime  // drives both handshakes
	lastResponse   []byte     // scratch for tests that replay a response
}

// newPair builds a pair speaking protocol p with preshared key psk.
func newPair(tb testing.TB, p *Protocol, psk PresharedKey) *pair {
	tb.Helper()
	pr := &pair{
		initID: NewIdentity(testPrivateKey(1)),
		respID: NewIdentity(testPrivateKey(2)),
		clock:  newFakeTime(),
	}
	pr.init = NewHandshake(pr.initID, pr.respID.PublicKey(), psk, p, &stepClock{})
	pr.resp = NewHandshake(pr.respID, pr.initID.PublicKey(), psk, p, &stepClock{})
	pr.init.now = pr.clock.now
	pr.resp.now = pr.clock.now
	return pr
}

// byStatic is the responder's peer lookup.
func (pr *pair) byStatic(pk PublicKey) *Handshake {
	if pk.Equal(pr.initID.PublicKey()) {
		return pr.resp
	}
	return nil
}

// byIndex is the initiator's index lookup.
func (pr *pair) byIndex(i uint32) *Handshake {
	if i == initiatorIndex {
		return pr.init
	}
	return nil
}

// initiation has the initiator write an initiation.
func (pr *pair) initiation(tb testing.TB) []byte {
	tb.Helper()
	msg := make([]byte, MessageInitiationSize)
	n, err := pr.init.CreateInitiation(msg, initiatorIndex)
	if err != nil || n != MessageInitiationSize {
		tb.Fatalf("CreateInitiation = %d, %v", n, err)
	}
	return msg
}

// consume has the responder consume an initiation and returns the error.
func (pr *pair) consume(initiation []byte) error {
	_, err := ConsumeInitiation(pr.respID, initiation, pr.byStatic)
	return err
}

// respond has the responder consume an initiation and answer it.
func (pr *pair) respond(tb testing.TB, initiation []byte) ([]byte, Session) {
	tb.Helper()
	h, err := ConsumeInitiation(pr.respID, initiation, pr.byStatic)
	if err != nil {
		tb.Fatalf("ConsumeInitiation: %v", err)
	}
	if h != pr.resp {
		tb.Fatalf("ConsumeInitiation returned the wrong handshake")
	}
	msg := make([]byte, MessageResponseSize)
	s, n, err := h.CreateResponse(msg, responderIndex)
	if err != nil || n != MessageResponseSize {
		tb.Fatalf("CreateResponse = %d, %v", n, err)
	}
	return msg, s
}

// complete runs a whole handshake and returns both sessions.
func (pr *pair) complete(tb testing.TB) (initiator, responder Session) {
	tb.Helper()
	response, responder := pr.respond(tb, pr.initiation(tb))
	h, initiator, err := ConsumeResponse(pr.initID, response, pr.byIndex)
	if err != nil {
		tb.Fatalf("ConsumeResponse: %v", err)
	}
	if h != pr.init {
		tb.Fatalf("ConsumeResponse returned the wrong handshake")
	}
	return initiator, responder
}

// sentinels lists every error the package can wrap.
var sentinels = []error{
	ErrBadKey, ErrInvalidPublicKey, ErrShortBuffer, ErrShortMessage,
	ErrLongMessage, ErrWrongType, ErrBadMAC1, ErrUnknownPeer, ErrUnknownIndex,
	ErrProtocolMismatch, ErrReplayedInitiation, ErrInitiationFlood, ErrDecrypt,
	ErrUnexpectedResponse, ErrNoInitiation, ErrBadCookie,
}

// isSentinel reports whether err wraps one of the package's sentinels.
func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// resealMAC1 recomputes the mac1 of msg, addressed to to, under protocol p
// and clears mac2, as a forger who knows the receiver's public key can.
func resealMAC1(msg []byte, p *Protocol, to PublicKey) {
	off := initiationOffsetMAC1
	if len(msg) == MessageResponseSize {
		off = responseOffsetMAC1
	}
	keys := deriveMACKeys(p, &to)
	var sum [macSize]byte
	mac(&sum, keys.mac1[:], msg[:off])
	copy(msg[off:], sum[:])
	clear(msg[off+macSize:])
}
