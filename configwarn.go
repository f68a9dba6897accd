package caddysession

import (
	"net/http"
	"slices"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"github.com/go-jose/go-jose/v4"
	"go.uber.org/zap"

	"github.com/caddy-session/caddy-session/internal/clock"
	"github.com/caddy-session/caddy-session/session"
)

// warnInsecureCookie warns about `secure never` on a server that serves
// TLS. It differs from the default (auto) only on TLS requests, where it
// leaves out Secure: the browser then sends the session cookie over plain
// HTTP too, to any http:// URL of the host (a redirect to https comes
// after the cookie went out), where a network attacker reads it. Not
// refused: a server may take TLS and plain HTTP on one listener.
func warnInsecureCookie(logger *zap.Logger, servers map[*caddyhttp.Server][]*Handler) {
	for srv, hs := range servers {
		if len(srv.TLSConnPolicies) == 0 {
			continue
		}
		for _, h := range hs {
			if h.cookie.Secure == session.SecureNever {
				logger.Warn("cookie secure never on a server that serves TLS: the session cookie goes out without Secure, and browsers send it over plain HTTP too, where the network reads it; leave secure out (auto sets Secure on TLS requests), or set always",
					zap.String("cookie", h.cookie.Name), zap.Strings("listen", srv.Listen))
			}
		}
	}
}

// appServerCookies are the names app servers and frameworks give their
// own session and CSRF cookies.
var appServerCookies = []string{
	"PHPSESSID", "JSESSIONID", "connect.sid", "ASP.NET_SessionId", "laravel_session",
	"XSRF-TOKEN", "csrftoken", "sessionid", "session", "_session_id", "rack.session",
	"ci_session", "CAKEPHP", "PLAY_SESSION", "_csrf", "koa.sess", "express:sess",
}

// warnAppServerCookie warns about a session cookie named as an app
// server's own: the handler takes it off the requests (unless
// forward_cookie) and removes the app's Set-Cookie of it, so the app's own
// sessions or CSRF tokens of that name stop working, with a warning per
// response only. Not refused: an app migrated to the session handler
// keeps its cookie name, and its users their cookie, on purpose.
func warnAppServerCookie(logger *zap.Logger, handlers []*Handler) {
	for _, h := range handlers {
		if slices.Contains(appServerCookies, h.cookie.Name) {
			logger.Warn("the session cookie has the name an app server gives its own cookie: the handler takes the app's cookie of that name off the requests and its Set-Cookie off the responses, so the app's own sessions or CSRF tokens of that name stop working; name the session cookie otherwise unless the app no longer sets it",
				zap.String("cookie", h.cookie.Name))
		}
	}
}

// warnSplitLimits warns when handlers of one realm and store, which
// share sessions, have different limits: the stricter one refuses every
// write to a session the other let grow past its limits (a login or a
// cart of the site's app, after its /admin wrote more keys), with a
// warning per response and nothing at load.
func warnSplitLimits(logger *zap.Logger, handlers []*Handler) {
	for i, h := range handlers {
		for _, o := range handlers[i+1:] {
			if h.realm != o.realm || h.storeName != o.storeName || h.limits == o.limits {
				continue
			}
			logger.Warn("two session handlers of one realm and store have different limits: they share sessions, and the stricter one refuses every write to a session the other let grow past its limits; give them the same limits, or another realm",
				zap.String("realm", h.realm), zap.String("store", h.storeName))
		}
	}
}

// warnCrossSiteCookie warns about same_site none on a handler that no
// csrf of its session checks: browsers then send the session cookie with
// every cross-site request, and any site's form posts to the app as the
// user. Not refused: an app embedded in other sites needs it, and may
// check its own CSRF tokens.
func warnCrossSiteCookie(logger *zap.Logger, handlers []*Handler) {
	for _, h := range handlers {
		if h.cookie.SameSite != http.SameSiteNoneMode {
			continue
		}
		if slices.ContainsFunc(handlers, func(o *Handler) bool { return o.csrf != nil && (o == h || h.sharesLoad(o)) }) {
			continue
		}
		logger.Warn("cookie same_site none without csrf: browsers send the session cookie with every cross-site request, so any site's form can post to the app as the user; add csrf to the session, or leave same_site at lax unless the app is embedded in other sites",
			zap.String("cookie", h.cookie.Name))
	}
}

// warnSharedSigningKeys warns when handlers of two realms publish one
// signing key: one key_file named by both, or copies of it. Each realm's
// session_jwks then lists the key, and the app of one site accepts the
// tokens of another site's sessions, which realms otherwise keep apart
// (keys derived from a secret or from Caddy's storage are each realm's
// own). Not refused: the README says to give each site files of its own,
// and a config may mean its sites to trust each other's tokens.
func warnSharedSigningKeys(logger *zap.Logger, handlers []*Handler) {
	now := clock.Now()
	warned := map[[2]string]bool{}
	for i, h := range handlers {
		if h.signer == nil {
			continue
		}
		for _, o := range handlers[i+1:] {
			pair := [2]string{h.realm, o.realm}
			if o.signer == nil || o.realm == h.realm || warned[pair] {
				continue
			}
			for _, k := range h.signer.ring.published(now) {
				if slices.ContainsFunc(o.signer.ring.published(now), func(ok jose.JSONWebKey) bool { return ok.KeyID == k.KeyID }) {
					warned[pair] = true
					logger.Warn("sign: two realms publish one signing key (one key_file, or copies of it): the app of each site accepts the tokens of the other's sessions; give each site key files of its own, or one realm",
						zap.Strings("realms", pair[:]), zap.String("kid", k.KeyID))
					break
				}
			}
		}
	}
}

// warnNamedRealmCookies warns when handlers of one realm the config names
// and of one store use different cookies (names, or paths). They share
// sessions, but
// browsers never send one's cookie as the other's, so only a client that
// copies an ID from one cookie to the other uses the sharing: the ID of a
// session of one app, sent under the other's cookie name, opens that
// session at the other app. Default realms are split by cookie instead
// (splitCookies). Not refused: the config names the realm on purpose.
func warnNamedRealmCookies(logger *zap.Logger, handlers []*Handler) {
	warned := map[[2]string]bool{}
	for i, h := range handlers {
		for _, o := range handlers[i+1:] {
			key := [2]string{h.realm, h.storeName}
			if h.Realm == "" || h.realm != o.realm || h.storeName != o.storeName || warned[key] ||
				h.cookie.Name == o.cookie.Name && h.cookie.Path == o.cookie.Path {
				continue
			}
			warned[key] = true
			logger.Warn("two session handlers of one realm and store have different cookies (names or paths): browsers keep the cookies apart, but a session of one opens at the other when a client sends its ID as the other's cookie; give them one cookie, or realms of their own",
				zap.String("realm", h.realm), zap.String("store", h.storeName), zap.Strings("cookies", []string{h.cookie.Name, o.cookie.Name}), zap.Strings("paths", []string{h.cookie.Path, o.cookie.Path}))
		}
	}
}
