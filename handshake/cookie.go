package handshake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// Cookies let a responder under load demand proof that an initiator can
// receive at its source address before it spends a Diffie-Hellman on it.
//
// Every initiation and response ends with two MACs. mac1 is keyed with
// HASH(label-mac1 || receiver's static public key): anyone who knows the
// receiver's public key can compute it, so it only keeps strangers from
// making the receiver work. mac2 is keyed with a cookie, MAC(secret, source
// address), which the receiver hands out, sealed, in a cookie reply; the
// secret changes every CookieRefreshTime. The sender side of this lives on
// Handshake (addMACs, ConsumeCookieReply), the receiver side on
// CookieChecker.

// addMACs writes mac1 at msg[off:] and mac2 after it: the MAC of the
// cookie over everything before mac2 while a cookie is fresh, zeros
// otherwise. It remembers mac1, to which the peer's cookie reply will be
// bound. h.mu must be held.
func (h *Handshake) addMACs(msg []byte, off int) {
	mac(&h.lastMAC1, h.peerKeys.mac1[:], msg[:off])
	h.hasLastMAC1 = true
	copy(msg[off:], h.lastMAC1[:])

	mac2 := msg[off+macSize : off+2*macSize]
	if h.now().Sub(h.cookieSet) > CookieRefreshTime {
		clear(mac2)
		return
	}
	var sum [macSize]byte
	mac(&sum, h.cookie[:], msg[:off+macSize])
	copy(mac2, sum[:])
}

// ConsumeCookieReply takes the cookie from a cookie reply sent by the peer,
// found by the caller through CookieReplyReceiver. The cookie must be sealed
// to the mac1 of the last message this handshake sent. While the cookie is
// fresh, the initiations and responses the handshake writes carry a mac2.
func (h *Handshake) ConsumeCookieReply(msg []byte) error {
	if err := h.consumeCookieReply(msg); err != nil {
		return fmt.Errorf("consume cookie reply: %w", err)
	}
	return nil
}

// consumeCookieReply does the work of ConsumeCookieReply.
func (h *Handshake) consumeCookieReply(msg []byte) error {
	p, err := checkMessage(msg, kindCookieReply)
	if err != nil {
		return err
	}
	if p != h.protocol {
		return ErrProtocolMismatch
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.hasLastMAC1 {
		return ErrBadCookie
	}
	var cookie [macSize]byte
	defer clear(cookie[:])
	aead, _ := chacha20poly1305.NewX(h.peerKeys.cookie[:])
	nonce := msg[cookieReplyOffsetNonce:cookieReplyOffsetCookie]
	sealed := msg[cookieReplyOffsetCookie:]
	if _, err := aead.Open(cookie[:0], nonce, sealed, h.lastMAC1[:]); err != nil {
		return ErrBadCookie
	}
	h.cookie = cookie
	h.cookieSet = h.now()
	return nil
}

// CookieChecker is the receiving side of mac1 and mac2 for one Identity:
// it verifies both MACs on incoming initiations and responses of either
// protocol and writes cookie replies. It is safe for concurrent use.
type CookieChecker struct {
	// Fixed at construction; read without the lock.
	id     *Identity
	now    func() time.Time
	random io.Reader // source of the secret and of reply nonces

	mu        sync.RWMutex // guards secret and secretSet
	secret    [hashSize]byte
	secretSet time.Time // zero until the first cookie reply
}

// NewCookieChecker returns a checker for messages addressed to id.
func NewCookieChecker(id *Identity) *CookieChecker {
	return &CookieChecker{id: id, now: time.Now, random: rand.Reader}
}

// Format prints the checker's public key, never its secret, for every fmt
// verb.
func (c *CookieChecker) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "cookie checker(%s)", c.id.public)
}

// CheckMAC1 reports whether msg is an initiation or response, of either
// protocol and the right length, whose mac1 is valid for the checker's
// identity. The message type decides which protocol's label applies.
func (c *CookieChecker) CheckMAC1(msg []byte) bool {
	p, kind, ok := classifyMAC(msg)
	return ok && c.id.verifyMAC1(p, msg, macOffset(kind))
}

// CheckMAC2 reports whether msg is an initiation or response whose mac2 is
// valid for a cookie this checker issued, within CookieRefreshTime, to the
// address src (the sender's IP and port, as conn.Endpoint.DstToBytes
// writes them). It does not check mac1.
func (c *CookieChecker) CheckMAC2(msg, src []byte) bool {
	_, kind, ok := classifyMAC(msg)
	if !ok {
		return false
	}
	off := macOffset(kind) + macSize

	var cookie, want [macSize]byte
	defer clear(cookie[:])
	c.mu.RLock()
	fresh := c.now().Sub(c.secretSet) <= CookieRefreshTime
	if fresh {
		mac(&cookie, c.secret[:], src)
	}
	c.mu.RUnlock()
	if !fresh {
		return false
	}
	mac(&want, cookie[:], msg[:off])
	return subtle.ConstantTimeCompare(want[:], msg[off:off+macSize]) == 1
}

// CreateReply writes to dst[:MessageCookieReplySize] a cookie reply to msg,
// an initiation or response from src whose mac1 is valid, and returns its
// length. The reply is addressed to msg's sender index and is of msg's
// protocol; it seals the cookie for src to msg's mac1, so only the sender
// of msg can use it. The secret is renewed when it is older than
// CookieRefreshTime.
func (c *CookieChecker) CreateReply(dst, msg, src []byte) (int, error) {
	if len(dst) < MessageCookieReplySize {
		return 0, fmt.Errorf("create cookie reply: %w", ErrShortBuffer)
	}
	p, kind, ok := classifyMAC(msg)
	if !ok {
		if len(msg) < typeSize {
			return 0, fmt.Errorf("create cookie reply: %w", ErrShortMessage)
		}
		return 0, fmt.Errorf("create cookie reply: %w", ErrWrongType)
	}
	off := macOffset(kind)
	if !c.id.verifyMAC1(p, msg, off) {
		return 0, fmt.Errorf("create cookie reply: %w", ErrBadMAC1)
	}

	var cookie [macSize]byte
	defer clear(cookie[:])
	if err := c.cookieFor(&cookie, src); err != nil {
		return 0, fmt.Errorf("create cookie reply: %w", err)
	}

	reply := dst[:MessageCookieReplySize]
	binary.LittleEndian.PutUint32(reply, p.TypeCookieReply)
	sender := binary.LittleEndian.Uint32(msg[typeSize:])
	binary.LittleEndian.PutUint32(reply[cookieReplyOffsetReceiver:], sender)
	nonce := reply[cookieReplyOffsetNonce:cookieReplyOffsetCookie]
	if _, err := io.ReadFull(c.random, nonce); err != nil {
		return 0, fmt.Errorf("create cookie reply: %w", err)
	}
	aead, _ := chacha20poly1305.NewX(c.id.keys[p.index].cookie[:])
	aead.Seal(reply[cookieReplyOffsetCookie:cookieReplyOffsetCookie], nonce, cookie[:],
		msg[off:off+macSize])
	return MessageCookieReplySize, nil
}

// cookieFor sets cookie to MAC(secret, src), renewing the secret first if
// it has expired.
func (c *CookieChecker) cookieFor(cookie *[macSize]byte, src []byte) error {
	c.mu.RLock()
	if c.now().Sub(c.secretSet) <= CookieRefreshTime {
		mac(cookie, c.secret[:], src)
		c.mu.RUnlock()
		return nil
	}
	c.mu.RUnlock()

	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.secretSet) > CookieRefreshTime {
		if _, err := io.ReadFull(c.random, c.secret[:]); err != nil {
			return err
		}
		c.secretSet = now
	}
	mac(cookie, c.secret[:], src)
	return nil
}
