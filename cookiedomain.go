package caddysession

import (
	"fmt"
	"slices"
	"strings"
)

// checkCookieDomains refuses a cookie domain that none of the handler's
// hosts is within. A browser drops a cookie whose Domain does not cover
// the host that set it: every login of the site "succeeded", and the
// next request was anonymous, without a word at load time. The hosts are
// those of every site the handler serves (placesOf: the sites that invoke
// its named route too), and a wildcard site's are each host it matches
// (hostWithin: *.example.com serves app.example.com, whose cookie lasts
// there). A handler that any host may reach (a site of no host),
// or whose hosts hold placeholders, is not judged.
func checkCookieDomains(handlers []*Handler, places func(*Handler) []site) error {
	for _, h := range handlers {
		domain := strings.ToLower(strings.TrimPrefix(h.cookie.Domain, "."))
		if domain == "" {
			continue
		}
		var hosts []string
		judged := true
		for _, at := range places(h) {
			if len(at.hosts) == 0 || strings.Contains(strings.Join(at.hosts, ""), "{") {
				judged = false
			}
			hosts = append(hosts, at.hosts...)
		}
		if !judged || slices.ContainsFunc(hosts, func(host string) bool { return hostWithin(host, domain) }) {
			continue
		}
		return fmt.Errorf("cookie domain %q covers none of the session's hosts (%s), so browsers would drop its cookie and no session would last; give a domain the hosts are within, or none for a host-only cookie",
			h.cookie.Domain, strings.Join(hosts, ", "))
	}
	return nil
}

// hostWithin reports whether a host the pattern host matches is domain
// or lies within it: the last labels of the pattern are the domain's,
// where a wildcard label (*) matches any one. A site *.example.com serves
// app.example.com, and a cookie for that domain is kept there; comparing
// the pattern's fixed suffix alone refused it.
func hostWithin(host, domain string) bool {
	h, d := strings.Split(strings.ToLower(host), "."), strings.Split(domain, ".")
	if len(d) > len(h) {
		return false
	}
	for i, label := range h[len(h)-len(d):] {
		if label != "*" && label != d[i] {
			return false
		}
	}
	return true
}
