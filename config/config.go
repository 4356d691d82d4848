// Package config reads and checks hoprd's TOML configuration file.
//
// Load decodes the file into typed structs and validates every value up
// front, strictly: an unknown key, a wrong type or a value out of range is
// an error that names the file, the line and the key. The secrets the file
// points at (the private key, preshared keys) live in files of their own,
// read by ReadKeys after Load; docs/config.md describes every key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/hoprd/hoprd/handshake"
)

// Defaults and limits of the [interface] table.
const (
	// DefaultMTU is the TUN MTU when mtu is not set: 1500 minus the IPv6,
	// UDP and transport headers, as WireGuard chooses it.
	DefaultMTU = 1420
	// MinMTU is the smallest MTU IPv4 allows (RFC 791).
	MinMTU = 576
	// MinMTUIPv6 is the smallest MTU once the interface has an IPv6
	// address (RFC 8200).
	MinMTUIPv6 = 1280
	// MaxMTU is the largest MTU: a packet of this size, in hoprd's 20-byte
	// transport header and with its 16-byte tag, still fits the largest UDP
	// payload over IPv4 (65507 bytes).
	MaxMTU = 65471

	// DefaultHopInterval is how often transport keys hop when
	// hop_interval is not set.
	DefaultHopInterval = time.Second
	// MinHopInterval is the shortest hop_interval accepted.
	MinHopInterval = 50 * time.Millisecond
	// MaxHopInterval is the longest hop_interval accepted.
	MaxHopInterval = 10 * time.Minute
)

// Limits of a [[peer]] table.
const (
	// MaxPersistentKeepalive is the longest persistent_keepalive; like
	// WireGuard's, the interval is a 16-bit count of seconds.
	MaxPersistentKeepalive = 65535 * time.Second
	// MaxPeerNameLen is the longest peer name, in bytes.
	MaxPeerNameLen = 64
)

// Peer modes.
const (
	// ModeHop runs hoprd's protocol, whose transport keys hop every
	// hop_interval. It is the default.
	ModeHop = "hop"
	// ModeWireGuard speaks plain WireGuard to the peer.
	ModeWireGuard = "wireguard"
)

// MaxFileSize is the largest config file Load and Parse accept, in bytes:
// room for tens of thousands of peers.
const MaxFileSize = 16 << 20

// Config is a validated configuration file.
type Config struct {
	// Path is the file the configuration came from, as given to Load.
	Path string
	// Interface is the [interface] table.
	Interface Interface
	// Peers are the [[peer]] tables, in file order.
	Peers []Peer

	lines map[string]int // key path -> line, see LineOf
}

// Interface is the [interface] table: the local end of the overlay.
type Interface struct {
	// Name is the TUN interface name.
	Name string
	// PrivateKeyFile is the path of the interface's private key; a
	// relative path in the file is resolved against the config file's
	// directory.
	PrivateKeyFile string
	// Addresses are the interface's addresses, each with the length of
	// the prefix it is on (100.64.0.1/24).
	Addresses []netip.Prefix
	// ListenPort is the UDP port; 0 picks a free one.
	ListenPort uint16
	// MTU is the TUN MTU.
	MTU int
	// HopInterval is how often transport keys hop in hop mode.
	HopInterval time.Duration
}

// Peer is one [[peer]] table.
type Peer struct {
	// Name identifies the peer in logs and status; unique in the file.
	Name string
	// PublicKey is the peer's static public key; unique in the file.
	PublicKey handshake.PublicKey
	// Endpoint is the peer's UDP address as written (host:port,
	// [IPv6]:port or dns-name:port), or empty when the peer is only
	// reached after it makes contact.
	Endpoint string
	// AllowedIPs are the prefixes routed to the peer and accepted from
	// it, each in canonical form (no host bits set).
	AllowedIPs []netip.Prefix
	// PersistentKeepalive is how often to send a keepalive to keep NAT
	// mappings open; 0 disables it.
	PersistentKeepalive time.Duration
	// Mode is ModeHop or ModeWireGuard.
	Mode string
	// PresharedKeyFile is the path of the preshared key, resolved like
	// Interface.PrivateKeyFile, or empty when there is none.
	PresharedKeyFile string
}

// Load reads, decodes and validates the config file at path. Every error
// about the file's content is an *Error.
func Load(path string) (*Config, error) {
	// O_NONBLOCK keeps a FIFO at path from blocking the open; the type
	// check then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, &Error{File: path, Msg: fileProblem(err)}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &Error{File: path, Msg: fileProblem(err)}
	}
	if msg := configFileProblem(path, fi); msg != "" {
		return nil, &Error{File: path, Msg: msg}
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &Error{File: path, Msg: fileProblem(err)}
	}
	return Parse(data, path)
}

// Parse decodes and validates a config file's content; name is the file's
// path, used in errors and to resolve relative key file paths. Every error
// is an *Error.
func Parse(data []byte, name string) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name,
			Msg: fmt.Sprintf("file is larger than %d bytes", MaxFileSize)}
	}
	// A UTF-8 byte order mark is allowed and skipped, as the TOML decoder
	// does, so that the line scanner sees the first key where it is.
	data = bytes.TrimPrefix(data, utf8BOM)
	if !utf8.Valid(data) {
		return nil, &Error{File: name, Line: invalidUTF8Line(data),
			Msg: "not UTF-8 text: a config file is UTF-8 (TOML), not UTF-16 or another encoding"}
	}
	lines, tooDeep := scanLines(data)
	if tooDeep > 0 {
		return nil, &Error{File: name, Line: tooDeep, Msg: fmt.Sprintf(
			"nested too deeply: more than %d levels of arrays and inline tables, "+
				"or a key of more than %d parts", maxNesting, maxKeyParts)}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		return nil, syntaxError(name, data, err)
	}
	v := &validator{file: name, dir: filepath.Dir(name), lines: lines}
	cfg := v.config(doc)
	if err := v.first(); err != nil {
		return nil, err
	}
	cfg.Path = name
	cfg.lines = v.lines
	return cfg, nil
}

// utf8BOM is the byte order mark an editor may put before UTF-8 text.
var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// invalidUTF8Line returns the line of the first byte of data that is not
// part of valid UTF-8.
func invalidUTF8Line(data []byte) int {
	line := 1
	for len(data) > 0 {
		r, size := utf8.DecodeRune(data)
		if r == utf8.RuneError && size <= 1 {
			break
		}
		if r == '\n' {
			line++
		}
		data = data[size:]
	}
	return line
}

// LineOf returns the line of a key in the config file, named as in
// Error.Key ("interface.mtu", "peer[2].endpoint"); for a key that is not
// written, the line of the first key inside it, or 0.
func (c *Config) LineOf(key string) int {
	return lineOf(c.lines, key)
}

// errorAt returns an *Error about key in the config file.
func (c *Config) errorAt(key, msg string) *Error {
	return &Error{File: c.Path, Line: c.LineOf(key), Key: key, Msg: msg}
}

// lineOf looks a key path up in lines, falling back to the first line of
// any path inside it.
func lineOf(lines map[string]int, key string) int {
	if n, ok := lines[key]; ok {
		return n
	}
	first := 0
	for k, n := range lines {
		inside := strings.HasPrefix(k, key) && len(k) > len(key) &&
			(k[len(key)] == '.' || k[len(key)] == '[')
		if inside && (first == 0 || n < first) {
			first = n
		}
	}
	return first
}

// syntaxError turns a TOML decoding error in data into an *Error. The line
// is that of the error's first byte: the decoder's own line number is one
// too far when the error is found at the end of a line.
func syntaxError(name string, data []byte, err error) *Error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		line := pe.Position.Line
		if at := pe.Position.Start; at >= 0 && at < len(data) {
			line = 1 + bytes.Count(data[:at], []byte{'\n'})
		}
		return &Error{File: name, Line: line, Msg: "invalid TOML: " + pe.Message}
	}
	return &Error{File: name, Msg: "invalid TOML: " + err.Error()}
}

// fileProblem describes why a file could not be opened or read, without
// repeating its path.
// configFileProblem describes what makes the config file at path unsafe to
// run from, or returns "". The file says which key files to read, which
// prefixes to route and which peers to trust, so only its owner, root or
// the user hoprd runs as, may write it.
func configFileProblem(path string, fi fs.FileInfo) string {
	if !fi.Mode().IsRegular() {
		return "not a regular file"
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if euid := os.Geteuid(); st.Uid != 0 && int(st.Uid) != euid {
			return fmt.Sprintf("owned by uid %d, neither root nor the uid hoprd runs as "+
				"(%d); fix with: chown %d %s", st.Uid, euid, euid, shellQuote(path))
		}
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Sprintf("mode %04o lets group or others change the config; "+
			"fix with: chmod go-w %s", perm, shellQuote(path))
	}
	return ""
}

func fileProblem(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return "cannot read: " + err.Error()
}
