package config

import (
	"strconv"
	"strings"
)

// Error is the one error type of this package. Every fault Load, Parse and
// the key-file readers find in what the user wrote is an *Error, so a caller
// can tell a bad config (the user's to fix) from a runtime failure with
// errors.As.
//
// Error() reads "FILE:LINE: KEY: MSG"; the line and the key are left out
// when they are not known. Msg never contains key material.
type Error struct {
	// File is the config file; empty when not known, as in errors of
	// ReadPrivateKeyFile and ReadPresharedKeyFile, whose Msg names the key
	// file instead.
	File string
	// Line is the 1-based line of Key in File, or 0 when unknown.
	Line int
	// Key names the config key at fault: "interface.mtu", or
	// "peer[2].allowed_ips" for a key of the second [[peer]] table (peers
	// count from 1, as a reader counts them). Empty when the fault is not
	// about one key, such as a TOML syntax error.
	Key string
	// Msg says what is wrong and, where it can, how to fix it.
	Msg string
}

// Error formats e as "FILE:LINE: KEY: MSG".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Key != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Key)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}
