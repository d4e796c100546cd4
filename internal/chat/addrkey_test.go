package chat

import "testing"

// TestAddrKey: the per-address limits count an IPv4 address as itself, an IPv6 one as its /64,
// whatever form a proxy wrote it in.
func TestAddrKey(t *testing.T) {
	for in, want := range map[string]string{
		"10.0.0.1":                       "10.0.0.1",
		"::ffff:10.0.0.1":                "10.0.0.1",
		"10.0.0.1:4321":                  "10.0.0.1",
		"2001:db8:1:2::1":                "2001:db8:1:2::/64",
		"2001:DB8:1:2:ffff:1:2:3":        "2001:db8:1:2::/64",
		"[2001:db8:1:2::1]":              "2001:db8:1:2::/64",
		"[2001:db8:1:2::1]:443":          "2001:db8:1:2::/64",
		"fe80::1%eth0":                   "fe80::/64",
		"not an address":                 "not an address",
		"2001:0db8:0001:0002:0:0:0:0001": "2001:db8:1:2::/64",
	} {
		if got := addrKey(in); got != want {
			t.Errorf("addrKey(%q) = %q, want %q", in, got, want)
		}
	}
}
