package config

import (
	"strconv"
	"strings"
)

// The TOML decoder tells where a syntax error is, but not where each key of
// a valid document was written: its position records keep only the last
// [[peer]] table's keys. The scanner below walks the document and records
// the line of every key, table header and array element under the same
// path names the validator uses:
//
//	interface               the [interface] header
//	interface.address       the address key
//	interface.address[2]    the second element of its array
//	peer[2]                 the second [[peer]] header
//	peer[2].allowed_ips     a key of that table
//
// It runs in linear time on any input and never panics. It reads valid
// TOML right; on invalid TOML, which the decoder then rejects, it may
// record wrong lines, which nothing uses.
//
// It also guards the decoder, which takes time quadratic or worse in the
// depth of nesting and the number of parts of a dotted key: 16,000 levels
// take it a minute. A hoprd config nests two levels deep, so the scanner
// stops at the first value or key deeper than its limits and Parse rejects
// the file before decoding it.

// Limits on the shape of a document; a hoprd config needs two of each.
const (
	maxNesting  = 8 // arrays and inline tables inside each other
	maxKeyParts = 8 // parts of a dotted key or table header
)

// lineScanner records the line of every key path in a TOML document.
type lineScanner struct {
	src     []byte
	pos     int
	line    int
	depth   int
	tooDeep int            // line where a limit was passed; then scanning stops
	lines   map[string]int // path -> first line it appears on
	arrays  map[string]int // raw [[table]] path -> headers seen so far
}

// scanLines returns the line of each key path written in src. If src nests
// deeper than maxNesting or has a key of more than maxKeyParts parts, it
// stops there and returns that line as tooDeep.
func scanLines(src []byte) (lines map[string]int, tooDeep int) {
	s := &lineScanner{
		src:    src,
		line:   1,
		lines:  make(map[string]int),
		arrays: make(map[string]int),
	}
	table := ""
	for s.tooDeep == 0 {
		s.skipBlank(true)
		if s.pos >= len(s.src) {
			break
		}
		start := s.pos
		if s.src[s.pos] == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
			s.skipLine()
		}
		if s.pos == start {
			s.advance(1)
		}
	}
	return s.lines, s.tooDeep
}

// stop ends the scan because the document passes a limit on its shape.
func (s *lineScanner) stop() {
	s.tooDeep = s.line
	s.pos = len(s.src)
}

// record notes that path appears on the current line, unless it was seen
// before.
func (s *lineScanner) record(path string, line int) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = line
	}
}

// advance moves n bytes ahead, counting the newlines it passes.
func (s *lineScanner) advance(n int) {
	end := min(s.pos+n, len(s.src))
	for ; s.pos < end; s.pos++ {
		if s.src[s.pos] == '\n' {
			s.line++
		}
	}
}

// peek returns the byte i places ahead, or 0 past the end.
func (s *lineScanner) peek(i int) byte {
	if s.pos+i < len(s.src) {
		return s.src[s.pos+i]
	}
	return 0
}

// skipBlank skips spaces, tabs and comments, and newlines too when
// newlines is set.
func (s *lineScanner) skipBlank(newlines bool) {
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == ' ' || c == '\t' || c == '\r':
			s.advance(1)
		case c == '\n' && newlines:
			s.advance(1)
		case c == '#':
			for s.pos < len(s.src) && s.src[s.pos] != '\n' {
				s.advance(1)
			}
		default:
			return
		}
	}
}

// skipLine skips the rest of the line, which holds only blanks and a
// comment after a key/value pair.
func (s *lineScanner) skipLine() {
	for s.pos < len(s.src) && s.src[s.pos] != '\n' {
		s.advance(1)
	}
}

// header reads a [table] or [[table]] header and returns its path.
func (s *lineScanner) header() string {
	line := s.line
	array := s.peek(1) == '['
	if array {
		s.advance(2)
	} else {
		s.advance(1)
	}
	parts := s.keyParts()
	s.skipBlank(false)
	if array {
		s.advance(2)
	} else {
		s.advance(1)
	}
	if len(parts) == 0 {
		return ""
	}
	if array {
		s.arrays[strings.Join(parts, ".")]++
	}
	path := s.resolve(parts)
	s.record(path, line)
	return path
}

// resolve turns the key parts of a header into a path, giving each part
// that names an array of tables the index of its latest element. It runs
// in time linear in the header's length, however many parts it has.
func (s *lineScanner) resolve(parts []string) string {
	raw := strings.Join(parts, ".")
	var b strings.Builder
	end := 0
	for i, p := range parts {
		if i > 0 {
			end++ // the dot
		}
		end += len(p)
		writeKeyPart(&b, p)
		if n := s.arrays[raw[:end]]; n > 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(n))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// keyValue reads "key = value" inside the table at path table.
func (s *lineScanner) keyValue(table string) {
	line := s.line
	parts := s.keyParts()
	if len(parts) == 0 {
		return
	}
	var b strings.Builder
	b.WriteString(table)
	for _, p := range parts {
		writeKeyPart(&b, p)
	}
	path := b.String()
	s.record(path, line)
	s.skipBlank(false)
	if s.peek(0) != '=' {
		return
	}
	s.advance(1)
	s.skipBlank(false)
	s.value(path)
}

// keyParts reads a dotted key: bare, "basic" or 'literal' parts joined by
// dots, with blanks allowed around the dots.
func (s *lineScanner) keyParts() []string {
	var parts []string
	for {
		s.skipBlank(false)
		part, ok := s.keyPart()
		if !ok {
			return parts
		}
		parts = append(parts, part)
		if len(parts) > maxKeyParts {
			s.stop()
			return nil
		}
		s.skipBlank(false)
		if s.peek(0) != '.' {
			return parts
		}
		s.advance(1)
	}
}

// keyPart reads one part of a dotted key.
func (s *lineScanner) keyPart() (string, bool) {
	start := s.pos
	switch s.peek(0) {
	case '"':
		s.skipString()
		raw := string(s.src[start:s.pos])
		if k, err := strconv.Unquote(raw); err == nil {
			return k, true
		}
		return strings.Trim(raw, `"`), true
	case '\'':
		s.skipString()
		return strings.Trim(string(s.src[start:s.pos]), "'"), true
	}
	for s.pos < len(s.src) && isBareKeyByte(s.src[s.pos]) {
		s.pos++
	}
	return string(s.src[start:s.pos]), s.pos > start
}

// value skips one value, recording the lines of the keys and array
// elements inside it.
func (s *lineScanner) value(path string) {
	switch s.peek(0) {
	case '"', '\'':
		s.skipString()
	case '[':
		s.nested(path, s.array)
	case '{':
		s.nested(path, s.inlineTable)
	default:
		for s.pos < len(s.src) && !strings.ContainsRune(",]}#\n", rune(s.src[s.pos])) {
			s.advance(1)
		}
	}
}

// nested runs read on a nested array or inline table, giving up when the
// nesting is deeper than a config can use.
func (s *lineScanner) nested(path string, read func(string)) {
	if s.depth >= maxNesting {
		s.stop()
		return
	}
	s.depth++
	read(path)
	s.depth--
}

// array reads [v1, v2, ...]; element i is recorded as path[i].
func (s *lineScanner) array(path string) {
	s.advance(1)
	n := 0
	for s.pos < len(s.src) && s.tooDeep == 0 {
		s.skipBlank(true)
		start := s.pos
		switch s.peek(0) {
		case ']':
			s.advance(1)
			return
		case ',':
			s.advance(1)
		default:
			n++
			elem := path + "[" + strconv.Itoa(n) + "]"
			s.record(elem, s.line)
			s.value(elem)
		}
		if s.pos == start {
			s.advance(1)
		}
	}
}

// inlineTable reads {k1 = v1, k2 = v2, ...}.
func (s *lineScanner) inlineTable(path string) {
	s.advance(1)
	for s.pos < len(s.src) && s.tooDeep == 0 {
		s.skipBlank(true)
		start := s.pos
		switch s.peek(0) {
		case '}':
			s.advance(1)
			return
		case ',':
			s.advance(1)
		default:
			s.keyValue(path)
		}
		if s.pos == start {
			s.advance(1)
		}
	}
}

// skipString skips a basic, literal or multi-line string starting at the
// current quote.
func (s *lineScanner) skipString() {
	q := s.peek(0)
	escapes := q == '"'
	if s.peek(1) == q && s.peek(2) == q {
		s.advance(3)
		for s.pos < len(s.src) {
			switch c := s.src[s.pos]; {
			case c == '\\' && escapes:
				s.advance(2)
			case c == q && s.peek(1) == q && s.peek(2) == q:
				// A closing delimiter may follow one or two quotes that
				// belong to the string: take the whole run, at most five.
				n := 3
				for n < 5 && s.peek(n) == q {
					n++
				}
				s.advance(n)
				return
			default:
				s.advance(1)
			}
		}
		return
	}
	s.advance(1)
	for s.pos < len(s.src) {
		switch c := s.src[s.pos]; {
		case c == '\\' && escapes:
			s.advance(2)
		case c == q:
			s.advance(1)
			return
		case c == '\n':
			return
		default:
			s.advance(1)
		}
	}
}

// isBareKeyByte reports whether c may appear in a bare TOML key.
func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-'
}

// joinKey appends a key part to a path, quoting the part when it is not a
// bare key, so that errors name a key the way it can be written.
func joinKey(path, part string) string {
	var b strings.Builder
	b.WriteString(path)
	writeKeyPart(&b, part)
	return b.String()
}

// writeKeyPart appends a key part to the path in b, after a dot unless b
// is empty, quoting the part when it is not a bare key.
func writeKeyPart(b *strings.Builder, part string) {
	if b.Len() > 0 {
		b.WriteByte('.')
	}
	bare := part != ""
	for i := 0; i < len(part) && bare; i++ {
		bare = isBareKeyByte(part[i])
	}
	if bare {
		b.WriteString(part)
	} else {
		b.WriteString(strconv.Quote(part))
	}
}
