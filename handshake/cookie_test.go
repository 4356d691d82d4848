package handshake

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// cookieSetup is a pair whose responder has a CookieChecker on the pair's
// clock.
func cookieSetup(t *testing.T, p *Protocol) (*pair, *CookieChecker) {
	t.Helper()
	pr := newPair(t, p, PresharedKey{})
	checker := NewCookieChecker(pr.respID)
	checker.now = pr.clock.now
	return pr, checker
}

func TestCookieRoundTrip(t *testing.T) {
	src := []byte{192, 0, 2, 1, 0xca, 0x6c}
	for _, p := range []*Protocol{Hop, WireGuard} {
		t.Run(p.Name, func(t *testing.T) {
			pr, checker := cookieSetup(t, p)

			first := pr.initiation(t)
			if !checker.CheckMAC1(first) {
				t.Fatal("CheckMAC1 refused a fresh initiation")
			}
			if checker.CheckMAC2(first, src) {
				t.Fatal("CheckMAC2 accepted an initiation sent without a cookie")
			}
			if !isZero(first[initiationOffsetMAC2:]) {
				t.Error("mac2 not zero without a cookie")
			}

			// Under load the responder answers with a cookie reply.
			reply := make([]byte, MessageCookieReplySize)
			n, err := checker.CreateReply(reply, first, src)
			if err != nil || n != MessageCookieReplySize {
				t.Fatalf("CreateReply = %d, %v", n, err)
			}
			if got := binary.LittleEndian.Uint32(reply); got != p.TypeCookieReply {
				t.Errorf("reply type = %d, want %d", got, p.TypeCookieReply)
			}
			receiver, err := CookieReplyReceiver(reply)
			if err != nil || receiver != initiatorIndex {
				t.Fatalf("CookieReplyReceiver = %#x, %v; want %#x", receiver, err, initiatorIndex)
			}
			if err := pr.init.ConsumeCookieReply(reply); err != nil {
				t.Fatalf("ConsumeCookieReply: %v", err)
			}

			// The retry carries a mac2 bound to src, and still completes.
			pr.clock.advance(time.Second)
			second := pr.initiation(t)
			if !checker.CheckMAC1(second) || !checker.CheckMAC2(second, src) {
				t.Fatal("retry after a cookie reply does not carry valid MACs")
			}
			if checker.CheckMAC2(second, []byte{192, 0, 2, 2, 0xca, 0x6c}) {
				t.Error("mac2 valid for another source address")
			}
			response, _ := pr.respond(t, second)
			if !NewCookieChecker(pr.initID).CheckMAC1(response) {
				t.Error("initiator's checker refused the response's mac1")
			}
			if checker.CheckMAC1(response) {
				t.Error("responder's checker accepted a response addressed to the initiator")
			}

			// The initiator stops using the cookie once it is stale.
			pr.clock.advance(CookieRefreshTime)
			stale := pr.initiation(t)
			if checker.CheckMAC2(stale, src) || !isZero(stale[initiationOffsetMAC2:]) {
				t.Error("mac2 still sent with a cookie older than CookieRefreshTime")
			}
		})
	}
}

// Responses carry mac2 too, so a responder can be asked for a cookie.
func TestCookieOnResponse(t *testing.T) {
	src := []byte{10, 0, 0, 1, 0, 80}
	pr := newPair(t, WireGuard, PresharedKey{})
	initChecker := NewCookieChecker(pr.initID)
	initChecker.now = pr.clock.now

	response, _ := pr.respond(t, pr.initiation(t))
	reply := make([]byte, MessageCookieReplySize)
	if _, err := initChecker.CreateReply(reply, response, src); err != nil {
		t.Fatalf("CreateReply: %v", err)
	}
	if r, _ := CookieReplyReceiver(reply); r != responderIndex {
		t.Errorf("reply receiver = %#x, want %#x", r, responderIndex)
	}
	if err := pr.resp.ConsumeCookieReply(reply); err != nil {
		t.Fatalf("ConsumeCookieReply: %v", err)
	}
	pr.clock.advance(time.Second)
	response, _ = pr.respond(t, pr.initiation(t))
	if !initChecker.CheckMAC2(response, src) {
		t.Error("response after a cookie reply has no valid mac2")
	}
}

func TestCookieSecretRotates(t *testing.T) {
	src := []byte{1, 2, 3, 4, 5, 6}
	pr, checker := cookieSetup(t, Hop)
	reply := make([]byte, MessageCookieReplySize)
	if _, err := checker.CreateReply(reply, pr.initiation(t), src); err != nil {
		t.Fatal(err)
	}
	if err := pr.init.ConsumeCookieReply(reply); err != nil {
		t.Fatal(err)
	}
	msg := pr.initiation(t)
	if !checker.CheckMAC2(msg, src) {
		t.Fatal("mac2 invalid right after the cookie reply")
	}

	// Past CookieRefreshTime the checker no longer honours the old secret,
	// and the next reply uses a new one.
	checker.mu.RLock()
	old := checker.secret
	checker.mu.RUnlock()
	pr.clock.advance(CookieRefreshTime + time.Second)
	if checker.CheckMAC2(msg, src) {
		t.Error("mac2 accepted after the secret expired")
	}
	if _, err := checker.CreateReply(reply, pr.initiation(t), src); err != nil {
		t.Fatal(err)
	}
	checker.mu.RLock()
	renewed := checker.secret != old
	checker.mu.RUnlock()
	if !renewed {
		t.Error("secret not renewed")
	}
}

func TestBadCookieReply(t *testing.T) {
	src := []byte{1}
	tests := []struct {
		name   string
		mangle func(t *testing.T, pr *pair, reply []byte) []byte
		want   error
	}{
		{"cookie altered", func(_ *testing.T, _ *pair, r []byte) []byte {
			r[cookieReplyOffsetCookie] ^= 1
			return r
		}, ErrBadCookie},
		{"nonce altered", func(_ *testing.T, _ *pair, r []byte) []byte {
			r[cookieReplyOffsetNonce] ^= 1
			return r
		}, ErrBadCookie},
		{"bound to an older mac1", func(t *testing.T, pr *pair, r []byte) []byte {
			pr.initiation(t)
			return r
		}, ErrBadCookie},
		{"other protocol's type", func(_ *testing.T, _ *pair, r []byte) []byte {
			binary.LittleEndian.PutUint32(r, WireGuard.TypeCookieReply)
			return r
		}, ErrProtocolMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, checker := cookieSetup(t, Hop)
			reply := make([]byte, MessageCookieReplySize)
			if _, err := checker.CreateReply(reply, pr.initiation(t), src); err != nil {
				t.Fatal(err)
			}
			err := pr.init.ConsumeCookieReply(tt.mangle(t, pr, reply))
			if !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if !isZero(pr.initiation(t)[initiationOffsetMAC2:]) {
				t.Error("a refused cookie reply installed a cookie")
			}
		})
	}

	t.Run("nothing sent yet", func(t *testing.T) {
		pr, checker := cookieSetup(t, Hop)
		other := newPair(t, Hop, PresharedKey{})
		reply := make([]byte, MessageCookieReplySize)
		if _, err := checker.CreateReply(reply, other.initiation(t), src); err != nil {
			t.Fatal(err)
		}
		if err := pr.init.ConsumeCookieReply(reply); !errors.Is(err, ErrBadCookie) {
			t.Errorf("error = %v, want ErrBadCookie", err)
		}
	})
}

func TestCreateReplyNeedsMAC1(t *testing.T) {
	pr, checker := cookieSetup(t, WireGuard)
	msg := pr.initiation(t)
	msg[initiationOffsetMAC1] ^= 1
	_, err := checker.CreateReply(make([]byte, MessageCookieReplySize), msg, []byte{1})
	if !errors.Is(err, ErrBadMAC1) {
		t.Errorf("error = %v, want ErrBadMAC1", err)
	}
}

func TestCheckMAC1Protocols(t *testing.T) {
	hop, checker := cookieSetup(t, Hop)
	wg := newPair(t, WireGuard, PresharedKey{})
	hopMsg, wgMsg := hop.initiation(t), wg.initiation(t)
	tests := []struct {
		name string
		msg  []byte
		want bool
	}{
		{"hop initiation", hopMsg, true},
		{"wireguard initiation", wgMsg, true},
		{"hop relabelled wireguard", relabel(hopMsg, WireGuard.TypeInitiation), false},
		{"wireguard relabelled hop", relabel(wgMsg, Hop.TypeInitiation), false},
	}
	for _, tt := range tests {
		if got := checker.CheckMAC1(tt.msg); got != tt.want {
			t.Errorf("%s: CheckMAC1 = %t, want %t", tt.name, got, tt.want)
		}
	}
}

// relabel returns a copy of msg with its type replaced.
func relabel(msg []byte, typ uint32) []byte {
	out := bytes.Clone(msg)
	binary.LittleEndian.PutUint32(out, typ)
	return out
}
