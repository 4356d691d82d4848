// Package uapi serves WireGuard's userspace configuration protocol, the one
// the wg(8) tool speaks to userspace implementations, for a hoprd device:
// `wg show NAME` lists the device's peers (hop-mode peers too) with their
// last handshake and transfer counters, and `wg set NAME ...` or
// `wg setconf` change the key, the listen port, the firewall mark and the
// peers at run time. A peer that a set request creates speaks WireGuard.
//
// The protocol runs over a unix socket, /var/run/wireguard/NAME.sock. A
// client writes "get=1\n\n" or "set=1\n" followed by key=value lines and
// a blank line; the server answers a get with key=value lines, and every
// request with "errno=N\n\n", N being 0 or a negated errno. Keys travel
// in hex. Several requests may follow one another on one connection.
//
// Requests are read strictly: lines are bounded (MaxLineLength), a set
// request is bounded (MaxSetSize), every key and value is checked, and a
// set request is parsed to its end before anything is applied, so a
// malformed request changes nothing. Each line is wiped from the read
// buffer once parsed, and each reply from the write buffer once sent,
// since both may carry keys.
package uapi

import (
	"errors"
	"time"
)

// Operation lines, as the protocol spells them.
const (
	opGet = "get=1"
	opSet = "set=1"
)

// Interface keys of a set request and a get reply.
const (
	keyPrivateKey   = "private_key"
	keyListenPort   = "listen_port"
	keyFwmark       = "fwmark"
	keyReplacePeers = "replace_peers"
)

// Peer keys. public_key opens a peer's section.
const (
	keyPublicKey                   = "public_key"
	keyRemove                      = "remove"
	keyUpdateOnly                  = "update_only"
	keyPresharedKey                = "preshared_key"
	keyEndpoint                    = "endpoint"
	keyPersistentKeepaliveInterval = "persistent_keepalive_interval"
	keyReplaceAllowedIPs           = "replace_allowed_ips"
	keyAllowedIP                   = "allowed_ip"
	keyProtocolVersion             = "protocol_version"
	keyLastHandshakeTimeSec        = "last_handshake_time_sec"
	keyLastHandshakeTimeNsec       = "last_handshake_time_nsec"
	keyRxBytes                     = "rx_bytes"
	keyTxBytes                     = "tx_bytes"
	keyErrno                       = "errno"
)

// Values with a fixed spelling.
const (
	valueTrue       = "true"
	protocolVersion = "1" // the only protocol version there is
	allowedIPRemove = '-' // prefixes an allowed_ip to remove
)

// SocketDir is where wg(8) looks for the sockets of userspace
// implementations. Like wireguard-go, the server creates it with mode 0755;
// each socket in it has mode 0600.
const SocketDir = "/var/run/wireguard"

// Limits of the server.
const (
	// MaxLineLength is the longest request line, without its newline.
	// The longest valid line, an endpoint with an IPv6 zone, is under 80.
	MaxLineLength = 256

	// MaxSetSize is the most bytes one set request may carry: enough for
	// tens of thousands of peers with several allowed IPs each.
	MaxSetSize = 8 << 20

	// MaxConnections is how many clients are served at once; more are
	// turned away at once.
	MaxConnections = 16

	// RequestTimeout bounds the time a client may take to send one
	// request and read its reply, and the time a connection may sit idle
	// between requests.
	RequestTimeout = 30 * time.Second
)

// Errors of the protocol. The server answers them with EINVAL, except
// where the comment says otherwise; test for them with errors.Is.
var (
	// ErrLineTooLong reports a line longer than MaxLineLength (EPROTO;
	// the connection is closed).
	ErrLineTooLong = errors.New("uapi: line too long")

	// ErrRequestTooLarge reports a set request beyond MaxSetSize
	// (EPROTO; the connection is closed).
	ErrRequestTooLarge = errors.New("uapi: request too large")

	// ErrTruncated reports a stream that ended inside a request (EPROTO).
	ErrTruncated = errors.New("uapi: request truncated")

	// ErrUnknownOperation reports an operation line other than get=1 and
	// set=1, or a get=1 not followed by a blank line (EPROTO; the
	// connection is closed).
	ErrUnknownOperation = errors.New("uapi: unknown operation")

	// ErrMalformedLine reports a line without '='.
	ErrMalformedLine = errors.New("uapi: malformed line")

	// ErrUnknownKey reports a key the protocol does not have, or one in
	// the wrong section (a peer key before any public_key, an interface
	// key after one).
	ErrUnknownKey = errors.New("uapi: unknown key")

	// ErrInvalidValue reports a value the key does not accept.
	ErrInvalidValue = errors.New("uapi: invalid value")

	// ErrSocketInUse reports a socket path another live process serves.
	ErrSocketInUse = errors.New("uapi: socket in use by another process")
)
