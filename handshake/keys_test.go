package handshake

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// RFC 7748, section 6.1.
const (
	rfcAlicePrivate = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcAlicePublic  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	rfcBobPrivate   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	rfcBobPublic    = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	rfcShared       = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
)

func TestX25519KnownAnswer(t *testing.T) {
	alice, err := ParsePrivateKeyHex(rfcAlicePrivate)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ParsePrivateKeyHex(rfcBobPrivate)
	if err != nil {
		t.Fatal(err)
	}
	if got := alice.PublicKey().Hex(); got != rfcAlicePublic {
		t.Errorf("Alice's public key = %s, want %s", got, rfcAlicePublic)
	}
	bobPublic := bob.PublicKey()
	if got := bobPublic.Hex(); got != rfcBobPublic {
		t.Errorf("Bob's public key = %s, want %s", got, rfcBobPublic)
	}
	var ss [KeySize]byte
	if err := dh(&ss, newECDHKey(&alice), bobPublic[:]); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(ss[:]); got != rfcShared {
		t.Errorf("shared secret = %s, want %s", got, rfcShared)
	}
	// Clamping, as NewIdentity does, must not change the public key.
	if id := NewIdentity(alice); id.PublicKey().Hex() != rfcAlicePublic {
		t.Error("NewIdentity derived another public key")
	}
}

func TestGeneratePrivateKey(t *testing.T) {
	a, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	if a == b || a.IsZero() {
		t.Fatal("GeneratePrivateKey is not random")
	}
	if a[0]&7 != 0 || a[31]&128 != 0 || a[31]&64 == 0 {
		t.Errorf("key not clamped: first %#x last %#x", a[0], a[31])
	}
	pa, pb := a.PublicKey(), b.PublicKey()
	if pa.Equal(pb) || !pa.Equal(pa) || pa.IsZero() {
		t.Error("public keys compare wrongly")
	}
	a.Zero()
	if !a.IsZero() {
		t.Error("Zero left key material")
	}
}

func TestParseKeyBase64(t *testing.T) {
	key := bytes.Repeat([]byte{0xa5}, KeySize)
	valid := base64.StdEncoding.EncodeToString(key)
	tests := []struct {
		name   string
		in     string
		detail string // in the error; empty for success
	}{
		{"valid", valid, ""},
		{"zero key", strings.Repeat("A", 43) + "=", ""},
		{"31 bytes in 44 characters", base64.StdEncoding.EncodeToString(key[:31]),
			"want 32 bytes, got 31"},
		{"33 bytes in 44 characters", base64.StdEncoding.EncodeToString(append(key, 1)),
			"want 32 bytes, got 33"},
		{"padding dropped", strings.TrimRight(valid, "="), "want 44 base64 characters, got 43"},
		{"empty", "", "got 0"},
		{"trailing newline", valid + "\n", "got 45"},
		{"leading space", " " + valid, "got 45"},
		{"space within", valid[:10] + " " + valid[11:], "not standard base64"},
		{"newline within", valid[:10] + "\n" + valid[11:], "not standard base64"},
		{"carriage return within", valid[:10] + "\r" + valid[11:], "not standard base64"},
		{"URL alphabet", strings.Repeat("-", 43) + "=", "not standard base64"},
		{"padding in the middle", valid[:20] + "=" + valid[21:], "not standard base64"},
		{"stray bits", strings.Repeat("A", 42) + "B=", "not standard base64"},
		{"hex instead", hex.EncodeToString(key), "got 64"},
		{"non-ASCII", valid[:41] + "é=", "not standard base64"},
	}
	type parser struct {
		name  string
		parse func(string) (fmt.Stringer, error)
	}
	parsers := []parser{
		{"private", func(s string) (fmt.Stringer, error) { return ParsePrivateKey(s) }},
		{"public", func(s string) (fmt.Stringer, error) { return ParsePublicKey(s) }},
		{"preshared", func(s string) (fmt.Stringer, error) { return ParsePresharedKey(s) }},
	}
	for _, tt := range tests {
		for _, p := range parsers {
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				_, err := p.parse(tt.in)
				checkParseError(t, tt.in, tt.detail, err)
			})
		}
	}

	k, err := ParsePublicKey(valid)
	if err != nil || !bytes.Equal(k[:], key) || k.String() != valid || k.Base64() != valid {
		t.Errorf("ParsePublicKey round trip: %v %v", k, err)
	}
	priv, _ := ParsePrivateKey(valid)
	psk, _ := ParsePresharedKey(valid)
	if priv.Base64() != valid || psk.Base64() != valid {
		t.Error("Base64 does not round-trip")
	}
}

func TestParseKeyHex(t *testing.T) {
	key := bytes.Repeat([]byte{0xab, 0x0c}, KeySize/2)
	valid := hex.EncodeToString(key)
	tests := []struct {
		name   string
		in     string
		detail string
	}{
		{"lowercase", valid, ""},
		{"uppercase", strings.ToUpper(valid), ""},
		{"short", valid[:62], "want 64 hexadecimal digits, got 62"},
		{"odd", valid[:63], "got 63"},
		{"long", valid + "00", "got 66"},
		{"prefixed", "0x" + valid[2:], "not hexadecimal"},
		{"non-hex digit", "g" + valid[1:], "not hexadecimal"},
		{"space", " " + valid[1:], "not hexadecimal"},
		{"base64 instead", base64.StdEncoding.EncodeToString(key), "got 44"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			priv, err := ParsePrivateKeyHex(tt.in)
			checkParseError(t, tt.in, tt.detail, err)
			pub, err := ParsePublicKeyHex(tt.in)
			checkParseError(t, tt.in, tt.detail, err)
			psk, err := ParsePresharedKeyHex(tt.in)
			checkParseError(t, tt.in, tt.detail, err)
			if tt.detail == "" {
				for _, got := range []string{priv.Hex(), pub.Hex(), psk.Hex()} {
					if got != valid {
						t.Errorf("Hex = %s, want %s", got, valid)
					}
				}
			}
		})
	}
}

// checkParseError checks err against the expected detail and that it
// never repeats the input.
func checkParseError(t *testing.T, in, detail string, err error) {
	t.Helper()
	if detail == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if !errors.Is(err, ErrBadKey) {
		t.Fatalf("error = %v, want ErrBadKey", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, detail) {
		t.Errorf("error %q lacks %q", msg, detail)
	}
	if len(in) >= 8 && strings.Contains(msg, strings.TrimSpace(in)) {
		t.Errorf("error %q repeats the input", msg)
	}
	for i := 0; i+8 <= len(in); i++ {
		if strings.Contains(msg, in[i:i+8]) {
			t.Errorf("error %q repeats part of the input", msg)
			break
		}
	}
}

func TestSecretKeysRedacted(t *testing.T) {
	priv := testPrivateKey(7)
	psk := PresharedKey(testPrivateKey(8))
	id := NewIdentity(priv)
	h := NewHandshake(id, testPublicKey(9), psk, Hop, nil)
	checker := NewCookieChecker(id)
	secrets := []string{
		priv.Base64(), priv.Hex(), psk.Base64(), psk.Hex(),
		fmt.Sprint(priv[0], " ", priv[1], " ", priv[2]),
		fmt.Sprint(psk[0], " ", psk[1], " ", psk[2]),
	}
	values := []struct {
		name string
		v    any
	}{
		{"private key", priv},
		{"private key pointer", &priv},
		{"preshared key", psk},
		{"preshared key pointer", &psk},
		{"struct with keys", struct {
			Private PrivateKey
			PSK     PresharedKey
		}{priv, psk}},
		{"identity", id},
		{"identity value", *id},
		{"handshake", h},
		{"cookie checker", checker},
	}
	for _, tt := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			out := fmt.Sprintf(verb, tt.v)
			for _, secret := range secrets {
				if strings.Contains(out, secret) {
					t.Errorf("%s with %s reveals a secret: %s", tt.name, verb, out)
				}
			}
		}
	}
	if priv.String() != "(private key)" || psk.String() != "(preshared key)" {
		t.Errorf("String() = %q, %q", priv.String(), psk.String())
	}

	var logged bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logged, nil))
	logger.Info("keys", "private", priv, "psk", psk, "session", Session{Send: [32]byte(priv)})
	for _, secret := range secrets {
		if strings.Contains(logged.String(), secret) {
			t.Errorf("slog output reveals a secret: %s", logged.String())
		}
	}
}

func TestPublicKeyString(t *testing.T) {
	pub := testPublicKey(3)
	want := base64.StdEncoding.EncodeToString(pub[:])
	if pub.String() != want || fmt.Sprint(pub) != want {
		t.Errorf("String() = %q, want %q", pub.String(), want)
	}
	var zero PublicKey
	if !zero.IsZero() || pub.IsZero() {
		t.Error("IsZero wrong")
	}
}
