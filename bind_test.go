package caddysession

import (
	"encoding/json"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func TestUnmarshalBind(t *testing.T) {
	cases := []struct {
		line, want string // want "" for an error
	}{
		{"bind user_agent", `{"user_agent":true}`},
		{"bind ip", `{"ip":{}}`},
		{"bind ip 24", `{"ip":{"ipv4_prefix":24}}`},
		{"bind ip 24 56", `{"ip":{"ipv4_prefix":24,"ipv6_prefix":56}}`},
		{"bind user_agent ip 16", `{"user_agent":true,"ip":{"ipv4_prefix":16}}`},
		{"bind ip 24 user_agent", `{"user_agent":true,"ip":{"ipv4_prefix":24}}`},
		{"bind ip user_agent", `{"user_agent":true,"ip":{}}`},
		{"bind", ""},
		{"bind cookie", ""},
		{"bind ip 24 56 48", ""},
	}
	for _, c := range cases {
		t.Run(c.line, func(t *testing.T) {
			var h Handler
			err := h.UnmarshalCaddyfile(caddyfile.NewTestDispenser("session {\n" + c.line + "\n}"))
			if c.want == "" {
				if err == nil {
					t.Fatalf("no error; got %+v", h.Bind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(h.Bind)
			if !jsonEqual(t, string(got), c.want) {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestProvisionBind(t *testing.T) {
	cases := []struct {
		name       string
		bind       BindConfig
		ok         bool
		recordsUA  bool
		ipv4, ipv6 int
	}{
		{"user agent records it", BindConfig{UserAgent: true}, true, true, 0, 0},
		{"ip defaults", BindConfig{IP: &BindIPConfig{}}, true, false, 32, 64},
		{"ip lengths kept", BindConfig{IP: &BindIPConfig{IPv4Prefix: 8, IPv6Prefix: 128}}, true, false, 8, 128},
		{"nothing to bind to", BindConfig{}, false, false, 0, 0},
		{"IPv4 over 32", BindConfig{IP: &BindIPConfig{IPv4Prefix: 33}}, false, false, 0, 0},
		{"IPv6 over 128", BindConfig{IP: &BindIPConfig{IPv6Prefix: 129}}, false, false, 0, 0},
		{"negative", BindConfig{IP: &BindIPConfig{IPv4Prefix: -1}}, false, false, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var h Handler
			err := c.bind.provision(&h)
			if (err == nil) != c.ok {
				t.Fatalf("error %v, want ok %v", err, c.ok)
			}
			if !c.ok {
				return
			}
			if h.RecordUserAgent != c.recordsUA {
				t.Errorf("record_user_agent %v, want %v", h.RecordUserAgent, c.recordsUA)
			}
			if ip := c.bind.IP; ip != nil && (ip.IPv4Prefix != c.ipv4 || ip.IPv6Prefix != c.ipv6) {
				t.Errorf("prefixes /%d /%d, want /%d /%d", ip.IPv4Prefix, ip.IPv6Prefix, c.ipv4, c.ipv6)
			}
		})
	}
}
