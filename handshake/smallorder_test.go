package handshake

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// smallOrderHex are the points of small order of Curve25519 and the twist,
// as little-endian u-coordinates, with the non-canonical encodings p-1, p
// and p+1 (RFC 7748 reduces u modulo p).
var smallOrderHex = []string{
	"0000000000000000000000000000000000000000000000000000000000000000",
	"0100000000000000000000000000000000000000000000000000000000000000",
	"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
	"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
	"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
	"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
}

// TestIsSmallOrder: IsSmallOrder finds every point of small order, with
// the top bit X25519 ignores set or not, and agrees with the handshake,
// which can never complete with such a key and only with such a key.
func TestIsSmallOrder(t *testing.T) {
	id := NewIdentity(testPrivateKey(1))
	check := func(k PublicKey, want bool) {
		t.Helper()
		if got := k.IsSmallOrder(); got != want {
			t.Errorf("%s: IsSmallOrder = %t, want %t", k, got, want)
		}
		h := NewHandshake(id, k, PresharedKey{}, Hop, nil)
		_, err := h.CreateInitiation(make([]byte, MessageInitiationSize), 1)
		if refused := errors.Is(err, ErrInvalidPublicKey); refused != want {
			t.Errorf("%s: CreateInitiation error %v; small order %t", k, err, want)
		}
	}
	for _, s := range smallOrderHex {
		var k PublicKey
		if _, err := hex.Decode(k[:], []byte(s)); err != nil {
			t.Fatal(err)
		}
		check(k, true)
		k[KeySize-1] |= 0x80
		check(k, true)
	}
	weak, err := ParsePublicKey("4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=")
	if err != nil {
		t.Fatal(err)
	}
	check(weak, true)

	check(PublicKey{9}, false) // the base point
	for i := range 16 {
		priv := testPrivateKey(byte(i + 2))
		check(priv.PublicKey(), false)
	}
	// Random strings, on the curve or on its twist.
	for range 16 {
		var k PublicKey
		rand.Read(k[:])
		check(k, false)
	}
}
