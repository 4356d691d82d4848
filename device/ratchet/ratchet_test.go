package ratchet

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/hkdf"
)

// refStep is the key schedule as its definition states it, built on
// golang.org/x/crypto/hkdf and crypto/hmac: it returns chain_{e+1} and
// K_e for chain_e.
func refStep(t testing.TB, chain [32]byte) (next, key [32]byte) {
	t.Helper()
	newHash := func() hash.Hash {
		h, err := blake2s.New256(nil)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	var out [64]byte
	r := hkdf.Expand(newHash, chain[:], []byte("hoprd hop v1"))
	if _, err := io.ReadFull(r, out[:]); err != nil {
		t.Fatal(err)
	}
	return [32]byte(out[:32]), [32]byte(out[32:])
}

// refKeys returns K_0 .. K_{n-1} for secret.
func refKeys(t testing.TB, secret [32]byte, n int) [][32]byte {
	t.Helper()
	keys := make([][32]byte, n)
	chain := secret
	for e := range keys {
		chain, keys[e] = refStep(t, chain)
	}
	return keys
}

func testSecret(seed byte) [32]byte {
	var s [32]byte
	for i := range s {
		s[i] = seed + byte(i)*7
	}
	return s
}

// sealWith seals a fixed message under key with a fixed nonce.
func sealWith(t testing.TB, key [32]byte) []byte {
	t.Helper()
	a, err := chacha20poly1305.New(key[:])
	if err != nil {
		t.Fatal(err)
	}
	return a.Seal(nil, make([]byte, chacha20poly1305.NonceSize), []byte("probe"), nil)
}

func TestHopLabelIsTheSpecified(t *testing.T) {
	if HopLabel != "hoprd hop v1" {
		t.Fatalf("HopLabel = %q", HopLabel)
	}
}

func TestStepMatchesHKDF(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	d := newDeriver()
	for i := range 200 {
		var chain [32]byte
		for j := range chain {
			chain[j] = byte(rng.Uint32())
		}
		wantNext, wantKey := refStep(t, chain)

		c := chain
		d.step(&c, true)
		if c != wantNext || d.key != wantKey {
			t.Fatalf("case %d: step with key differs from HKDF-Expand", i)
		}
		c = chain
		d.step(&c, false)
		if c != wantNext {
			t.Fatalf("case %d: step without key moves the chain differently", i)
		}
	}
}

// TestStepWipesScratch checks that nothing of a step is left in the
// deriver but the key it hands out: the buffers are zero and the BLAKE2s
// state is that of a fresh hash fed one zero block.
func TestStepWipesScratch(t *testing.T) {
	d := newDeriver()
	chain := testSecret(3)
	d.step(&chain, true)

	var zero [64]byte
	if !bytes.Equal(d.pad[:], zero[:]) || !bytes.Equal(d.inner[:], zero[:32]) ||
		!bytes.Equal(d.t1[:], zero[:32]) || d.ctr[0] != 0 {
		t.Fatal("scratch buffers not zero after a step")
	}
	fresh, err := blake2s.New256(nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh.Write(zero[:])
	want, err := fresh.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.h.(interface{ MarshalBinary() ([]byte, error) }).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("hash state after a step holds more than a zero block")
	}
	d.erase()
	if d.key != [32]byte{} {
		t.Fatal("erase left the key")
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		want     uint32
	}{
		{"zero interval", 0, 0},
		{"negative interval", -time.Second, 0},
		{"minimum interval 50ms", 50 * time.Millisecond, 10},
		{"100ms", 100 * time.Millisecond, 5},
		{"150ms rounds up", 150 * time.Millisecond, 4},
		{"250ms", 250 * time.Millisecond, 2},
		{"default 1s floors at two", time.Second, 2},
		{"10s", 10 * time.Second, 2},
		{"1ms is capped", time.Millisecond, maxWindow},
		{"1ns is capped", time.Nanosecond, maxWindow},
		{"huge interval", math.MaxInt64, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, a := Window(tc.interval)
			if b != tc.want || a != tc.want {
				t.Fatalf("Window(%v) = %d, %d; want %d each", tc.interval, b, a, tc.want)
			}
		})
	}
}

func TestEpochAt(t *testing.T) {
	start := time.Now()
	tests := []struct {
		name     string
		now      time.Time
		interval time.Duration
		want     uint64
	}{
		{"at start", start, time.Second, 0},
		{"before start", start.Add(-time.Hour), time.Second, 0},
		{"just before a boundary", start.Add(2*time.Second - 1), time.Second, 1},
		{"on a boundary", start.Add(2 * time.Second), time.Second, 2},
		{"no hopping", start.Add(time.Hour), 0, 0},
		{"saturates", start.Add(time.Duration(math.MaxInt64)), time.Nanosecond, math.MaxUint32},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := epochAt(start, tc.now, tc.interval); got != tc.want {
				t.Fatalf("epochAt = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestSenderReceiverAgree walks a sender and a receiver made from the same
// secret through every epoch and checks that each packet sealed by one
// opens with the other, and that both hold the keys the definition gives.
func TestSenderReceiverAgree(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
		epochs   int
	}{
		{"1s", time.Second, 60},
		{"50ms", 50 * time.Millisecond, 400},
		{"333ms", 333 * time.Millisecond, 90},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret := testSecret(11)
			want := refKeys(t, secret, tc.epochs)
			start := time.Now()
			a, b := secret, secret
			s := NewSender(&a, start, tc.interval)
			r := NewReceiver(&b, start, tc.interval)
			defer s.Close()
			defer r.Close()
			nonce := make([]byte, chacha20poly1305.NonceSize)
			for e := range tc.epochs {
				now := start.Add(time.Duration(e)*tc.interval + tc.interval/2)
				sk := s.Current(now)
				if sk.Epoch != uint32(e) {
					t.Fatalf("sender at epoch %d, want %d", sk.Epoch, e)
				}
				if *sk.raw != want[e] {
					t.Fatalf("sender key of epoch %d differs from the definition", e)
				}
				msg := fmt.Appendf(nil, "packet of epoch %d", e)
				ct := sk.AEAD().Seal(nil, nonce, msg, nil)
				sk.Release()

				rk, err := r.Key(uint32(e), now)
				if err != nil {
					t.Fatalf("receiver key of epoch %d: %v", e, err)
				}
				pt, err := rk.AEAD().Open(nil, nonce, ct, nil)
				if err != nil || !bytes.Equal(pt, msg) {
					t.Fatalf("epoch %d does not open: %v", e, err)
				}
				if *rk.raw != want[e] {
					t.Fatalf("receiver key of epoch %d differs from the definition", e)
				}
				rk.Release()
			}
			if got := s.Hops(); got != uint64(tc.epochs-1) {
				t.Fatalf("Hops() = %d, want %d", got, tc.epochs-1)
			}
		})
	}
}

// TestReceiverAcceptsWindow checks which epochs a receiver accepts around
// its own, and that each accepted key is the right one.
func TestReceiverAcceptsWindow(t *testing.T) {
	const interval = 100 * time.Millisecond // window of 5 each side
	secret := testSecret(5)
	want := refKeys(t, secret, 40)
	start := time.Now()
	now := start.Add(20*interval + interval/3) // local epoch 20
	tests := []struct {
		name  string
		epoch uint32
		ok    bool
	}{
		{"current", 20, true},
		{"last ahead", 25, true},
		{"first past ahead", 26, false},
		{"last behind", 15, true},
		{"first past behind", 14, false},
		{"zero", 0, false},
		{"largest", math.MaxUint32, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := secret
			r := NewReceiver(&s, start, interval)
			defer r.Close()
			k, err := r.Key(tc.epoch, now)
			if !tc.ok {
				if !errors.Is(err, ErrEpochOutOfWindow) {
					t.Fatalf("Key(%d) = %v, want ErrEpochOutOfWindow", tc.epoch, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Key(%d): %v", tc.epoch, err)
			}
			defer k.Release()
			if k.Epoch != tc.epoch || *k.raw != want[tc.epoch] {
				t.Fatalf("Key(%d) returned the key of epoch %d or a wrong key", tc.epoch, k.Epoch)
			}
		})
	}
}

// TestOutOfWindowDerivesNothing checks that a rejected epoch costs no
// derivation, whatever state the receiver is in.
func TestOutOfWindowDerivesNothing(t *testing.T) {
	const interval = time.Second // window of 2 each side
	start := time.Now()
	at := func(e int) time.Time { return start.Add(time.Duration(e)*interval + interval/2) }
	tests := []struct {
		name  string
		prep  int // epoch the receiver is advanced to first, -1 for none
		epoch uint32
		now   time.Time
	}{
		{"fresh, far ahead", -1, 1000, at(0)},
		{"fresh, just past ahead", -1, 3, at(0)},
		{"fresh, largest epoch", -1, math.MaxUint32, at(0)},
		{"advanced, far behind", 50, 3, at(50)},
		{"advanced, just past behind", 50, 47, at(50)},
		{"advanced, just past ahead", 50, 53, at(50)},
		{"idle long, behind", -1, 10, at(100)},
		{"idle long, ahead", -1, 200, at(100)},
		// A caller whose clock reading is older than the receiver's:
		// epoch 46 is inside its window but already erased.
		{"stale clock, erased epoch", 50, 46, at(47)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testSecret(9)
			r := NewReceiver(&s, start, interval)
			defer r.Close()
			if tc.prep >= 0 {
				r.Advance(at(tc.prep))
			}
			before := r.d.steps
			k, err := r.Key(tc.epoch, tc.now)
			if !errors.Is(err, ErrEpochOutOfWindow) || k != nil {
				t.Fatalf("Key(%d) = %v, %v; want ErrEpochOutOfWindow", tc.epoch, k, err)
			}
			if r.d.steps != before {
				t.Fatalf("rejecting epoch %d took %d derivations", tc.epoch, r.d.steps-before)
			}
		})
	}
}

// TestDerivationBounded checks that a packet naming the front of the
// window after a long idle spell costs the chain steps over the idle
// epochs (no key each, as Advance would take them) plus at most one key
// derivation per epoch of the window.
func TestDerivationBounded(t *testing.T) {
	const interval = 50 * time.Millisecond
	behind, ahead := Window(interval)
	start := time.Now()
	s := testSecret(2)
	want := refKeys(t, s, 600)
	r := NewReceiver(&s, start, interval)
	defer r.Close()

	const cur = 500
	now := start.Add(cur*interval + interval/2)
	stepsBefore, nextBefore := r.d.steps, r.next
	k, err := r.Key(cur+ahead, now)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Release()
	if *k.raw != want[cur+ahead] {
		t.Fatal("wrong key at the front of the window")
	}
	skipped := uint64(cur-behind) - nextBefore
	keys := r.d.steps - stepsBefore - skipped
	if keys > uint64(behind+ahead+1) {
		t.Fatalf("%d key derivations, want at most %d", keys, behind+ahead+1)
	}
	if held := countHeld(r); held != int(keys) {
		t.Fatalf("%d keys held, %d derived", held, keys)
	}
}

func countHeld(r *Receiver) int {
	n := 0
	for i := range r.slots {
		if r.slots[i].Load() != nil {
			n++
		}
	}
	return n
}

// checkReceiverInvariant checks that slots hold exactly the keys of
// epochs [floor, next), each in its place, and each the right key.
func checkReceiverInvariant(t *testing.T, r *Receiver, want [][32]byte) {
	t.Helper()
	if r.next < r.floor || r.next-r.floor > uint64(len(r.slots)) {
		t.Fatalf("held span [%d, %d) does not fit %d slots", r.floor, r.next, len(r.slots))
	}
	if countHeld(r) != int(r.next-r.floor) {
		t.Fatalf("%d keys held for span [%d, %d)", countHeld(r), r.floor, r.next)
	}
	for e := r.floor; e < r.next; e++ {
		k := r.slot(e).Load()
		if k == nil || uint64(k.Epoch) != e || *k.raw != want[e] {
			t.Fatalf("slot of epoch %d holds the wrong key", e)
		}
	}
}

// TestReceiverRandomWalk drives a receiver with random calls, some with
// stale clock readings, and checks its invariant and answers throughout.
func TestReceiverRandomWalk(t *testing.T) {
	const interval = 50 * time.Millisecond
	behind, ahead := Window(interval)
	secret := testSecret(21)
	want := refKeys(t, secret, 3000)
	start := time.Now()
	s := secret
	r := NewReceiver(&s, start, interval)
	defer r.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	clock := 0 // in units of interval/4
	accepted, erased := 0, 0
	for range 5000 {
		clock += rng.IntN(3)
		seen := clock - rng.IntN(6) // sometimes a stale reading
		now := start.Add(time.Duration(max(seen, 0)) * interval / 4)
		cur := epochAt(start, now, interval)
		if rng.IntN(10) == 0 {
			r.Advance(now)
			checkReceiverInvariant(t, r, want)
			continue
		}
		e := int64(cur) + int64(rng.IntN(int(behind+ahead+5))) - int64(behind) - 2
		if e < 0 {
			continue
		}
		k, err := r.Key(uint32(e), now)
		// Accepted: inside the caller's window and not erased, which the
		// floor tells once the call has moved the receiver on.
		lo, hi := windowOf(cur, behind, ahead)
		switch {
		case uint64(e) >= lo && uint64(e) <= hi && uint64(e) < r.floor:
			erased++
			fallthrough
		case uint64(e) < lo || uint64(e) > hi || uint64(e) < r.floor:
			if !errors.Is(err, ErrEpochOutOfWindow) {
				t.Fatalf("Key(%d) at epoch %d (floor %d) = %v, want rejection",
					e, cur, r.floor, err)
			}
		case err != nil:
			t.Fatalf("Key(%d) at epoch %d: %v", e, cur, err)
		default:
			if *k.raw != want[e] {
				t.Fatalf("Key(%d) wrong", e)
			}
			k.Release()
			accepted++
		}
		checkReceiverInvariant(t, r, want)
	}
	if accepted == 0 || erased == 0 {
		t.Fatalf("walk too narrow: %d accepted, %d refused as erased", accepted, erased)
	}
	t.Logf("%d accepted, %d refused as erased, up to epoch %d", accepted, erased, r.top)
}

// TestErasedEpochIsGone checks forward secrecy on the receiving side:
// once the receiver's window has passed epoch e, e is refused, its key is
// zero, and nothing the receiver keeps derives K_e again.
func TestErasedEpochIsGone(t *testing.T) {
	const interval = time.Second
	const e = 3
	start := time.Now()
	at := func(n int) time.Time { return start.Add(time.Duration(n)*interval + interval/2) }
	s := testSecret(7)
	r := NewReceiver(&s, start, interval)
	defer r.Close()

	k, err := r.Key(e, at(e))
	if err != nil {
		t.Fatal(err)
	}
	ke := *k.raw // the test's own copy, to search for later
	k.Release()

	r.Advance(at(e + 10))
	if _, err := r.Key(e, at(e+10)); !errors.Is(err, ErrEpochOutOfWindow) {
		t.Fatalf("Key(%d) after the window passed = %v, want ErrEpochOutOfWindow", e, err)
	}
	if *k.raw != ([32]byte{}) {
		t.Fatal("erased key is not zero")
	}
	if r.floor <= e {
		t.Fatalf("floor %d has not passed epoch %d", r.floor, e)
	}

	// Everything reachable from what remains: the held keys, and the keys
	// of the next 1000 epochs derived from the retained chain.
	for i := range r.slots {
		if h := r.slots[i].Load(); h != nil && *h.raw == ke {
			t.Fatalf("epoch %d's key is still held as epoch %d", e, h.Epoch)
		}
	}
	d := newDeriver()
	chain := r.chain
	for i := range 1000 {
		d.step(&chain, true)
		if d.key == ke || chain == ke {
			t.Fatalf("the retained chain derives epoch %d's key %d steps on", e, i+1)
		}
	}
}

// TestSenderErasesPast checks the sending side: after moving on, the old
// key is zero and the retained chain never derives it again.
func TestSenderErasesPast(t *testing.T) {
	const interval = time.Second
	start := time.Now()
	s := testSecret(8)
	snd := NewSender(&s, start, interval)
	defer snd.Close()
	k := snd.Current(start)
	k0 := *k.raw
	k.Release()

	if hops := snd.Advance(start.Add(5 * interval)); hops != 5 {
		t.Fatalf("Advance made %d hops, want 5", hops)
	}
	if *k.raw != ([32]byte{}) {
		t.Fatal("epoch 0's key is not zero after the sender moved on")
	}
	d := newDeriver()
	chain := snd.chain
	for i := range 1000 {
		d.step(&chain, true)
		if d.key == k0 || chain == k0 {
			t.Fatalf("the retained chain derives epoch 0's key %d steps on", i+1)
		}
	}
}

// TestHeldKeySurvivesErasure checks that a key a caller still holds keeps
// working after the ratchet retires it, and is erased on its release.
func TestHeldKeySurvivesErasure(t *testing.T) {
	const interval = time.Second
	start := time.Now()
	secret := testSecret(4)
	want := refKeys(t, secret, 1)
	s := secret
	snd := NewSender(&s, start, interval)
	k := snd.Current(start)
	snd.Advance(start.Add(3 * interval))
	snd.Close()
	if *k.raw != want[0] {
		t.Fatal("a held key was erased")
	}
	nonce := make([]byte, chacha20poly1305.NonceSize)
	got := k.AEAD().Seal(nil, nonce, []byte("probe"), nil)
	if !bytes.Equal(got, sealWith(t, want[0])) {
		t.Fatal("a held key seals wrongly")
	}
	k.Release()
	if *k.raw != ([32]byte{}) {
		t.Fatal("the last release did not erase the key")
	}
}

// TestErasureReachesTheAEAD checks that erasure zeroes the key inside the
// AEAD: after it, the AEAD seals exactly as one made from the zero key.
func TestErasureReachesTheAEAD(t *testing.T) {
	secret := testSecret(1)
	k := newKey(0, &secret)
	if secret != ([32]byte{}) {
		t.Fatal("newKey did not zero its input")
	}
	nonce := make([]byte, chacha20poly1305.NonceSize)
	zeroSealed := sealWith(t, [32]byte{})
	if bytes.Equal(k.AEAD().Seal(nil, nonce, []byte("probe"), nil), zeroSealed) {
		t.Fatal("live key seals as the zero key")
	}
	k.Acquire()
	k.Release()
	if *k.raw == ([32]byte{}) {
		t.Fatal("key erased with a reference left")
	}
	k.Release()
	if got := k.AEAD().Seal(nil, nonce, []byte("probe"), nil); !bytes.Equal(got, zeroSealed) {
		t.Fatal("after erasure the AEAD does not seal as the zero key")
	}
	if k.tryAcquire() {
		t.Fatal("tryAcquire revived an erased key")
	}
}

func TestMisuseOfReferencesPanics(t *testing.T) {
	tests := []struct {
		name string
		op   func(k *Key)
	}{
		{"release past zero", func(k *Key) { k.Release() }},
		{"acquire erased", func(k *Key) { k.Acquire() }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := testSecret(1)
			k := newKey(0, &s)
			k.Release()
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tc.op(k)
		})
	}
}

func TestAEADLayout(t *testing.T) {
	if err := checkAEADLayout(); err != nil {
		t.Fatal(err)
	}
	probe := testSecret(1)
	c, err := aes.NewCipher(probe[:])
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(c)
	if err != nil {
		t.Fatal(err)
	}
	other := testSecret(2)
	chacha, err := chacha20poly1305.New(other[:])
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		aead cipher.AEAD
	}{
		{"another AEAD type", gcm},
		{"a key that does not read back", chacha},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkLayoutOf(tc.aead, &probe); !errors.Is(err, errAEADLayout) {
				t.Fatalf("checkLayoutOf = %v, want errAEADLayout", err)
			}
		})
	}
}

func TestConstructorsZeroSecret(t *testing.T) {
	a, b := testSecret(1), testSecret(1)
	NewSender(&a, time.Now(), time.Second).Close()
	NewReceiver(&b, time.Now(), time.Second).Close()
	if a != ([32]byte{}) || b != ([32]byte{}) {
		t.Fatal("a constructor left the caller's secret in place")
	}
}

func TestCloseErasesEverything(t *testing.T) {
	start := time.Now()
	a, b := testSecret(1), testSecret(1)
	s := NewSender(&a, start, time.Second)
	r := NewReceiver(&b, start, time.Second)
	r.Advance(start)
	sk := s.cur.Load()
	var rks []*Key
	for i := range r.slots {
		if k := r.slots[i].Load(); k != nil {
			rks = append(rks, k)
		}
	}
	s.Close()
	r.Close()
	s.Close() // idempotent
	r.Close()
	if s.chain != ([32]byte{}) || r.chain != ([32]byte{}) {
		t.Fatal("chain not zero after Close")
	}
	if *sk.raw != ([32]byte{}) {
		t.Fatal("sender key not zero after Close")
	}
	for _, k := range rks {
		if *k.raw != ([32]byte{}) {
			t.Fatalf("receiver key of epoch %d not zero after Close", k.Epoch)
		}
	}
	if s.Current(start) != nil {
		t.Fatal("Current after Close returned a key")
	}
	if s.Advance(start.Add(time.Hour)) != 0 {
		t.Fatal("Advance after Close moved")
	}
	if _, err := r.Key(5, start.Add(5*time.Second)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Key after Close = %v, want ErrClosed", err)
	}
}

// TestWireGuardMode checks that a zero interval never hops and keys every
// packet with the transport secret itself, as WireGuard does.
func TestWireGuardMode(t *testing.T) {
	start := time.Now()
	secret := testSecret(6)
	want := [][keySize]byte{secret}
	a, b := secret, secret
	s := NewSender(&a, start, 0)
	r := NewReceiver(&b, start, 0)
	defer s.Close()
	defer r.Close()
	for _, d := range []time.Duration{0, time.Second, 179 * time.Second, 24 * time.Hour} {
		now := start.Add(d)
		if n := s.Advance(now); n != 0 {
			t.Fatalf("Advance at +%v hopped %d", d, n)
		}
		r.Advance(now)
		k := s.Current(now)
		if k.Epoch != 0 || *k.raw != want[0] {
			t.Fatalf("sender at +%v uses epoch %d", d, k.Epoch)
		}
		k.Release()
		k, err := r.Key(0, now)
		if err != nil || *k.raw != want[0] {
			t.Fatalf("receiver at +%v: %v", d, err)
		}
		k.Release()
		if _, err := r.Key(1, now); !errors.Is(err, ErrEpochOutOfWindow) {
			t.Fatalf("receiver at +%v accepted epoch 1: %v", d, err)
		}
	}
	if s.Hops() != 0 {
		t.Fatalf("Hops() = %d, want 0", s.Hops())
	}
}

func TestSenderNeverGoesBack(t *testing.T) {
	start := time.Now()
	s := testSecret(1)
	snd := NewSender(&s, start, time.Second)
	defer snd.Close()
	snd.Current(start.Add(5 * time.Second)).Release()
	k := snd.Current(start.Add(3 * time.Second))
	defer k.Release()
	if k.Epoch != 5 {
		t.Fatalf("a stale clock reading got epoch %d, want 5", k.Epoch)
	}
}

// TestAnchor checks the responder's receiver of a new session: before
// Anchor it accepts the initiator's epochs from as far as AnchorReach
// behind its own; Anchor on an opened message re-bases its clock on that
// message's epoch and narrows the window to Window's; keys stay the
// chain's, and only the first Anchor counts.
func TestAnchor(t *testing.T) {
	const interval = 50 * time.Millisecond
	behind, ahead := Window(interval)
	reach := uint32(AnchorReach / interval)
	start := time.Now()
	secret := testSecret(3)
	want := refKeys(t, secret, 200)
	s := secret
	r := NewAnchoringReceiver(&s, start, interval)
	defer r.Close()

	// 100 epochs in, the initiator's clock lags ours by 30 epochs (a
	// 1.5 s round trip): more than Window's reach, less than AnchorReach.
	now := start.Add(100*interval + interval/2)
	if _, err := r.Key(100-reach-1, now); !errors.Is(err, ErrEpochOutOfWindow) {
		t.Fatalf("Key beyond AnchorReach = %v, want ErrEpochOutOfWindow", err)
	}
	k, err := r.Key(70, now)
	if err != nil || *k.raw != want[70] {
		t.Fatalf("Key(70) before Anchor: %v", err)
	}
	k.Release()
	checkReceiverInvariant(t, r, want)

	r.Anchor(70, now)
	if got := r.Epoch(now); got != 70 {
		t.Fatalf("epoch after Anchor(70) = %d, want 70", got)
	}
	for _, e := range []uint32{70 - behind, 70, 70 + ahead} {
		k, err := r.Key(e, now)
		if err != nil || *k.raw != want[e] {
			t.Fatalf("Key(%d) after Anchor: %v", e, err)
		}
		k.Release()
	}
	for _, e := range []uint32{70 - behind - 1, 70 + ahead + 1, 100} {
		if _, err := r.Key(e, now); !errors.Is(err, ErrEpochOutOfWindow) {
			t.Fatalf("Key(%d) after Anchor = %v, want ErrEpochOutOfWindow", e, err)
		}
	}
	checkReceiverInvariant(t, r, want)

	// A second Anchor, as a forged or replayed message would ask for,
	// changes nothing.
	r.Anchor(3, now)
	if got := r.Epoch(now); got != 70 {
		t.Fatalf("a second Anchor moved the epoch to %d", got)
	}
	later := now.Add(10 * interval)
	k, err = r.Key(80, later)
	if err != nil || *k.raw != want[80] {
		t.Fatalf("Key(80) 10 epochs after Anchor: %v", err)
	}
	k.Release()
	checkReceiverInvariant(t, r, want)
}

// TestAnchorBoundsForgedEpochs checks that an unanchored receiver, whose
// window is widest, still derives nothing for an epoch outside it, so
// that an unauthenticated packet naming the largest epoch costs nothing,
// and that a receiver from NewReceiver does not anchor at all.
func TestAnchorBoundsForgedEpochs(t *testing.T) {
	const interval = 50 * time.Millisecond
	start := time.Now()
	now := start.Add(interval / 2)
	s := testSecret(4)
	r := NewAnchoringReceiver(&s, start, interval)
	defer r.Close()
	_, ahead := Window(interval)
	for _, e := range []uint32{math.MaxUint32, 1 << 20, ahead + 1} {
		before := r.d.steps
		if _, err := r.Key(e, now); !errors.Is(err, ErrEpochOutOfWindow) {
			t.Fatalf("Key(%d) = %v, want ErrEpochOutOfWindow", e, err)
		}
		if r.d.steps != before {
			t.Fatalf("Key(%d) took %d chain steps", e, r.d.steps-before)
		}
	}

	s = testSecret(4)
	plain := NewReceiver(&s, start, interval)
	defer plain.Close()
	plain.Anchor(0, start.Add(100*interval))
	if got := plain.Epoch(start.Add(100 * interval)); got != 100 {
		t.Fatalf("Anchor moved a receiver from NewReceiver to epoch %d", got)
	}
}

func TestStringsShowNoSecrets(t *testing.T) {
	start := time.Now()
	a, b := testSecret(1), testSecret(1)
	s := NewSender(&a, start, time.Second)
	r := NewReceiver(&b, start, time.Second)
	k := s.Current(start)
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"key", fmt.Sprintf("%+v", k), "ratchet.Key{epoch 0}"},
		{"sender", fmt.Sprintf("%+v", s), "ratchet.Sender{epoch 0, hops 0}"},
		{"receiver", fmt.Sprintf("%+v", r), "ratchet.Receiver{keys of epochs [0, 1)}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("formatted as %q, want %q", tc.got, tc.want)
			}
		})
	}
	k.Release()
	s.Close()
	r.Close()
	if !strings.Contains(s.String(), "closed") || !strings.Contains(r.String(), "closed") {
		t.Fatal("closed state not shown")
	}
}
