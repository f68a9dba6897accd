package integration_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestACookieOfItsOwnIsARealmOfItsOwn: two session handlers of one site
// and one store, each with a cookie of its own (an app per path, each
// "with a session of its own"; a nested /admin with its own login), were
// one realm: the site's (also with one cookie name and a cookie path per
// app). Browsers keep the cookies apart, but the store
// did not: a client that sent the ID of its forum session as shop_sid
// was served that session by the shop, whose app took the forum's user
// (or one the forum lets a visitor choose) for its own. Each cookie is now
// a realm of its own, in both directions; the handler of the default
// cookie keeps the site's realm name (an upgrade keeps its sessions), as
// do handlers that keep their sessions apart already (other stores), and
// a realm the config names is shared as it says, with a warning at load
// when its cookies differ (only a client that copies an ID from one to
// the other uses that sharing).
func TestACookieOfItsOwnIsARealmOfItsOwn(t *testing.T) {
	const warning = "two session handlers of one realm and store have different cookies"
	handle := func(path, cookie, store, realm string) string {
		return fmt.Sprintf(`handle %s/* {
		session {
			store bolt {db:%s}
			cookie %s
			%s
		}
		reverse_proxy {up}
	}
	`, path, store, cookie, realm)
	}
	type at struct{ path, cookie string }
	cases := []struct {
		name   string
		body   string
		x, y   at
		shared bool
		// the realms of the sessions made at x and y, with %d the port;
		// nil: not checked (several stores)
		realms []string
		warn   bool // a warning at load that the realm's cookies differ
	}{{
		name: "an app per path, on one store",
		body: handle("/shop", "shop_sid", "one", "") + handle("/forum", "forum_sid", "one", ""),
		x:    at{"/forum/x", "forum_sid"}, y: at{"/shop/x", "shop_sid"},
		realms: []string{"127.0.0.1@:%d cookie forum_sid", "127.0.0.1@:%d cookie shop_sid"},
	}, {
		name: "a nested /admin with a login of its own",
		body: `session {
		store bolt {db:one}
	}
	` + handle("/admin", "admin_sid", "one", "") + "reverse_proxy {up}",
		x: at{"/x", "sid"}, y: at{"/admin/x", "admin_sid"},
		realms: []string{"127.0.0.1@:%d", "127.0.0.1@:%d cookie admin_sid"},
	}, {
		name: "a session matcher per path",
		body: `session /a/* {
		store bolt {db:one}
		cookie asid
	}
	session /b/* {
		store bolt {db:one}
		cookie bsid
	}
	reverse_proxy {up}`,
		x: at{"/a/x", "asid"}, y: at{"/b/x", "bsid"},
		realms: []string{"127.0.0.1@:%d cookie asid", "127.0.0.1@:%d cookie bsid"},
	}, {
		name: "an app per path, each with a cookie path of its own",
		body: `handle /shop/* {
		session {
			store bolt {db:one}
			cookie {
				path /shop
			}
		}
		reverse_proxy {up}
	}
	handle /forum/* {
		session {
			store bolt {db:one}
			cookie {
				path /forum
			}
		}
		reverse_proxy {up}
	}`,
		x: at{"/forum/x", "sid"}, y: at{"/shop/x", "sid"},
		realms: []string{"127.0.0.1@:%d cookie sid path /forum", "127.0.0.1@:%d cookie sid path /shop"},
	}, {
		name: "an app per path, on two stores",
		body: handle("/shop", "shop_sid", "shop", "") + handle("/forum", "forum_sid", "forum", ""),
		x:    at{"/forum/x", "forum_sid"}, y: at{"/shop/x", "shop_sid"},
	}, {
		name: "an app per path, in a realm the config names",
		body: handle("/shop", "shop_sid", "one", "realm shared") + handle("/forum", "forum_sid", "one", "realm shared"),
		x:    at{"/forum/x", "forum_sid"}, y: at{"/shop/x", "shop_sid"}, shared: true,
		realms: []string{"shared", "shared"}, warn: true,
	}, {
		name: "an app per path, in a realm the config names, with one cookie",
		body: handle("/shop", "sid", "one", "realm shared") + handle("/forum", "sid", "one", "realm shared"),
		x:    at{"/forum/x", "sid"}, y: at{"/shop/x", "sid"}, shared: true,
		realms: []string{"shared", "shared"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newMultiSite(t, "s")
			logFile := filepath.Join(t.TempDir(), "caddy.log")
			m.loadSites(fmt.Sprintf("log {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel INFO\n\t}", logFile), [2]string{"s", c.body})
			text := waitForText(t, logFile, `"server running"`)
			if got := strings.Contains(text, warning); got != c.warn {
				t.Errorf("warned %v, want %v:\n%s", got, c.warn, text)
			}
			for _, dir := range [][2]at{{c.x, c.y}, {c.y, c.x}} {
				from, to := dir[0], dir[1]
				made := m.loginAt("s", from.path, "", from.cookie, "X-Session-Set-User: admin")
				if _, body := m.get("s", from.path, made); !strings.Contains(body, `"X-Session-User":["admin"]`) {
					t.Fatalf("the session made at %s does not open there: %s", from.path, body)
				}
				_, id, _ := strings.Cut(made, "=")
				_, body := m.get("s", to.path, to.cookie+"="+id)
				if got := strings.Contains(body, `"X-Session-User":["admin"]`); got != c.shared {
					t.Errorf("the ID of a session made at %s, sent as %s to %s, opens it: %v, want %v: %s", from.path, to.cookie, to.path, got, c.shared, body)
				}
			}
			if c.realms == nil {
				return
			}
			var want []string
			for _, r := range c.realms {
				want = append(want, fmt.Sprintf("%q", strings.ReplaceAll(r, "%d", fmt.Sprint(m.ports["s"]))))
			}
			got := strings.Split(sessionRealms(t), ", ")
			slices.Sort(got)
			got = slices.Compact(got)
			slices.Sort(want)
			want = slices.Compact(want)
			if !slices.Equal(got, want) {
				t.Errorf("the store holds sessions of realms %v, want %v", got, want)
			}
		})
	}
}
