package uapi

import (
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// encode writes req back in the protocol, canonically, for the round trip
// of FuzzParse and for the server tests.
func encode(req *Request) string {
	if req.Op == OpGet {
		return "get=1\n\n"
	}
	var b strings.Builder
	b.WriteString("set=1\n")
	s := req.Set
	if s.PrivateKey != nil {
		b.WriteString("private_key=" + hex.EncodeToString(s.PrivateKey[:]) + "\n")
	}
	if s.ListenPort != nil {
		b.WriteString("listen_port=" + strconv.Itoa(int(*s.ListenPort)) + "\n")
	}
	if s.Fwmark != nil {
		b.WriteString("fwmark=" + strconv.FormatUint(uint64(*s.Fwmark), 10) + "\n")
	}
	if s.ReplacePeers {
		b.WriteString("replace_peers=true\n")
	}
	for _, p := range s.Peers {
		b.WriteString("public_key=" + hex.EncodeToString(p.PublicKey[:]) + "\n")
		if p.Remove {
			b.WriteString("remove=true\n")
		}
		if p.UpdateOnly {
			b.WriteString("update_only=true\n")
		}
		if p.PresharedKey != nil {
			b.WriteString("preshared_key=" + hex.EncodeToString(p.PresharedKey[:]) + "\n")
		}
		if p.Endpoint.IsValid() {
			b.WriteString("endpoint=" + p.Endpoint.String() + "\n")
		}
		if p.PersistentKeepalive != nil {
			b.WriteString("persistent_keepalive_interval=" +
				strconv.Itoa(int(*p.PersistentKeepalive)) + "\n")
		}
		if p.ReplaceAllowedIPs {
			b.WriteString("replace_allowed_ips=true\n")
		}
		for _, a := range p.AllowedIPs {
			b.WriteString("allowed_ip=")
			if a.Remove {
				b.WriteString("-")
			}
			b.WriteString(a.Prefix.String() + "\n")
		}
	}
	b.WriteString("\n")
	return b.String()
}

// FuzzParse feeds arbitrary bytes to the parser. It must not panic, must
// keep its bounds, and whatever it accepts must encode back to a request
// that parses to the same value.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"get=1\n\n",
		"set=1\n\n",
		"set=1\nprivate_key=" + hexA + "\nlisten_port=51820\nfwmark=51820\n" +
			"replace_peers=true\n\n",
		"set=1\nprivate_key=" + hex0 + "\n\n",
		"set=1\nprivate_key=" + hexA + "\nreplace_peers=true\npublic_key=" + hexB +
			"\npreshared_key=" + hexC + "\nendpoint=192.0.2.2:51820\n" +
			"persistent_keepalive_interval=25\nreplace_allowed_ips=true\n" +
			"allowed_ip=100.64.0.2/32\nallowed_ip=fd7a:686f:7072::2/128\n\n",
		"set=1\npublic_key=" + hexB + "\nendpoint=[fe80::1%eth0]:51820\n" +
			"protocol_version=1\n\n",
		"set=1\npublic_key=" + hexB + "\nupdate_only=true\nallowed_ip=-10.0.0.0/8\n\n",
		"set=1\npublic_key=" + hexC + "\nremove=true\npublic_key=" + hexB + "\n\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := Parse(data)
		if err != nil {
			if req != nil {
				t.Fatalf("Parse returned a request and %v", err)
			}
			return
		}
		if req.Op == OpSet {
			lines := strings.Count(string(data), "\n")
			if len(data) > MaxSetSize+len("set=1\n") || len(req.Set.Peers) > lines {
				t.Fatalf("accepted %d bytes with %d peers", len(data), len(req.Set.Peers))
			}
		}
		again, err := Parse([]byte(encode(req)))
		if err != nil {
			t.Fatalf("re-encoded request %q does not parse: %v", encode(req), err)
		}
		if !reflect.DeepEqual(req, again) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req.Set, again.Set)
		}
	})
}
