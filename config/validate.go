package config

import (
	"fmt"
	"maps"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hoprd/hoprd/handshake"
)

// The validator walks the decoded document (maps of TOML values) with the
// schema in hand, building the Config as it goes. It keeps going after an
// error and reports the one nearest the top of the file, the one a reader
// meets first. It matches key names exactly: the TOML package's struct
// decoding would also take "Name" for "name", which a strict reader must
// not.

// The keys each table may hold, in the order docs/config.md lists them.
var (
	topKeys       = []string{"interface", "peer"}
	interfaceKeys = []string{
		"name", "private_key_file", "address", "listen_port", "mtu", "hop_interval",
	}
	peerKeys = []string{
		"name", "public_key", "endpoint", "allowed_ips", "persistent_keepalive",
		"mode", "preshared_key_file",
	}
)

// validator collects the errors found while building a Config.
type validator struct {
	file  string
	dir   string         // resolves relative key file paths
	lines map[string]int // from scanLines
	errs  []*Error

	// What the peers seen so far have claimed, with the path of the key
	// that claimed it, to reject a second claim.
	peerNames    map[string]string
	peerKeys     map[handshake.PublicKey]string
	peerPrefixes map[netip.Prefix]string
}

// table is a decoded TOML table and its key path.
type table struct {
	path string
	m    map[string]any
}

// key returns the path of a key of t.
func (t table) key(name string) string { return joinKey(t.path, name) }

// errorf records an error about key, on the line of key.
func (v *validator) errorf(key, format string, args ...any) {
	v.errorAt(key, key, format, args...)
}

// errorAt records an error about key, on the line of the path at: an array
// element, or the table that lacks a required key.
func (v *validator) errorAt(key, at, format string, args ...any) {
	v.errs = append(v.errs, &Error{
		File: v.file,
		Line: lineOf(v.lines, at),
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
	})
}

// first returns the recorded error nearest the top of the file, or nil.
// Errors whose line is unknown come last.
func (v *validator) first() error {
	if len(v.errs) == 0 {
		return nil
	}
	best := v.errs[0]
	for _, e := range v.errs[1:] {
		if e.Line > 0 && (best.Line == 0 || e.Line < best.Line) {
			best = e
		}
	}
	return best
}

// where names a key path and its line for a message about a clash.
func (v *validator) where(path string) string {
	if n := lineOf(v.lines, path); n > 0 {
		return fmt.Sprintf("%s, line %d", path, n)
	}
	return path
}

// config validates the whole document.
func (v *validator) config(doc map[string]any) *Config {
	top := table{m: doc}
	v.unknownKeys(top, topKeys)
	cfg := &Config{}
	if t, ok := v.table(top, "interface"); ok {
		cfg.Interface = v.iface(t)
	}
	v.peerNames = make(map[string]string)
	v.peerKeys = make(map[handshake.PublicKey]string)
	v.peerPrefixes = make(map[netip.Prefix]string)
	for _, t := range v.peerTables(top) {
		cfg.Peers = append(cfg.Peers, v.peer(t))
	}
	v.checkIPv6MTU(cfg)
	return cfg
}

// checkIPv6MTU refuses an MTU below IPv6's minimum when peers route IPv6
// prefixes through an interface without an IPv6 address: the kernel would
// refuse their routes.
func (v *validator) checkIPv6MTU(cfg *Config) {
	mtu := cfg.Interface.MTU
	if mtu == 0 || mtu >= MinMTUIPv6 {
		return
	}
	for i, p := range cfg.Peers {
		for _, pfx := range p.AllowedIPs {
			if pfx.Addr().Is6() {
				v.errorf("interface.mtu", "%d is too small for IPv6, which "+
					"peer[%d].allowed_ips routes (%s): want at least %d",
					mtu, i+1, pfx, MinMTUIPv6)
				return
			}
		}
	}
}

// table returns the required table name of t.
func (v *validator) table(t table, name string) (table, bool) {
	key := t.key(name)
	switch x := t.m[name].(type) {
	case map[string]any:
		return table{path: key, m: x}, true
	case nil:
		v.errorf(key, "missing: the file needs an [%s] table", name)
	case []map[string]any:
		v.errorf(key, "want one table [%s], not an array of tables [[%s]]", name, name)
	default:
		v.errorf(key, "want a table, got %s", typeName(x))
	}
	return table{}, false
}

// peerTables returns the [[peer]] tables, written as an array of tables or
// as an array of inline tables.
func (v *validator) peerTables(top table) []table {
	key := top.key("peer")
	var tables []table
	switch x := top.m["peer"].(type) {
	case nil:
	case []map[string]any:
		for i, m := range x {
			tables = append(tables, table{path: key + "[" + strconv.Itoa(i+1) + "]", m: m})
		}
	case []any:
		for i, elem := range x {
			path := key + "[" + strconv.Itoa(i+1) + "]"
			if m, ok := elem.(map[string]any); ok {
				tables = append(tables, table{path: path, m: m})
			} else {
				v.errorf(path, "want a table, got %s", typeName(elem))
			}
		}
	case map[string]any:
		v.errorf(key, "want an array of tables: write each peer as [[peer]], not [peer]")
	default:
		v.errorf(key, "want an array of tables [[peer]], got %s", typeName(x))
	}
	return tables
}

// unknownKeys reports every key of t that is not in known.
func (v *validator) unknownKeys(t table, known []string) {
	names := make([]string, 0, len(t.m))
	for name := range t.m {
		if !slices.Contains(known, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if guess := closest(name, known); guess != "" {
			v.errorf(t.key(name), "unknown key; did you mean %q?", guess)
		} else {
			v.errorf(t.key(name), "unknown key; the keys here are %s",
				strings.Join(known, ", "))
		}
	}
}

// iface validates the [interface] table.
func (v *validator) iface(t table) Interface {
	v.unknownKeys(t, interfaceKeys)
	in := Interface{MTU: DefaultMTU, HopInterval: DefaultHopInterval}
	if s, ok := v.str(t, "name", true); ok {
		if err := CheckInterfaceName(s); err != nil {
			v.errorf(t.key("name"), "%v", err)
		}
		in.Name = s
	}
	if s, ok := v.path(t, "private_key_file", true); ok {
		in.PrivateKeyFile = s
	}
	in.Addresses = v.addresses(t)
	if n, ok := v.integer(t, "listen_port"); ok {
		if n < 0 || n > 65535 {
			v.errorf(t.key("listen_port"),
				"%d is out of range: want 0 to 65535 (0 picks a free port)", n)
		}
		in.ListenPort = uint16(n)
	}
	if n, ok := v.integer(t, "mtu"); ok {
		v.checkMTU(t.key("mtu"), n, in.Addresses)
		in.MTU = int(n)
	}
	if d, text, ok := v.duration(t, "hop_interval"); ok {
		if d < MinHopInterval || d > MaxHopInterval {
			v.errorf(t.key("hop_interval"), "%s is out of range: want %s to %s",
				text, formatDuration(MinHopInterval), formatDuration(MaxHopInterval))
		}
		in.HopInterval = d
	}
	return in
}

// checkMTU checks the mtu against the addresses the interface carries.
func (v *validator) checkMTU(key string, mtu int64, addrs []netip.Prefix) {
	low := int64(MinMTU)
	for _, a := range addrs {
		if a.Addr().Is6() {
			low = MinMTUIPv6
		}
	}
	switch {
	case mtu > MaxMTU:
		v.errorf(key, "%d is out of range: want at most %d", mtu, MaxMTU)
	case mtu < low && low == MinMTUIPv6 && mtu >= MinMTU:
		v.errorf(key, "%d is too small for an interface with an IPv6 address: want at least %d",
			mtu, MinMTUIPv6)
	case mtu < low:
		v.errorf(key, "%d is out of range: want %d to %d", mtu, low, MaxMTU)
	}
}

// addresses validates interface.address: addresses with the length of
// their prefix, host bits set as they must be.
func (v *validator) addresses(t table) []netip.Prefix {
	key := t.key("address")
	list, paths, ok := v.strList(t, "address")
	if !ok {
		return nil
	}
	var out []netip.Prefix
	seen := make(map[netip.Addr]string)
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			v.errorAt(key, paths[i], "%q is not an address with a prefix length, "+
				`like "100.64.0.1/24" or "fd00::1/64"`, s)
			continue
		}
		a := p.Addr()
		switch {
		case a.Is4In6():
			v.errorAt(key, paths[i], "%q is an IPv4-mapped IPv6 address: write it as IPv4", s)
			continue
		case a.IsUnspecified() || a.IsMulticast():
			v.errorAt(key, paths[i], "%q cannot be an interface address", s)
			continue
		}
		if other, dup := seen[a]; dup {
			v.errorAt(key, paths[i], "%v is listed twice (also at %s)", a, v.where(other))
			continue
		}
		seen[a] = paths[i]
		out = append(out, p)
	}
	return out
}

// peer validates one [[peer]] table, and what it claims against the peers
// before it.
func (v *validator) peer(t table) Peer {
	v.unknownKeys(t, peerKeys)
	p := Peer{Mode: ModeHop}
	if s, ok := v.str(t, "name", true); ok {
		p.Name = s
		key := t.key("name")
		if err := checkPeerName(s); err != nil {
			v.errorf(key, "%v", err)
		} else if other, dup := v.peerNames[s]; dup {
			v.errorf(key, "peer name %q is already used at %s", s, v.where(other))
		} else {
			v.peerNames[s] = key
		}
	}
	if s, ok := v.str(t, "public_key", true); ok {
		p.PublicKey = v.publicKey(t.key("public_key"), s)
	}
	if s, ok := v.str(t, "endpoint", false); ok {
		if err := checkEndpoint(s); err != nil {
			v.errorf(t.key("endpoint"), "%q: %v", s, err)
		}
		p.Endpoint = s
	}
	p.AllowedIPs = v.allowedIPs(t)
	if d, text, ok := v.duration(t, "persistent_keepalive"); ok {
		v.checkKeepalive(t.key("persistent_keepalive"), d, text)
		p.PersistentKeepalive = d
	}
	if s, ok := v.str(t, "mode", false); ok {
		if s != ModeHop && s != ModeWireGuard {
			v.errorf(t.key("mode"), "%q is not a mode: want %q or %q", s, ModeHop, ModeWireGuard)
		}
		p.Mode = s
	}
	if s, ok := v.path(t, "preshared_key_file", false); ok {
		p.PresharedKeyFile = s
	}
	return p
}

// publicKey decodes a peer's public key, which no peer before it may have.
func (v *validator) publicKey(key, s string) handshake.PublicKey {
	pub, err := handshake.ParsePublicKey(s)
	switch {
	case err != nil:
		v.errorf(key, "%v (hoprd pubkey prints a peer's public key)", err)
	case pub.IsZero():
		v.errorf(key, "the all-zero key is not a public key")
	case pub.IsSmallOrder():
		v.errorf(key, "a point of small order (a weak key), with which no handshake "+
			"can complete (hoprd pubkey prints a peer's public key)")
	default:
		if other, dup := v.peerKeys[pub]; dup {
			v.errorf(key, "the same public key is already given at %s", v.where(other))
		} else {
			v.peerKeys[pub] = key
		}
	}
	return pub
}

// allowedIPs validates a peer's allowed_ips: canonical prefixes that no
// other peer claims.
func (v *validator) allowedIPs(t table) []netip.Prefix {
	key := t.key("allowed_ips")
	list, paths, ok := v.strList(t, "allowed_ips")
	if !ok {
		return nil
	}
	var out []netip.Prefix
	for i, s := range list {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			v.errorAt(key, paths[i], "%q is not a prefix, like %q or %q",
				s, "10.0.0.0/24", "fd00::/64")
			continue
		}
		if p.Addr().Is4In6() {
			v.errorAt(key, paths[i], "%q is an IPv4-mapped IPv6 prefix: write it as IPv4", s)
			continue
		}
		if m := p.Masked(); m != p {
			v.errorAt(key, paths[i], "%q has host bits set; did you mean %q?", s, m.String())
			continue
		}
		if other, dup := v.peerPrefixes[p]; dup {
			v.errorAt(key, paths[i], "%v is already routed at %s", p, v.where(other))
			continue
		}
		v.peerPrefixes[p] = paths[i]
		out = append(out, p)
	}
	return out
}

// checkKeepalive checks a persistent_keepalive d, written as text: 0, or
// whole seconds from 1s to MaxPersistentKeepalive.
func (v *validator) checkKeepalive(key string, d time.Duration, text string) {
	switch {
	case d == 0:
	case d < time.Second || d > MaxPersistentKeepalive:
		v.errorf(key, "%s is out of range: want 0 (off) or 1s to %s",
			text, formatDuration(MaxPersistentKeepalive))
	case d%time.Second != 0:
		v.errorf(key, "%s is not a whole number of seconds", text)
	}
}

// missing records that t lacks the required key name, and points at a key
// of t that looks like a misspelling of it: that error is the one a user
// needs, but it sits below the table's header, where this one goes.
func (v *validator) missing(t table, name string) {
	keys := slices.Sorted(maps.Keys(t.m))
	for _, k := range keys {
		if closest(k, []string{name}) == name {
			v.errorAt(t.key(name), t.path,
				"missing: this key is required; is %q on line %d a misspelling of it?",
				k, lineOf(v.lines, t.key(k)))
			return
		}
	}
	v.errorAt(t.key(name), t.path, "missing: this key is required")
}

// str returns the string value of a key of t; ok is false when the key is
// absent or not a string. A missing required key is an error.
func (v *validator) str(t table, name string, required bool) (string, bool) {
	x, present := t.m[name]
	if !present {
		if required {
			v.missing(t, name)
		}
		return "", false
	}
	s, ok := x.(string)
	if !ok {
		v.errorf(t.key(name), "want a string, got %s", typeName(x))
	}
	return s, ok
}

// integer returns the integer value of a key of t, if it is present and
// an integer.
func (v *validator) integer(t table, name string) (int64, bool) {
	x, present := t.m[name]
	if !present {
		return 0, false
	}
	n, ok := x.(int64)
	if !ok {
		v.errorf(t.key(name), "want an integer, got %s", typeName(x))
	}
	return n, ok
}

// duration returns the duration a key of t holds as a string such as
// "100ms", and that string, to quote back as the user wrote it, if it is
// present and valid.
func (v *validator) duration(t table, name string) (time.Duration, string, bool) {
	switch x := t.m[name].(type) {
	case int64, float64:
		v.errorf(t.key(name), "want a duration as a string with its unit, like \"%vs\"; "+
			"got %s", x, typeName(x))
		return 0, "", false
	}
	s, ok := v.str(t, name, false)
	if !ok {
		return 0, "", false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		v.errorf(t.key(name), "%q is not a duration: write a number and a unit, "+
			`like "1s" or "100ms"`, s)
		return 0, "", false
	}
	return d, s, true
}

// path returns a file path a key of t holds, resolved against the config
// file's directory when it is relative.
func (v *validator) path(t table, name string, required bool) (string, bool) {
	s, ok := v.str(t, name, required)
	if !ok {
		return "", false
	}
	if s == "" || strings.IndexByte(s, 0) >= 0 {
		v.errorf(t.key(name), "want a file path, got %q", s)
		return "", false
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(v.dir, s)
	}
	return s, true
}

// strList returns the strings of an array-valued key of t, with the path of
// each element, if the key is present and every element is a string.
func (v *validator) strList(t table, name string) (list, paths []string, ok bool) {
	x, present := t.m[name]
	if !present {
		return nil, nil, false
	}
	key := t.key(name)
	elems, isList := x.([]any)
	if !isList {
		v.errorf(key, "want an array of strings, got %s", typeName(x))
		return nil, nil, false
	}
	ok = true
	for i, e := range elems {
		path := key + "[" + strconv.Itoa(i+1) + "]"
		s, isStr := e.(string)
		if !isStr {
			v.errorAt(key, path, "element %d: want a string, got %s", i+1, typeName(e))
			ok = false
		}
		list = append(list, s)
		paths = append(paths, path)
	}
	return list, paths, ok
}

// typeName names the TOML type of a decoded value.
func typeName(x any) string {
	switch x.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a datetime"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("a %T", x)
}

// closest returns the known key a mistyped one most likely meant, or "":
// one that differs only in case, or by at most two edits, or failing that
// the one sharing the longest prefix of three or more bytes ("pubkey" for
// "public_key").
func closest(name string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(name, k) {
			return k
		}
		if d := editDistance(name, k, bestDist); d < bestDist {
			best, bestDist = k, d
		}
	}
	if best != "" {
		return best
	}
	bestPrefix := 2
	for _, k := range known {
		n := 0
		for n < len(name) && n < len(k) && name[n] == k[n] {
			n++
		}
		if n > bestPrefix {
			best, bestPrefix = k, n
		}
	}
	return best
}

// editDistance returns the Levenshtein distance of a and b, or limit when
// it is limit or more.
func editDistance(a, b string, limit int) int {
	if len(a)-len(b) >= limit || len(b)-len(a) >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
