package uapi

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/hoprd/hoprd/config"
	"github.com/hoprd/hoprd/handshake"
)

// Op is the operation a request names.
type Op int

// Operations.
const (
	OpGet Op = iota + 1 // get=1: report the configuration and counters
	OpSet               // set=1: change the configuration
)

// Request is one parsed request. Set is nil for OpGet.
type Request struct {
	Op  Op
	Set *Set
}

// Set is a parsed set request: the changes it asks for, in the order the
// protocol applies them. Nil pointers leave a setting as it is. It holds
// keys: call Zero when done.
type Set struct {
	// PrivateKey replaces the interface's key; the zero key removes it.
	PrivateKey *handshake.PrivateKey
	// ListenPort moves the interface to another UDP port (0: any).
	ListenPort *uint16
	// Fwmark sets the mark of the interface's UDP sockets (0: none).
	Fwmark *uint32
	// ReplacePeers removes every peer before Peers are applied.
	ReplacePeers bool
	// Peers are the peer sections, in request order.
	Peers []PeerSet
}

// PeerSet is one peer section of a set request, opened by public_key.
type PeerSet struct {
	PublicKey handshake.PublicKey
	// Remove removes the peer; the section's other keys are ignored.
	Remove bool
	// UpdateOnly changes the peer only if it exists already.
	UpdateOnly bool
	// PresharedKey replaces the preshared key; zero means none.
	PresharedKey *handshake.PresharedKey
	// Endpoint, when valid, is where packets to the peer go.
	Endpoint netip.AddrPort
	// PersistentKeepalive is the keepalive interval in seconds (0: off).
	PersistentKeepalive *uint16
	// ReplaceAllowedIPs clears the peer's allowed IPs before AllowedIPs
	// are applied.
	ReplaceAllowedIPs bool
	// AllowedIPs are added, or removed, in order.
	AllowedIPs []AllowedIP
}

// AllowedIP is one allowed_ip line: a prefix to add, or with Remove to
// take away ("allowed_ip=-10.0.0.0/24").
type AllowedIP struct {
	Prefix netip.Prefix
	Remove bool
}

// Zero erases the keys the request carries.
func (s *Set) Zero() {
	if s.PrivateKey != nil {
		s.PrivateKey.Zero()
	}
	for i := range s.Peers {
		if k := s.Peers[i].PresharedKey; k != nil {
			k.Zero()
		}
	}
}

// Parser reads requests from a stream, one at a time. It wipes each line
// from its buffer once the line is parsed.
type Parser struct {
	r *bufio.Reader
}

// NewParser returns a Parser reading from r.
func NewParser(r io.Reader) *Parser {
	return &Parser{r: bufio.NewReaderSize(r, 2*(MaxLineLength+1))}
}

// Parse parses data, which must hold exactly one request.
func Parse(data []byte) (*Request, error) {
	p := NewParser(bytes.NewReader(data))
	req, err := p.Next()
	if errors.Is(err, io.EOF) {
		return nil, ErrTruncated
	}
	if err != nil {
		return nil, err
	}
	if _, err := p.r.ReadByte(); err != io.EOF {
		if req.Set != nil {
			req.Set.Zero()
		}
		return nil, fmt.Errorf("%w: data after the request", ErrMalformedLine)
	}
	return req, nil
}

// Next reads the next request. It returns io.EOF when the stream ends
// cleanly between requests. A set request with a bad line is read to its
// end, so that the next request can be read, and then refused as a whole;
// errors that leave the stream out of step (ErrLineTooLong,
// ErrRequestTooLarge, ErrUnknownOperation, ErrTruncated) end the stream.
func (p *Parser) Next() (*Request, error) {
	line, err := p.line()
	if err != nil {
		return nil, err // io.EOF at a clean end
	}
	op := string(line)
	clear(line)
	switch op {
	case opGet:
		end, err := p.line()
		if err != nil {
			return nil, inRequest(err)
		}
		if len(end) != 0 {
			clear(end)
			return nil, fmt.Errorf("%w: get=1 not followed by a blank line",
				ErrUnknownOperation)
		}
		return &Request{Op: OpGet}, nil
	case opSet:
		set, err := p.set()
		if err != nil {
			return nil, err
		}
		return &Request{Op: OpSet, Set: set}, nil
	}
	// The line is not echoed: a client out of step may have sent a key.
	return nil, fmt.Errorf("%w (a line of %d bytes)", ErrUnknownOperation, len(op))
}

// line returns the next line without its newline. The line aliases the
// reader's buffer and is valid until the next call; the caller clears it
// once parsed. At the end of the stream it returns io.EOF, or ErrTruncated
// when the stream ends inside a line.
func (p *Parser) line() ([]byte, error) {
	line, err := p.r.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull) || len(line) > MaxLineLength+1:
		clear(line)
		return nil, ErrLineTooLong
	case errors.Is(err, io.EOF) && len(line) == 0:
		return nil, io.EOF
	case errors.Is(err, io.EOF):
		clear(line)
		return nil, fmt.Errorf("%w: the last line has no newline", ErrTruncated)
	case err != nil:
		return nil, fmt.Errorf("read request: %w", err)
	}
	return line[:len(line)-1], nil
}

// inRequest turns the end of the stream inside a request into
// ErrTruncated.
func inRequest(err error) error {
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: no blank line ends the request", ErrTruncated)
	}
	return err
}

// set reads the lines of a set request up to its blank line.
func (p *Parser) set() (*Set, error) {
	s := &Set{}
	var (
		size  int
		first error // the first bad line; the rest is still read
	)
	for {
		line, err := p.line()
		if err != nil {
			s.Zero()
			return nil, inRequest(err)
		}
		if size += len(line) + 1; size > MaxSetSize {
			clear(line)
			s.Zero()
			return nil, ErrRequestTooLarge
		}
		if len(line) == 0 {
			break
		}
		if first == nil {
			first = s.parseLine(line)
		}
		clear(line)
	}
	if first != nil {
		s.Zero()
		return nil, first
	}
	return s, nil
}

// parseLine applies one key=value line to s.
func (s *Set) parseLine(line []byte) error {
	k, v, ok := bytes.Cut(line, []byte{'='})
	if !ok {
		return fmt.Errorf("%w: no '='", ErrMalformedLine)
	}
	key := string(k)
	if key == keyPublicKey {
		var pub handshake.PublicKey
		if err := parseKey(pub[:], v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if pub.IsZero() {
			return fmt.Errorf("%s: %w: the zero key", key, ErrInvalidValue)
		}
		if pub.IsSmallOrder() {
			// As the config file refuses it: no handshake could complete.
			return fmt.Errorf("%s: %w: a point of small order", key, ErrInvalidValue)
		}
		s.Peers = append(s.Peers, PeerSet{PublicKey: pub})
		return nil
	}
	var err error
	if len(s.Peers) == 0 {
		err = s.parseInterfaceLine(key, v)
	} else {
		err = s.Peers[len(s.Peers)-1].parseLine(key, v)
	}
	if errors.Is(err, ErrUnknownKey) {
		// Not echoed: a client that pastes a key where a line belongs would
		// see the key in the daemon's log.
		return fmt.Errorf("a key of %d bytes: %w", len(key), err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", truncate(key), err)
	}
	return nil
}

// parseInterfaceLine applies an interface key.
func (s *Set) parseInterfaceLine(key string, v []byte) error {
	switch key {
	case keyPrivateKey:
		if s.PrivateKey == nil {
			s.PrivateKey = new(handshake.PrivateKey)
		}
		return parseKey(s.PrivateKey[:], v)
	case keyListenPort:
		port, err := parseUint(v, 16)
		if err != nil {
			return err
		}
		s.ListenPort = new(uint16)
		*s.ListenPort = uint16(port)
	case keyFwmark:
		mark, err := parseUint(v, 32)
		if err != nil {
			return err
		}
		s.Fwmark = new(uint32)
		*s.Fwmark = uint32(mark)
	case keyReplacePeers:
		if string(v) != valueTrue {
			return fmt.Errorf("%w: want %q", ErrInvalidValue, valueTrue)
		}
		s.ReplacePeers = true
	default:
		return ErrUnknownKey
	}
	return nil
}

// parseLine applies a peer key.
func (ps *PeerSet) parseLine(key string, v []byte) error {
	switch key {
	case keyRemove, keyUpdateOnly, keyReplaceAllowedIPs:
		if string(v) != valueTrue {
			return fmt.Errorf("%w: want %q", ErrInvalidValue, valueTrue)
		}
		switch key {
		case keyRemove:
			ps.Remove = true
		case keyUpdateOnly:
			ps.UpdateOnly = true
		default:
			ps.ReplaceAllowedIPs = true
		}
	case keyPresharedKey:
		if ps.PresharedKey == nil {
			ps.PresharedKey = new(handshake.PresharedKey)
		}
		return parseKey(ps.PresharedKey[:], v)
	case keyEndpoint:
		ap, err := netip.ParseAddrPort(string(v))
		if err != nil {
			return fmt.Errorf("%w: want a numeric address and a port", ErrInvalidValue)
		}
		// The config file's rules, so that wg set takes no endpoint that
		// hoprd check would refuse.
		if err := config.CheckEndpointAddr(ap); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalidValue, err)
		}
		ps.Endpoint = ap
	case keyPersistentKeepaliveInterval:
		secs, err := parseUint(v, 16)
		if err != nil {
			return err
		}
		ps.PersistentKeepalive = new(uint16)
		*ps.PersistentKeepalive = uint16(secs)
	case keyAllowedIP:
		a := AllowedIP{}
		if len(v) > 0 && v[0] == allowedIPRemove {
			a.Remove, v = true, v[1:]
		}
		pfx, err := netip.ParsePrefix(string(v))
		if err != nil || pfx.Addr().Zone() != "" || pfx.Addr().Is4In6() {
			return fmt.Errorf("%w: want an IPv4 or IPv6 prefix", ErrInvalidValue)
		}
		a.Prefix = pfx.Masked()
		ps.AllowedIPs = append(ps.AllowedIPs, a)
	case keyProtocolVersion:
		if string(v) != protocolVersion {
			return fmt.Errorf("%w: only version %s exists", ErrInvalidValue, protocolVersion)
		}
	default:
		return ErrUnknownKey
	}
	return nil
}

// parseKey decodes a 64-digit hex key into dst without copying it
// anywhere else. It names no digit of the key in its error.
func parseKey(dst []byte, v []byte) error {
	if len(v) != hex.EncodedLen(len(dst)) {
		return fmt.Errorf("%w: want %d hex digits", ErrInvalidValue, hex.EncodedLen(len(dst)))
	}
	if _, err := hex.Decode(dst, v); err != nil {
		clear(dst)
		return fmt.Errorf("%w: not hex", ErrInvalidValue)
	}
	return nil
}

// parseUint parses a decimal number of at most bits bits: digits only, no
// sign, no leading zeros beyond a lone 0.
func parseUint(v []byte, bits int) (uint64, error) {
	if len(v) == 0 || len(v) > 20 || (len(v) > 1 && v[0] == '0') {
		return 0, fmt.Errorf("%w: want a decimal number", ErrInvalidValue)
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%w: want a decimal number", ErrInvalidValue)
		}
	}
	n, err := strconv.ParseUint(string(v), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%w: want a number of at most %d bits", ErrInvalidValue, bits)
	}
	return n, nil
}

// truncate shortens client-supplied text for an error message.
func truncate(s string) string {
	const limit = 32
	if len(s) > limit {
		return strconv.Quote(s[:limit]) + "..."
	}
	return strconv.Quote(s)
}
