package ratchet

import (
	"crypto/cipher"
	"fmt"
	"reflect"
	"strconv"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"
)

// Key is the AEAD key of one epoch. It is reference counted: the Sender
// or Receiver that derived it holds one reference, and each caller that
// obtained it from them holds another. When the last reference is
// released the key is erased, in the AEAD's own copy, and the AEAD must
// not be used again (it would seal with the all-zero key).
//
// Keys are not pooled. A new Key costs two small allocations per hop,
// not per packet; in exchange a pointer kept past Release by mistake can
// only ever reach a zeroed key, never another epoch's live one.
type Key struct {
	// Epoch is the epoch this key belongs to, as packets name it. It
	// does not change.
	Epoch uint32

	refs atomic.Int32
	aead cipher.AEAD
	// raw is the key inside aead, the only copy of the key bytes.
	raw *[chacha20poly1305.KeySize]byte
}

// newKey returns a Key for epoch holding one reference, built from
// secret, which it zeroes.
func newKey(epoch uint32, secret *[keySize]byte) *Key {
	a, err := chacha20poly1305.New(secret[:])
	clear(secret[:])
	if err != nil {
		// The package's init check creates an AEAD the same way, so
		// this fails only if the process changed FIPS 140 mode since.
		panic("ratchet: chacha20poly1305: " + err.Error())
	}
	k := &Key{Epoch: epoch, aead: a, raw: aeadKey(a)}
	k.refs.Store(1)
	return k
}

// AEAD returns the key's ChaCha20-Poly1305 AEAD. It is safe for
// concurrent use and valid while the caller holds a reference.
func (k *Key) AEAD() cipher.AEAD { return k.aead }

// Acquire adds a reference for a caller that already holds one and
// hands the key to another goroutine. It panics if the key is erased.
func (k *Key) Acquire() {
	if k.refs.Add(1) <= 1 {
		panic("ratchet: Acquire of an erased key")
	}
}

// Release drops one reference and erases the key if it was the last.
// It panics if the key has no references left.
func (k *Key) Release() {
	switch n := k.refs.Add(-1); {
	case n == 0:
		clear(k.raw[:])
	case n < 0:
		panic("ratchet: Release of an erased key")
	}
}

// tryAcquire adds a reference unless the key is already erased, and
// reports whether it did. It lets a reader take a key it found through an
// atomic pointer without a lock, racing safely with its erasure.
func (k *Key) tryAcquire() bool {
	for {
		n := k.refs.Load()
		if n <= 0 {
			return false
		}
		if k.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// String names the key's epoch; it never shows key material.
func (k *Key) String() string {
	return "ratchet.Key{epoch " + strconv.FormatUint(uint64(k.Epoch), 10) + "}"
}

// aeadKey returns the key inside an AEAD made by chacha20poly1305.New,
// which is a pointer to a struct whose only field is the key. init
// verifies that layout before any key is made.
func aeadKey(a cipher.AEAD) *[chacha20poly1305.KeySize]byte {
	return (*[chacha20poly1305.KeySize]byte)(reflect.ValueOf(a).UnsafePointer())
}

func init() {
	if err := checkAEADLayout(); err != nil {
		// Running on would leave every retired key in memory.
		panic(err)
	}
}

// checkAEADLayout verifies what aeadKey relies on: New returns a pointer
// to a struct of the chacha20poly1305 package that holds exactly the key,
// at offset 0, and a probe key reads back through aeadKey.
func checkAEADLayout() error {
	var probe [chacha20poly1305.KeySize]byte
	for i := range probe {
		probe[i] = byte(i + 1)
	}
	a, err := chacha20poly1305.New(probe[:])
	if err != nil {
		return fmt.Errorf("%w: create: %w", errAEADLayout, err)
	}
	return checkLayoutOf(a, &probe)
}

// checkLayoutOf checks a, which must have been made from probe.
func checkLayoutOf(a cipher.AEAD, probe *[chacha20poly1305.KeySize]byte) error {
	t := reflect.TypeOf(a)
	if t.Kind() != reflect.Pointer {
		return fmt.Errorf("%w: %v is not a pointer", errAEADLayout, t)
	}
	e := t.Elem()
	keyType := reflect.TypeFor[[chacha20poly1305.KeySize]byte]()
	switch {
	case e.PkgPath() != "golang.org/x/crypto/chacha20poly1305":
		return fmt.Errorf("%w: type %v from %q", errAEADLayout, e, e.PkgPath())
	case e.Kind() != reflect.Struct || e.NumField() != 1:
		return fmt.Errorf("%w: %v is not a one-field struct", errAEADLayout, e)
	case e.Size() != chacha20poly1305.KeySize:
		return fmt.Errorf("%w: %v is %d bytes", errAEADLayout, e, e.Size())
	case e.Field(0).Type != keyType || e.Field(0).Offset != 0:
		return fmt.Errorf("%w: field %s is %v at offset %d",
			errAEADLayout, e.Field(0).Name, e.Field(0).Type, e.Field(0).Offset)
	case *aeadKey(a) != *probe:
		return fmt.Errorf("%w: the probe key does not read back", errAEADLayout)
	}
	return nil
}
