package handshake

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/hkdf"
)

// The start of WireGuard's hash chain, as independent implementations
// publish it: HASH(construction) and HASH(that || identifier).
const (
	wireGuardInitialChainKey = "60e26daef327efc02ec335e2a025d2d016eb4206f87277f52d38d1988b78cd36"
	wireGuardInitialHash     = "2211b361081ac566691243db458ad5322d9c6c662293e8b70ee19c65ba079ef3"
)

func TestInitialChainKnownAnswer(t *testing.T) {
	if got := hex.EncodeToString(WireGuard.initialChainKey[:]); got != wireGuardInitialChainKey {
		t.Errorf("WireGuard initial chaining key = %s, want %s", got, wireGuardInitialChainKey)
	}
	if got := hex.EncodeToString(WireGuard.initialHash[:]); got != wireGuardInitialHash {
		t.Errorf("WireGuard initial hash = %s, want %s", got, wireGuardInitialHash)
	}

	// Hop shares the Noise construction but not the identifier.
	if Hop.initialChainKey != WireGuard.initialChainKey {
		t.Error("Hop and WireGuard initial chaining keys differ; both hash the construction")
	}
	d, _ := blake2s.New256(nil)
	d.Write(Hop.initialChainKey[:])
	d.Write([]byte(HopIdentifier))
	if want := d.Sum(nil); !bytes.Equal(Hop.initialHash[:], want) {
		t.Errorf("Hop initial hash = %x, want %x", Hop.initialHash, want)
	}
	if Hop.initialHash == WireGuard.initialHash {
		t.Error("Hop and WireGuard share an initial hash")
	}
}

func TestProtocolDescriptors(t *testing.T) {
	tests := []struct {
		name        string
		p           *Protocol
		types       [4]uint32
		mac1, label string
	}{
		{"hop", Hop, [4]uint32{17, 18, 19, 20}, "hop-mac1", "hop-cook"},
		{"wireguard", WireGuard, [4]uint32{1, 2, 3, 4}, "mac1----", "cookie--"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := [4]uint32{tt.p.TypeInitiation, tt.p.TypeResponse,
				tt.p.TypeCookieReply, tt.p.TypeTransport}
			if got != tt.types {
				t.Errorf("types = %v, want %v", got, tt.types)
			}
			if tt.p.labelMAC1 != tt.mac1 || tt.p.labelCookie != tt.label {
				t.Errorf("labels = %q %q", tt.p.labelMAC1, tt.p.labelCookie)
			}
			if tt.p.Name != tt.name || tt.p.String() != tt.name {
				t.Errorf("name = %q", tt.p.Name)
			}
			for _, typ := range tt.types {
				if p, ok := ProtocolForType(typ); !ok || p != tt.p {
					t.Errorf("ProtocolForType(%d) = %v, %t", typ, p, ok)
				}
			}
		})
	}
	for _, typ := range []uint32{0, 5, 16, 21, 1 << 8, 17 << 24} {
		if p, ok := ProtocolForType(typ); ok {
			t.Errorf("ProtocolForType(%d) = %v, want none", typ, p)
		}
	}
}

func TestMessageLayout(t *testing.T) {
	tests := []struct {
		name      string
		got, want int
	}{
		{"initiation ephemeral", initiationOffsetEphemeral, 8},
		{"initiation static", initiationOffsetStatic, 40},
		{"initiation timestamp", initiationOffsetTimestamp, 88},
		{"initiation mac1", initiationOffsetMAC1, 116},
		{"initiation mac2", initiationOffsetMAC2, 132},
		{"initiation end", initiationOffsetMAC2 + macSize, MessageInitiationSize},
		{"response receiver", responseOffsetReceiver, 8},
		{"response ephemeral", responseOffsetEphemeral, 12},
		{"response empty", responseOffsetEmpty, 44},
		{"response mac1", responseOffsetMAC1, 60},
		{"response mac2", responseOffsetMAC2, 76},
		{"response end", responseOffsetMAC2 + macSize, MessageResponseSize},
		{"cookie nonce", cookieReplyOffsetNonce, 8},
		{"cookie cookie", cookieReplyOffsetCookie, 32},
		{"cookie end", cookieReplyOffsetCookie + encryptedCookie, MessageCookieReplySize},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s offset = %d, want %d", tt.name, tt.got, tt.want)
		}
	}
}

// The KDF is HKDF over HMAC-BLAKE2s with empty info; check it against
// x/crypto/hkdf.
func TestKDFIsHKDF(t *testing.T) {
	key := bytes.Repeat([]byte{0x42}, hashSize)
	for _, input := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{7}, 32)} {
		var t0, t1, t2 [hashSize]byte
		kdf3(&t0, &t1, &t2, key, input)
		want := make([]byte, 3*hashSize)
		if _, err := io.ReadFull(hkdf.New(newBlake2s, input, key, nil), want); err != nil {
			t.Fatal(err)
		}
		got := append(append(t0[:], t1[:]...), t2[:]...)
		if !bytes.Equal(got, want) {
			t.Errorf("kdf3(%x) = %x, want %x", input, got, want)
		}

		// Aliasing the key with the first output must not change it.
		ck := [hashSize]byte(key)
		var k [hashSize]byte
		kdf2(&ck, &k, ck[:], input)
		if !bytes.Equal(ck[:], want[:hashSize]) || !bytes.Equal(k[:], want[hashSize:2*hashSize]) {
			t.Errorf("kdf2 with aliased key differs from HKDF")
		}
	}
}

func TestRoundTrip(t *testing.T) {
	psk := PresharedKey(blake2s.Sum256([]byte("psk")))
	tests := []struct {
		name string
		p    *Protocol
		psk  PresharedKey
	}{
		{"hop", Hop, PresharedKey{}},
		{"hop psk", Hop, psk},
		{"wireguard", WireGuard, PresharedKey{}},
		{"wireguard psk", WireGuard, psk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPair(t, tt.p, tt.psk)
			initiation := pr.initiation(t)
			if got := binary.LittleEndian.Uint32(initiation); got != tt.p.TypeInitiation {
				t.Errorf("initiation type = %d", got)
			}
			response, rs := pr.respond(t, initiation)
			if got := binary.LittleEndian.Uint32(response); got != tt.p.TypeResponse {
				t.Errorf("response type = %d", got)
			}
			_, is, err := ConsumeResponse(pr.initID, response, pr.byIndex)
			if err != nil {
				t.Fatalf("ConsumeResponse: %v", err)
			}

			if is.Send != rs.Receive || is.Receive != rs.Send {
				t.Error("the two sides' transport secrets do not cross-match")
			}
			if is.Send == is.Receive {
				t.Error("send and receive secrets are equal")
			}
			if isZero(is.Send[:]) || isZero(is.Receive[:]) {
				t.Error("zero transport secret")
			}
			if !is.Initiator || rs.Initiator {
				t.Errorf("Initiator = %t, %t; want true, false", is.Initiator, rs.Initiator)
			}
			if is.LocalIndex != initiatorIndex || is.RemoteIndex != responderIndex {
				t.Errorf("initiator indices = %#x, %#x", is.LocalIndex, is.RemoteIndex)
			}
			if rs.LocalIndex != responderIndex || rs.RemoteIndex != initiatorIndex {
				t.Errorf("responder indices = %#x, %#x", rs.LocalIndex, rs.RemoteIndex)
			}
			if is.Protocol != tt.p || rs.Protocol != tt.p {
				t.Errorf("session protocols = %v, %v", is.Protocol, rs.Protocol)
			}
			assertErased(t, "initiator", pr.init)
			assertErased(t, "responder", pr.resp)
		})
	}
}

// assertErased fails unless h holds no in-flight secret.
func assertErased(t *testing.T, name string, h *Handshake) {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if !isZero(h.hash[:]) || !isZero(h.chainKey[:]) || h.localEphemeral != nil ||
		!h.remoteEphemeral.IsZero() || h.state != stateIdle {
		t.Errorf("%s handshake not erased (state %d)", name, h.state)
	}
}

func TestSessionsDifferEachHandshake(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	first, _ := pr.complete(t)
	pr.clock.advance(time.Second)
	second, _ := pr.complete(t)
	if first.Send == second.Send || first.Receive == second.Receive {
		t.Error("two handshakes produced the same transport secrets")
	}
}

func TestProtocolMismatch(t *testing.T) {
	tests := []struct {
		name             string
		sender, receiver *Protocol
	}{
		{"hop initiation to wireguard peer", Hop, WireGuard},
		{"wireguard initiation to hop peer", WireGuard, Hop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPair(t, tt.sender, PresharedKey{})
			pr.resp = NewHandshake(pr.respID, pr.initID.PublicKey(), PresharedKey{},
				tt.receiver, nil)
			_, err := ConsumeInitiation(pr.respID, pr.initiation(t), pr.byStatic)
			if !errors.Is(err, ErrProtocolMismatch) {
				t.Fatalf("ConsumeInitiation error = %v, want ErrProtocolMismatch", err)
			}
		})
	}

	// An initiation of the other protocol whose timestamp does not
	// authenticate proves nothing: anyone who knows both public keys can
	// encrypt the static key. It is a decryption failure, not a mismatch.
	t.Run("forged initiation of the other protocol", func(t *testing.T) {
		pr := newPair(t, WireGuard, PresharedKey{})
		pr.resp = NewHandshake(pr.respID, pr.initID.PublicKey(), PresharedKey{}, Hop, nil)
		msg := pr.initiation(t)
		msg[initiationOffsetTimestamp+3] ^= 0x01
		resealMAC1(msg, WireGuard, pr.respID.PublicKey())
		_, err := ConsumeInitiation(pr.respID, msg, pr.byStatic)
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("ConsumeInitiation error = %v, want ErrDecrypt", err)
		}
	})

	t.Run("response for a handshake of the other protocol", func(t *testing.T) {
		hop := newPair(t, Hop, PresharedKey{})
		wg := newPair(t, WireGuard, PresharedKey{})
		wg.initiation(t)
		response, _ := hop.respond(t, hop.initiation(t))
		_, _, err := ConsumeResponse(wg.initID, response, wg.byIndex)
		if !errors.Is(err, ErrProtocolMismatch) {
			t.Fatalf("ConsumeResponse error = %v, want ErrProtocolMismatch", err)
		}
	})
}

// A message of one protocol relabelled as the other, even with a mac1
// recomputed by someone who knows the receiver's public key, does not
// decrypt: the hash chains differ from the first step.
func TestCrossProtocolNeverAccepted(t *testing.T) {
	tests := []struct {
		name     string
		from, to *Protocol
	}{
		{"hop as wireguard", Hop, WireGuard},
		{"wireguard as hop", WireGuard, Hop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPair(t, tt.from, PresharedKey{})
			pr.resp = NewHandshake(pr.respID, pr.initID.PublicKey(), PresharedKey{}, tt.to, nil)
			msg := pr.initiation(t)
			binary.LittleEndian.PutUint32(msg, tt.to.TypeInitiation)
			if err := pr.consume(msg); !errors.Is(err, ErrBadMAC1) {
				t.Errorf("relabelled initiation: error = %v, want ErrBadMAC1", err)
			}
			resealMAC1(msg, tt.to, pr.respID.PublicKey())
			if err := pr.consume(msg); !errors.Is(err, ErrDecrypt) {
				t.Errorf("relabelled, resealed initiation: error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestBadMAC1(t *testing.T) {
	tests := []struct {
		name string
		at   int
	}{
		{"mac1 altered", initiationOffsetMAC1},
		{"sender altered", initiationOffsetSender},
		{"ephemeral altered", initiationOffsetEphemeral + 3},
		{"timestamp altered", initiationOffsetTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPair(t, Hop, PresharedKey{})
			msg := pr.initiation(t)
			msg[tt.at] ^= 0x01
			checker := NewCookieChecker(pr.respID)
			if checker.CheckMAC1(msg) {
				t.Error("CheckMAC1 accepted an altered message")
			}
			if err := pr.consume(msg); !errors.Is(err, ErrBadMAC1) {
				t.Errorf("ConsumeInitiation error = %v, want ErrBadMAC1", err)
			}
		})
	}

	t.Run("response", func(t *testing.T) {
		pr := newPair(t, WireGuard, PresharedKey{})
		response, _ := pr.respond(t, pr.initiation(t))
		response[responseOffsetMAC1+5] ^= 0x80
		_, _, err := ConsumeResponse(pr.initID, response, pr.byIndex)
		if !errors.Is(err, ErrBadMAC1) {
			t.Errorf("ConsumeResponse error = %v, want ErrBadMAC1", err)
		}
	})

	t.Run("addressed to another identity", func(t *testing.T) {
		pr := newPair(t, Hop, PresharedKey{})
		other := NewIdentity(testPrivateKey(9))
		_, err := ConsumeInitiation(other, pr.initiation(t), pr.byStatic)
		if !errors.Is(err, ErrBadMAC1) {
			t.Errorf("ConsumeInitiation error = %v, want ErrBadMAC1", err)
		}
	})
}

// Bytes after mac1 are covered by nothing ConsumeInitiation checks, but
// everything before it is authenticated twice; a forged mac1 over an
// altered body still fails to decrypt.
func TestTamperedBodyWithResealedMAC1(t *testing.T) {
	for _, at := range []int{initiationOffsetStatic, initiationOffsetTimestamp + 5} {
		pr := newPair(t, WireGuard, PresharedKey{})
		msg := pr.initiation(t)
		msg[at] ^= 0x01
		resealMAC1(msg, WireGuard, pr.respID.PublicKey())
		if err := pr.consume(msg); !errors.Is(err, ErrDecrypt) {
			t.Errorf("byte %d altered: error = %v, want ErrDecrypt", at, err)
		}
	}
}

func TestReplayedInitiation(t *testing.T) {
	for _, p := range []*Protocol{Hop, WireGuard} {
		t.Run(p.Name, func(t *testing.T) {
			pr := newPair(t, p, PresharedKey{})
			msg := pr.initiation(t)
			replay := bytes.Clone(msg)
			pr.respond(t, msg)

			// Past the flood window, so only the timestamp can refuse it.
			pr.clock.advance(time.Minute)
			if err := pr.consume(replay); !errors.Is(err, ErrReplayedInitiation) {
				t.Fatalf("replay error = %v, want ErrReplayedInitiation", err)
			}

			// An older initiation is refused as well; a newer one is not.
			older := pr.initiation(t)
			newer := pr.initiation(t)
			pr.respond(t, newer)
			pr.clock.advance(time.Minute)
			if err := pr.consume(older); !errors.Is(err, ErrReplayedInitiation) {
				t.Fatalf("older initiation error = %v, want ErrReplayedInitiation", err)
			}
		})
	}
}

func TestInitiationFlood(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	pr.respond(t, pr.initiation(t))

	pr.clock.advance(HandshakeInitiationRate)
	if err := pr.consume(pr.initiation(t)); !errors.Is(err, ErrInitiationFlood) {
		t.Fatalf("second initiation at the rate limit: error = %v, want ErrInitiationFlood", err)
	}
	pr.clock.advance(time.Millisecond)
	pr.respond(t, pr.initiation(t))
}

func TestWrongPresharedKey(t *testing.T) {
	pr := newPair(t, WireGuard, PresharedKey{1})
	pr.resp.SetPresharedKey(PresharedKey{2})
	response, _ := pr.respond(t, pr.initiation(t))
	_, _, err := ConsumeResponse(pr.initID, response, pr.byIndex)
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("ConsumeResponse error = %v, want ErrDecrypt", err)
	}
	// The failed response must not cancel the initiation in flight.
	pr.init.mu.Lock()
	state := pr.init.state
	pr.init.mu.Unlock()
	if state != stateInitiationCreated {
		t.Errorf("state after a bad response = %d, want initiation in flight", state)
	}

	pr.resp.SetPresharedKey(PresharedKey{1})
	pr.clock.advance(time.Second)
	pr.complete(t)
}

func TestUnknownPeerAndIndex(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	none := func(PublicKey) *Handshake { return nil }
	_, err := ConsumeInitiation(pr.respID, pr.initiation(t), none)
	if !errors.Is(err, ErrUnknownPeer) {
		t.Errorf("ConsumeInitiation error = %v, want ErrUnknownPeer", err)
	}

	response, _ := pr.respond(t, pr.initiation(t))
	noIndex := func(uint32) *Handshake { return nil }
	_, _, err = ConsumeResponse(pr.initID, response, noIndex)
	if !errors.Is(err, ErrUnknownIndex) {
		t.Errorf("ConsumeResponse error = %v, want ErrUnknownIndex", err)
	}
}

func TestUnexpectedResponse(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, pr *pair)
	}{
		{"consumed twice", func(t *testing.T, pr *pair) {
			if _, _, err := ConsumeResponse(pr.initID, pr.lastResponse, pr.byIndex); err != nil {
				t.Fatal(err)
			}
		}},
		{"after Clear", func(_ *testing.T, pr *pair) { pr.init.Clear() }},
		{"superseded by a new initiation", func(t *testing.T, pr *pair) {
			if _, err := pr.init.CreateInitiation(make([]byte, 148), 7); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr := newPair(t, Hop, PresharedKey{})
			pr.lastResponse, _ = pr.respond(t, pr.initiation(t))
			tt.prepare(t, pr)
			_, _, err := ConsumeResponse(pr.initID, pr.lastResponse, pr.byIndex)
			if !errors.Is(err, ErrUnexpectedResponse) {
				t.Errorf("error = %v, want ErrUnexpectedResponse", err)
			}
		})
	}
}

func TestCreateResponseNeedsInitiation(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	_, _, err := pr.resp.CreateResponse(make([]byte, MessageResponseSize), 1)
	if !errors.Is(err, ErrNoInitiation) {
		t.Errorf("error = %v, want ErrNoInitiation", err)
	}
	// Nor can a response be created twice for one initiation.
	pr.respond(t, pr.initiation(t))
	_, _, err = pr.resp.CreateResponse(make([]byte, MessageResponseSize), 1)
	if !errors.Is(err, ErrNoInitiation) {
		t.Errorf("second response: error = %v, want ErrNoInitiation", err)
	}
}

func TestShortDestination(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	if _, err := pr.init.CreateInitiation(make([]byte, 147), 1); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("CreateInitiation error = %v, want ErrShortBuffer", err)
	}
	if _, err := ConsumeInitiation(pr.respID, pr.initiation(t), pr.byStatic); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pr.resp.CreateResponse(make([]byte, 91), 1); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("CreateResponse error = %v, want ErrShortBuffer", err)
	}
	checker := NewCookieChecker(pr.respID)
	_, err := checker.CreateReply(make([]byte, 63), pr.initiation(t), []byte{1})
	if !errors.Is(err, ErrShortBuffer) {
		t.Errorf("CreateReply error = %v, want ErrShortBuffer", err)
	}
}

// A larger destination is fine; only its prefix is written.
func TestLargerDestination(t *testing.T) {
	pr := newPair(t, WireGuard, PresharedKey{})
	buf := bytes.Repeat([]byte{0xee}, 2*MessageInitiationSize)
	n, err := pr.init.CreateInitiation(buf, initiatorIndex)
	if err != nil || n != MessageInitiationSize {
		t.Fatalf("CreateInitiation = %d, %v", n, err)
	}
	if buf[n] != 0xee {
		t.Error("CreateInitiation wrote past the message")
	}
	pr.respond(t, buf[:n])
}

func TestMalformedMessages(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	initiation := pr.initiation(t)
	response, _ := pr.respond(t, pr.initiation(t))
	reply := make([]byte, MessageCookieReplySize)
	binary.LittleEndian.PutUint32(reply, Hop.TypeCookieReply)

	tests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrShortMessage},
		{"three bytes", []byte{17, 0, 0}, ErrShortMessage},
		{"truncated initiation", initiation[:MessageInitiationSize-1], ErrShortMessage},
		{"header only", initiation[:4], ErrShortMessage},
		{"oversized initiation", append(bytes.Clone(initiation), 0), ErrLongMessage},
		{"response", response, ErrWrongType},
		{"cookie reply", reply, ErrWrongType},
		{"unknown type", append([]byte{5, 0, 0, 0}, initiation[4:]...), ErrWrongType},
		{"reserved bytes set", append([]byte{17, 0, 1, 0}, initiation[4:]...), ErrWrongType},
		{"transport type", append([]byte{20, 0, 0, 0}, initiation[4:]...), ErrWrongType},
	}
	for _, tt := range tests {
		t.Run("initiation/"+tt.name, func(t *testing.T) {
			h, err := ConsumeInitiation(pr.respID, tt.msg, pr.byStatic)
			if !errors.Is(err, tt.want) || h != nil {
				t.Errorf("ConsumeInitiation = %v, %v; want nil, %v", h, err, tt.want)
			}
		})
	}

	responseTests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrShortMessage},
		{"truncated", response[:MessageResponseSize-1], ErrShortMessage},
		{"oversized", append(bytes.Clone(response), 0), ErrLongMessage},
		{"initiation", initiation, ErrWrongType},
	}
	for _, tt := range responseTests {
		t.Run("response/"+tt.name, func(t *testing.T) {
			h, _, err := ConsumeResponse(pr.initID, tt.msg, pr.byIndex)
			if !errors.Is(err, tt.want) || h != nil {
				t.Errorf("ConsumeResponse = %v, %v; want nil, %v", h, err, tt.want)
			}
		})
	}

	cookieTests := []struct {
		name string
		msg  []byte
		want error
	}{
		{"empty", nil, ErrShortMessage},
		{"truncated", reply[:MessageCookieReplySize-1], ErrShortMessage},
		{"oversized", append(bytes.Clone(reply), 0), ErrLongMessage},
		{"initiation", initiation, ErrWrongType},
	}
	for _, tt := range cookieTests {
		t.Run("cookie reply/"+tt.name, func(t *testing.T) {
			if err := pr.init.ConsumeCookieReply(tt.msg); !errors.Is(err, tt.want) {
				t.Errorf("ConsumeCookieReply error = %v, want %v", err, tt.want)
			}
			if _, err := CookieReplyReceiver(tt.msg); !errors.Is(err, tt.want) {
				t.Errorf("CookieReplyReceiver error = %v, want %v", err, tt.want)
			}
		})
	}

	// The checker must refuse anything that is not a whole initiation or
	// response, without panicking.
	checker := NewCookieChecker(pr.respID)
	junk := [][]byte{nil, {1}, initiation[:100], reply, append(bytes.Clone(response), 0)}
	for _, msg := range junk {
		if checker.CheckMAC1(msg) || checker.CheckMAC2(msg, []byte{1, 2}) {
			t.Errorf("checker accepted a %d-byte message", len(msg))
		}
		if _, err := checker.CreateReply(make([]byte, 64), msg, []byte{1}); err == nil {
			t.Errorf("CreateReply answered a %d-byte message", len(msg))
		}
	}
}

func TestInvalidRemoteKey(t *testing.T) {
	id := NewIdentity(testPrivateKey(1))
	// The all-zero point and the point of order 2 (u = 1) give a zero
	// shared secret with every private key.
	for _, remote := range []PublicKey{{}, {1}} {
		h := NewHandshake(id, remote, PresharedKey{}, Hop, nil)
		_, err := h.CreateInitiation(make([]byte, MessageInitiationSize), 1)
		if !errors.Is(err, ErrInvalidPublicKey) {
			t.Errorf("remote %x: error = %v, want ErrInvalidPublicKey", remote[:1], err)
		}
	}
}

// A low-order ephemeral key with a valid mac1 is refused before any peer
// is looked up.
func TestLowOrderEphemeral(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{})
	msg := pr.initiation(t)
	clear(msg[initiationOffsetEphemeral:initiationOffsetStatic])
	resealMAC1(msg, Hop, pr.respID.PublicKey())
	looked := false
	_, err := ConsumeInitiation(pr.respID, msg, func(PublicKey) *Handshake {
		looked = true
		return nil
	})
	if !errors.Is(err, ErrInvalidPublicKey) || looked {
		t.Errorf("error = %v (lookup called: %t), want ErrInvalidPublicKey", err, looked)
	}
}

func TestClearAndZero(t *testing.T) {
	pr := newPair(t, Hop, PresharedKey{3})
	pr.initiation(t)
	pr.init.Clear()
	assertErased(t, "cleared", pr.init)
	// Clear keeps the configuration: the next handshake works.
	pr.complete(t)

	pr.init.Zero()
	pr.init.mu.Lock()
	zeroed := pr.init.presharedKey.IsZero() && isZero(pr.init.staticStatic[:])
	pr.init.mu.Unlock()
	if !zeroed {
		t.Error("Zero left the preshared key or static-static secret")
	}
	_, err := pr.init.CreateInitiation(make([]byte, MessageInitiationSize), 1)
	if !errors.Is(err, ErrInvalidPublicKey) {
		t.Errorf("CreateInitiation after Zero: error = %v, want ErrInvalidPublicKey", err)
	}
}

func TestSessionZeroAndFormat(t *testing.T) {
	pr := newPair(t, WireGuard, PresharedKey{})
	s, _ := pr.complete(t)
	secrets := []string{
		hex.EncodeToString(s.Send[:]), hex.EncodeToString(s.Receive[:]),
		fmt.Sprint(s.Send[0], " ", s.Send[1], " ", s.Send[2]),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
		out := fmt.Sprintf(verb, s) + fmt.Sprintf(verb, &s)
		for _, secret := range secrets {
			if bytes.Contains([]byte(out), []byte(secret)) {
				t.Errorf("%s reveals a transport secret: %s", verb, out)
			}
		}
	}
	want := "session(wireguard local=286331153 remote=572662306 initiator=true)"
	if got := fmt.Sprint(s); got != want {
		t.Errorf("Sprint(session) = %q", got)
	}
	s.Zero()
	if !isZero(s.Send[:]) || !isZero(s.Receive[:]) {
		t.Error("Session.Zero left a secret")
	}
}

// Many handshakes with many peers at once, for the race detector.
func TestConcurrentHandshakes(t *testing.T) {
	responder := NewIdentity(testPrivateKey(100))
	const peers = 8
	var (
		initiators = make([]*Handshake, peers)
		responders = make(map[PublicKey]*Handshake)
	)
	for i := range peers {
		id := NewIdentity(testPrivateKey(byte(i)))
		p := Hop
		if i%2 == 1 {
			p = WireGuard
		}
		initiators[i] = NewHandshake(id, responder.PublicKey(), PresharedKey{}, p, &stepClock{})
		responders[id.PublicKey()] = NewHandshake(responder, id.PublicKey(), PresharedKey{}, p,
			&stepClock{})
	}
	byStatic := func(pk PublicKey) *Handshake { return responders[pk] }
	byIndex := func(i uint32) *Handshake { return initiators[i] }

	var wg sync.WaitGroup
	for i := range peers {
		wg.Go(func() {
			initiation := make([]byte, MessageInitiationSize)
			response := make([]byte, MessageResponseSize)
			if _, err := initiators[i].CreateInitiation(initiation, uint32(i)); err != nil {
				t.Error(err)
				return
			}
			h, err := ConsumeInitiation(responder, initiation, byStatic)
			if err != nil {
				t.Error(err)
				return
			}
			rs, _, err := h.CreateResponse(response, uint32(1000+i))
			if err != nil {
				t.Error(err)
				return
			}
			_, is, err := ConsumeResponse(initiators[i].id, response, byIndex)
			if err != nil {
				t.Error(err)
				return
			}
			if is.Send != rs.Receive {
				t.Errorf("peer %d: secrets do not match", i)
			}
		})
	}
	wg.Wait()
}
