package handshake

import (
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// The primitives of the handshake, named as the WireGuard paper names them:
// HASH, MAC, HMAC, KDF1..3, DH, AEAD. Every function writes into arrays the
// caller owns, so the caller can erase them.

// zeroNonce is the nonce of every handshake AEAD: each key seals exactly
// one message.
var zeroNonce [chacha20poly1305.NonceSize]byte

// mixInputMax is the longest input mixHash hashes without a heap digest;
// the longest it sees is the sealed static key.
const mixInputMax = encryptedStatic

// mixHash sets h to HASH(h || data).
func mixHash(h *[hashSize]byte, data []byte) {
	if len(data) > mixInputMax {
		d, _ := blake2s.New256(nil)
		d.Write(h[:])
		d.Write(data)
		d.Sum(h[:0])
		return
	}
	var buf [hashSize + mixInputMax]byte
	n := copy(buf[:], h[:])
	n += copy(buf[n:], data)
	*h = blake2s.Sum256(buf[:n])
	clear(buf[:])
}

// hashLabel returns HASH(label || key), the form of the mac1 and cookie
// keys.
func hashLabel(label string, key *PublicKey) [hashSize]byte {
	var out [hashSize]byte
	d, _ := blake2s.New256(nil)
	d.Write([]byte(label))
	d.Write(key[:])
	d.Sum(out[:0])
	return out
}

// newBlake2s is the hash HMAC is built on.
func newBlake2s() hash.Hash {
	d, _ := blake2s.New256(nil)
	return d
}

// hmacBlake2s sets out to HMAC-BLAKE2s(key, a || b).
func hmacBlake2s(out *[hashSize]byte, key, a, b []byte) {
	m := hmac.New(newBlake2s, key)
	m.Write(a)
	m.Write(b)
	m.Sum(out[:0])
}

// kdf is HKDF over HMAC-BLAKE2s with an empty info string: it extracts a
// pseudorandom key from input under the salt key, then fills each of outs
// in turn. The extracted key is erased before returning. Since key and input
// are read before any output is written, either may alias an output.
func kdf(key, input []byte, outs ...*[hashSize]byte) {
	var prk [hashSize]byte
	hmacBlake2s(&prk, key, input, nil)
	var prev []byte
	var counter [1]byte
	for _, out := range outs {
		counter[0]++
		hmacBlake2s(out, prk[:], prev, counter[:])
		prev = out[:]
	}
	clear(prk[:])
}

// kdf1 sets t0 to KDF1(key, input).
func kdf1(t0 *[hashSize]byte, key, input []byte) { kdf(key, input, t0) }

// kdf2 sets (t0, t1) to KDF2(key, input).
func kdf2(t0, t1 *[hashSize]byte, key, input []byte) { kdf(key, input, t0, t1) }

// kdf3 sets (t0, t1, t2) to KDF3(key, input).
func kdf3(t0, t1, t2 *[hashSize]byte, key, input []byte) { kdf(key, input, t0, t1, t2) }

// mixKey sets the chaining key ck to KDF1(ck, data).
func mixKey(ck *[hashSize]byte, data []byte) { kdf1(ck, ck[:], data) }

// mac writes MAC(key, data), keyed BLAKE2s with a 128-bit output, to dst.
func mac(dst *[macSize]byte, key, data []byte) {
	d, _ := blake2s.New128(key)
	d.Write(data)
	d.Sum(dst[:0])
}

// X25519 comes from crypto/ecdh, which golang.org/x/crypto/curve25519 now
// merely wraps. The wrapper rebuilds an ecdh.PrivateKey, and with it the
// public key, on every call, doubling the cost of each Diffie-Hellman; here
// each private key is turned into an ecdh.PrivateKey once. crypto/ecdh keeps
// a copy of every private key that no caller can erase: dropping the last
// reference is all this package can do for those copies.

// newECDHKey returns the X25519 key for the 32 bytes of k.
func newECDHKey(k *PrivateKey) *ecdh.PrivateKey {
	key, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		// NewPrivateKey fails only on a length other than 32.
		panic("handshake: " + err.Error())
	}
	return key
}

// newEphemeral reads a fresh ephemeral key from r.
func newEphemeral(r io.Reader) (*ecdh.PrivateKey, error) {
	k, err := newPrivateKey(r)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	defer k.Zero()
	return newECDHKey(&k), nil
}

// dh sets ss to the X25519 shared secret of private and public. It fails
// with ErrInvalidPublicKey when public is not 32 bytes or the result is all
// zeros (public is a point of small order), and when private is nil (an
// erased Identity).
func dh(ss *[KeySize]byte, private *ecdh.PrivateKey, public []byte) error {
	if private == nil {
		return ErrInvalidPublicKey
	}
	pub, err := ecdh.X25519().NewPublicKey(public)
	if err != nil {
		return ErrInvalidPublicKey
	}
	out, err := private.ECDH(pub)
	if err != nil {
		return ErrInvalidPublicKey
	}
	copy(ss[:], out)
	clear(out)
	return nil
}

// seal encrypts plaintext under key with the zero nonce and additional data
// ad, writing ciphertext and tag to dst, which must have room for both.
func seal(dst []byte, key *[hashSize]byte, plaintext, ad []byte) {
	aead, _ := chacha20poly1305.New(key[:])
	aead.Seal(dst[:0], zeroNonce[:], plaintext, ad)
}

// open authenticates and decrypts ciphertext under key with the zero nonce
// and additional data ad, writing the plaintext to dst.
func open(dst []byte, key *[hashSize]byte, ciphertext, ad []byte) error {
	aead, _ := chacha20poly1305.New(key[:])
	if _, err := aead.Open(dst[:0], zeroNonce[:], ciphertext, ad); err != nil {
		return ErrDecrypt
	}
	return nil
}

// isZero reports whether b is all zeros, in constant time.
func isZero(b []byte) bool {
	var acc byte
	for _, c := range b {
		acc |= c
	}
	return subtle.ConstantTimeByteEq(acc, 0) == 1
}
