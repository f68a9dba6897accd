package caddysession

import (
	"fmt"
	"strings"
)

// checkCookieDomains refuses a cookie domain that none of the handler's
// hosts is within. A browser drops a cookie whose Domain does not cover
// the host that set it: every login of the site "succeeded", and the
// next request was anonymous, without a word at load time. A handler
// that any host may reach (a site of no host), or whose hosts hold
// placeholders, is not judged.
func checkCookieDomains(handlers []*Handler, sites map[*Handler]site) error {
	for _, h := range handlers {
		domain := strings.ToLower(strings.TrimPrefix(h.cookie.Domain, "."))
		hosts := sites[h].hosts
		if domain == "" || len(hosts) == 0 || strings.Contains(strings.Join(hosts, ""), "{") {
			continue
		}
		within := false
		for _, host := range hosts {
			host = strings.TrimPrefix(strings.ToLower(host), "*.")
			if host == domain || strings.HasSuffix(host, "."+domain) {
				within = true
				break
			}
		}
		if !within {
			return fmt.Errorf("cookie domain %q covers none of the session's hosts (%s), so browsers would drop its cookie and no session would last; give a domain the hosts are within, or none for a host-only cookie",
				h.cookie.Domain, strings.Join(hosts, ", "))
		}
	}
	return nil
}
