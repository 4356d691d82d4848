package handshake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
)

// Encoded lengths of a key.
const (
	keyBase64Len = 44 // standard base64 with one '=' of padding
	keyHexLen    = 2 * KeySize
)

// redacted replaces a secret key wherever it would be printed.
const (
	redactedPrivate   = "(private key)"
	redactedPreshared = "(preshared key)"
)

// PrivateKey is a Curve25519 private key. It never prints itself: String,
// fmt verbs and slog all show "(private key)"; use Base64 or Hex to reveal
// it on purpose.
type PrivateKey [KeySize]byte

// PublicKey is a Curve25519 public key. It prints as standard base64.
type PublicKey [KeySize]byte

// PresharedKey is the optional symmetric key mixed into the handshake. Like
// PrivateKey it never prints itself.
type PresharedKey [KeySize]byte

// GeneratePrivateKey returns a fresh random private key, clamped as
// Curve25519 requires.
func GeneratePrivateKey() (PrivateKey, error) {
	return newPrivateKey(rand.Reader)
}

// newPrivateKey reads a private key from r and clamps it.
func newPrivateKey(r io.Reader) (PrivateKey, error) {
	var k PrivateKey
	if _, err := io.ReadFull(r, k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("generate private key: %w", err)
	}
	k.clamp()
	return k, nil
}

// clamp clears and sets the bits Curve25519 fixes in a scalar.
func (k *PrivateKey) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// PublicKey returns the public key of k.
func (k *PrivateKey) PublicKey() PublicKey {
	return PublicKey(newECDHKey(k).PublicKey().Bytes())
}

// IsZero reports whether k is all zeros (no key), in constant time.
func (k *PrivateKey) IsZero() bool { return isZero(k[:]) }

// Zero erases k.
func (k *PrivateKey) Zero() { clear(k[:]) }

// String returns "(private key)", never the key.
func (k PrivateKey) String() string { return redactedPrivate }

// Format prints "(private key)" for every fmt verb, so that neither %x nor
// %#v can reveal the key.
func (k PrivateKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedPrivate) }

// LogValue keeps the key out of structured logs.
func (k PrivateKey) LogValue() slog.Value { return slog.StringValue(redactedPrivate) }

// Base64 reveals the key in standard base64, as WireGuard's tools write it.
func (k PrivateKey) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex reveals the key in lowercase hexadecimal, as the configuration
// protocol writes it.
func (k PrivateKey) Hex() string { return hex.EncodeToString(k[:]) }

// Equal reports whether k and o are the same key, in constant time.
func (k PublicKey) Equal(o PublicKey) bool {
	return subtle.ConstantTimeCompare(k[:], o[:]) == 1
}

// IsZero reports whether k is all zeros (no key), in constant time.
func (k PublicKey) IsZero() bool { return isZero(k[:]) }

// IsSmallOrder reports whether k is a point of small order, the zero key
// among them: the X25519 shared secret of any private key with it is all
// zeros, so no handshake with a peer of that key can ever complete. It is
// the test NewHandshake's Diffie-Hellman makes, run against a fixed key: a
// clamped scalar is a multiple of the cofactor and too small to be one of
// the large prime order, so only points of small order give it zeros.
func (k PublicKey) IsSmallOrder() bool {
	var ss [KeySize]byte
	err := dh(&ss, smallOrderProbe, k[:])
	clear(ss[:])
	return err != nil
}

// smallOrderProbe is the fixed private key IsSmallOrder tests with; it
// guards nothing, so it may be public.
var smallOrderProbe = newECDHKey(&PrivateKey{1})

// String returns the key in standard base64.
func (k PublicKey) String() string { return k.Base64() }

// Base64 returns the key in standard base64.
func (k PublicKey) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex returns the key in lowercase hexadecimal.
func (k PublicKey) Hex() string { return hex.EncodeToString(k[:]) }

// IsZero reports whether k is all zeros (no preshared key), in constant
// time.
func (k *PresharedKey) IsZero() bool { return isZero(k[:]) }

// Zero erases k.
func (k *PresharedKey) Zero() { clear(k[:]) }

// String returns "(preshared key)", never the key.
func (k PresharedKey) String() string { return redactedPreshared }

// Format prints "(preshared key)" for every fmt verb.
func (k PresharedKey) Format(f fmt.State, _ rune) {
	_, _ = io.WriteString(f, redactedPreshared)
}

// LogValue keeps the key out of structured logs.
func (k PresharedKey) LogValue() slog.Value { return slog.StringValue(redactedPreshared) }

// Base64 reveals the key in standard base64.
func (k PresharedKey) Base64() string { return base64.StdEncoding.EncodeToString(k[:]) }

// Hex reveals the key in lowercase hexadecimal.
func (k PresharedKey) Hex() string { return hex.EncodeToString(k[:]) }

// ParsePrivateKey decodes a private key written in standard base64: exactly
// 44 characters, padded, decoding to exactly 32 bytes. Nothing is trimmed.
// The key is taken as written; Curve25519 clamps it when it is used.
func ParsePrivateKey(s string) (PrivateKey, error) {
	var k PrivateKey
	if err := decodeBase64Key((*[KeySize]byte)(&k), s); err != nil {
		return PrivateKey{}, fmt.Errorf("parse private key: %w", err)
	}
	return k, nil
}

// ParsePublicKey decodes a public key written in standard base64, under
// the same rules as ParsePrivateKey.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	if err := decodeBase64Key((*[KeySize]byte)(&k), s); err != nil {
		return PublicKey{}, fmt.Errorf("parse public key: %w", err)
	}
	return k, nil
}

// ParsePresharedKey decodes a preshared key written in standard base64,
// under the same rules as ParsePrivateKey.
func ParsePresharedKey(s string) (PresharedKey, error) {
	var k PresharedKey
	if err := decodeBase64Key((*[KeySize]byte)(&k), s); err != nil {
		return PresharedKey{}, fmt.Errorf("parse preshared key: %w", err)
	}
	return k, nil
}

// ParsePrivateKeyHex decodes a private key written as 64 hexadecimal
// digits of either case.
func ParsePrivateKeyHex(s string) (PrivateKey, error) {
	var k PrivateKey
	if err := decodeHexKey((*[KeySize]byte)(&k), s); err != nil {
		return PrivateKey{}, fmt.Errorf("parse private key: %w", err)
	}
	return k, nil
}

// ParsePublicKeyHex decodes a public key written as 64 hexadecimal digits
// of either case.
func ParsePublicKeyHex(s string) (PublicKey, error) {
	var k PublicKey
	if err := decodeHexKey((*[KeySize]byte)(&k), s); err != nil {
		return PublicKey{}, fmt.Errorf("parse public key: %w", err)
	}
	return k, nil
}

// ParsePresharedKeyHex decodes a preshared key written as 64 hexadecimal
// digits of either case.
func ParsePresharedKeyHex(s string) (PresharedKey, error) {
	var k PresharedKey
	if err := decodeHexKey((*[KeySize]byte)(&k), s); err != nil {
		return PresharedKey{}, fmt.Errorf("parse preshared key: %w", err)
	}
	return k, nil
}

// strictBase64 rejects non-canonical encodings (stray bits in the last
// character), so that every key has exactly one spelling.
var strictBase64 = base64.StdEncoding.Strict()

// decodeBase64Key decodes s into dst. Its errors describe lengths only,
// never the characters of s. Scratch copies are erased before returning.
func decodeBase64Key(dst *[KeySize]byte, s string) error {
	if len(s) != keyBase64Len {
		return fmt.Errorf("%w: want %d base64 characters, got %d",
			ErrBadKey, keyBase64Len, len(s))
	}
	// The decoder skips CR and LF; refuse them, and anything else outside
	// the alphabet, before it sees them.
	for i := 0; i < len(s); i++ {
		if !isBase64Char(s[i]) {
			return fmt.Errorf("%w: not standard base64", ErrBadKey)
		}
	}
	var src [keyBase64Len]byte
	var buf [KeySize + 1]byte
	defer clear(src[:])
	defer clear(buf[:])
	copy(src[:], s)
	n, err := strictBase64.Decode(buf[:], src[:])
	if err != nil {
		return fmt.Errorf("%w: not standard base64", ErrBadKey)
	}
	if n != KeySize {
		return fmt.Errorf("%w: want %d bytes, got %d", ErrBadKey, KeySize, n)
	}
	copy(dst[:], buf[:KeySize])
	return nil
}

// isBase64Char reports whether c belongs to the standard base64 alphabet
// or is the padding character.
func isBase64Char(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	case c == '+', c == '/', c == '=':
		return true
	}
	return false
}

// decodeHexKey decodes s into dst. Its errors describe lengths only, never
// the characters of s.
func decodeHexKey(dst *[KeySize]byte, s string) error {
	if len(s) != keyHexLen {
		return fmt.Errorf("%w: want %d hexadecimal digits, got %d",
			ErrBadKey, keyHexLen, len(s))
	}
	var src [keyHexLen]byte
	var buf [KeySize]byte
	defer clear(src[:])
	defer clear(buf[:])
	copy(src[:], s)
	if _, err := hex.Decode(buf[:], src[:]); err != nil {
		return fmt.Errorf("%w: not hexadecimal", ErrBadKey)
	}
	*dst = buf
	return nil
}
