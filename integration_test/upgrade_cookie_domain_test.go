package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A cookie domain that one of the session's hosts is within loaded at the
// previous main, and its sessions lasted on that host: the upgrade must
// not refuse the config (checkCookieDomains refuses a domain that none of
// the hosts is within, which browsers drop everywhere). Two such layouts
// were refused: a wildcard site (*.example.com) whose cookie domain is
// one of the hosts it serves (app.example.com), and a session in a named
// route that two sites invoke, where the domain covers the second site's
// host but not the first's. The session the previous main made there
// must open after the upgrade.
func TestUpgradeCookieDomainWithinSomeHostLoads(t *testing.T) {
	slow(t, "builds the previous main's Caddy and runs both binaries")
	old, cur := upgradeOldBinary(t), caddyBinary(t)
	for _, tc := range []struct {
		name, host string
		sites      func(port int, up, db string) string
	}{{
		name: "a wildcard site and a domain it serves",
		host: "app.example.com",
		sites: func(port int, up, db string) string {
			return fmt.Sprintf(`http://*.example.com:%d {
	session {
		store bolt %s
		cookie {
			domain app.example.com
		}
	}
	reverse_proxy %s
}`, port, db, up)
		},
	}, {
		name: "a named route of two sites, the domain covering the second",
		host: "a.example.com",
		sites: func(port int, up, db string) string {
			return fmt.Sprintf(`&(sess) {
	session {
		store bolt %s
		realm shared
		cookie {
			domain example.com
		}
	}
}
http://b.example.test:%d {
	route {
		invoke sess
		reverse_proxy %s
	}
}
http://a.example.com:%d {
	route {
		invoke sess
		reverse_proxy %s
	}
}`, db, port, up, port, up)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t)
			admin, port := freePort(t), freePort(t)
			config := fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", admin) +
				tc.sites(port, up.addr(), t.TempDir()+"/sessions.db")

			c := startUpgradeWith(t, "old", old, config, admin, port)
			sid, seen := upgradeHostGet(t, port, tc.host, "", "X-Session-Set-User: alice")
			if sid == "" {
				t.Fatalf("old build: the login at %s issued no cookie", tc.host)
			}
			if _, seen = upgradeHostGet(t, port, tc.host, sid); seen != "alice" {
				t.Fatalf("old build: the session at %s opens as %q, want alice", tc.host, seen)
			}

			c.as("new", cur)
			if _, seen = upgradeHostGet(t, port, tc.host, sid); seen != "alice" {
				t.Fatalf("new build: the session the old one made at %s opens as %q, want alice", tc.host, seen)
			}
		})
	}
}

// upgradeHostGet sends a GET for host to the port with the session
// cookie sid (none if ""), the upstream answering with commands. It
// returns the sid cookie the response set ("" for none) and the user the
// upstream saw.
func upgradeHostGet(t *testing.T, port int, host, sid string, commands ...string) (set, user string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	if sid != "" {
		req.Header.Set("Cookie", "sid="+sid)
	}
	for _, c := range commands {
		req.Header.Add("Test-Header", c)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", host, res.StatusCode, body)
	}
	for _, ck := range res.Cookies() {
		if ck.Name == "sid" && ck.MaxAge >= 0 {
			set = ck.Value
		}
	}
	var s seen
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	return set, strings.Join(s.Headers.Values("X-Session-User"), ",")
}
