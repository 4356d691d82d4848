package handshake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// fuzzProtocol picks the protocol a fuzzed message claims, Hop if none.
func fuzzProtocol(msg []byte) *Protocol {
	if len(msg) >= typeSize {
		if p, ok := ProtocolForType(binary.LittleEndian.Uint32(msg)); ok {
			return p
		}
	}
	return Hop
}

// checkFuzzError fails unless err wraps one of the package's sentinels.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if !isSentinel(err) {
		t.Fatalf("error outside the sentinels: %v", err)
	}
}

func FuzzConsumeInitiation(f *testing.F) {
	// Seeds must be the same in every fuzzing process: deterministic.
	var seeds [][]byte
	for _, p := range []*Protocol{Hop, WireGuard} {
		_, _, initiation := fuzzInitiator(f, p)
		seeds = append(seeds, initiation)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add(make([]byte, MessageInitiationSize))

	responder := NewIdentity(testPrivateKey(2))
	initiator := testPublicKey(1)
	f.Fuzz(func(t *testing.T, msg []byte) {
		// A fresh peer state each time, so that a seed is never a replay.
		var peer *Handshake
		lookup := func(pk PublicKey) *Handshake {
			if !pk.Equal(initiator) {
				return nil
			}
			peer = NewHandshake(responder, initiator, PresharedKey{}, fuzzProtocol(msg), nil)
			return peer
		}
		h, err := ConsumeInitiation(responder, msg, lookup)
		if err != nil {
			checkFuzzError(t, err)
			if h != nil {
				t.Fatal("handshake returned with an error")
			}
			return
		}
		if h == nil || h != peer || len(msg) != MessageInitiationSize {
			t.Fatal("accepted without returning the peer's handshake")
		}
		// Only the MACs' trailing mac2 is free; the rest must be a seed.
		forged := true
		for _, s := range seeds {
			if bytes.Equal(s[:initiationOffsetMAC2], msg[:initiationOffsetMAC2]) {
				forged = false
			}
		}
		if forged {
			t.Fatal("accepted an initiation the initiator never wrote")
		}
		if _, _, err := h.CreateResponse(make([]byte, MessageResponseSize), 9); err != nil {
			t.Fatalf("CreateResponse after an accepted initiation: %v", err)
		}
	})
}

// fuzzInitiator returns an initiator whose initiation is the same every
// time: fixed keys, fixed randomness, a fixed timestamp.
func fuzzInitiator(tb testing.TB, p *Protocol) (*Identity, *Handshake, []byte) {
	tb.Helper()
	id := NewIdentity(testPrivateKey(1))
	h := NewHandshake(id, testPublicKey(2), PresharedKey{}, p, fixedClock{})
	h.random = detRand(42)
	msg := make([]byte, MessageInitiationSize)
	if _, err := h.CreateInitiation(msg, initiatorIndex); err != nil {
		tb.Fatal(err)
	}
	return id, h, msg
}

func FuzzConsumeResponse(f *testing.F) {
	want := make(map[*Protocol]Session)
	responder := NewIdentity(testPrivateKey(2))
	for _, p := range []*Protocol{Hop, WireGuard} {
		_, _, initiation := fuzzInitiator(f, p)
		peer := NewHandshake(responder, testPublicKey(1), PresharedKey{}, p, nil)
		peer.random = detRand(43) // the same seeds in every fuzzing process
		h, err := ConsumeInitiation(responder, initiation,
			func(PublicKey) *Handshake { return peer })
		if err != nil {
			f.Fatal(err)
		}
		response := make([]byte, MessageResponseSize)
		s, _, err := h.CreateResponse(response, responderIndex)
		if err != nil {
			f.Fatal(err)
		}
		want[p] = s
		f.Add(response)
	}
	f.Add([]byte{})
	f.Add(make([]byte, MessageResponseSize))

	f.Fuzz(func(t *testing.T, msg []byte) {
		p := fuzzProtocol(msg)
		id, h, _ := fuzzInitiator(t, p)
		lookup := func(i uint32) *Handshake {
			if i == initiatorIndex {
				return h
			}
			return nil
		}
		got, s, err := ConsumeResponse(id, msg, lookup)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if got != h {
			t.Fatal("accepted without returning the handshake")
		}
		if s.Send != want[p].Receive || s.Receive != want[p].Send {
			t.Fatal("accepted a response that yields other secrets than the responder's")
		}
	})
}

func FuzzConsumeCookieReply(f *testing.F) {
	src := []byte{127, 0, 0, 1, 0x1f, 0x90}
	handshakes := make(map[*Protocol]*Handshake)
	for _, p := range []*Protocol{Hop, WireGuard} {
		_, h, initiation := fuzzInitiator(f, p)
		handshakes[p] = h
		checker := NewCookieChecker(NewIdentity(testPrivateKey(2)))
		checker.random = detRand(7)
		reply := make([]byte, MessageCookieReplySize)
		if _, err := checker.CreateReply(reply, initiation, src); err != nil {
			f.Fatal(err)
		}
		f.Add(reply)
	}
	f.Add([]byte{})
	f.Add(make([]byte, MessageCookieReplySize))

	f.Fuzz(func(t *testing.T, msg []byte) {
		h := handshakes[fuzzProtocol(msg)]
		h.mu.Lock()
		h.cookieSet = h.cookieSet.AddDate(-1, 0, 0) // forget any earlier cookie
		h.mu.Unlock()
		if err := h.ConsumeCookieReply(msg); err != nil {
			checkFuzzError(t, err)
			return
		}
		if _, err := CookieReplyReceiver(msg); err != nil {
			t.Fatalf("accepted reply has no receiver: %v", err)
		}
		out := make([]byte, MessageInitiationSize)
		if _, err := h.CreateInitiation(out, initiatorIndex); err != nil {
			t.Fatal(err)
		}
		if isZero(out[initiationOffsetMAC2:]) {
			t.Fatal("accepted cookie not used for mac2")
		}
	})
}

// keyErrorDetails are the only things a key parsing error may say after
// the operation and sentinel, numbers replaced by N: lengths, never
// content.
var keyErrorDetails = map[string]bool{
	"want N base64 characters, got N":  true,
	"not standard base64":              true,
	"want N bytes, got N":              true,
	"want N hexadecimal digits, got N": true,
	"not hexadecimal":                  true,
}

// numbers matches the numbers in an error's text.
var numbers = regexp.MustCompile(`\b[0-9]+\b`)

func FuzzParseKey(f *testing.F) {
	f.Add("pKWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaU=")
	f.Add(strings.Repeat("A", 43) + "=")
	f.Add(strings.Repeat("ab", 32))
	f.Add(strings.Repeat("AB", 32))
	f.Add("")
	f.Add(strings.Repeat("A", 44))
	f.Fuzz(func(t *testing.T, s string) {
		priv, errPriv := ParsePrivateKey(s)
		pub, errPub := ParsePublicKey(s)
		psk, errPSK := ParsePresharedKey(s)
		if (errPriv == nil) != (errPub == nil) || (errPub == nil) != (errPSK == nil) {
			t.Fatal("the base64 parsers disagree")
		}
		if errPub == nil {
			// Strict decoding: exactly one spelling per key.
			if pub.Base64() != s || priv.Base64() != s || psk.Base64() != s {
				t.Fatalf("accepted a non-canonical spelling")
			}
		}
		hpriv, errHPriv := ParsePrivateKeyHex(s)
		hpub, errHPub := ParsePublicKeyHex(s)
		hpsk, errHPSK := ParsePresharedKeyHex(s)
		if (errHPriv == nil) != (errHPub == nil) || (errHPub == nil) != (errHPSK == nil) {
			t.Fatal("the hex parsers disagree")
		}
		if errHPub == nil {
			low := strings.ToLower(s)
			if hpub.Hex() != low || hpriv.Hex() != low || hpsk.Hex() != low {
				t.Fatal("hex does not round-trip")
			}
		}
		for _, err := range []error{errPriv, errPub, errPSK, errHPriv, errHPub, errHPSK} {
			if err == nil {
				continue
			}
			if !errors.Is(err, ErrBadKey) {
				t.Fatalf("error without ErrBadKey: %v", err)
			}
			_, detail, ok := strings.Cut(err.Error(), ErrBadKey.Error()+": ")
			detail = numbers.ReplaceAllString(detail, "N")
			if !ok || !keyErrorDetails[detail] {
				t.Fatalf("unexpected error text: %q", err)
			}
		}
	})
}
