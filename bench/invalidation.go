package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// Case 7: two Caddy instances share sessions through one Redis, as behind
// a load balancer. A session is used on B, so that B holds whatever it
// caches of it; then A ends it, and B is asked again and again with the
// old cookie until it refuses it. The lag is from the end of A's response
// to the end of B's first refusal: it includes that one request to B.

// lagKinds are the ways A ends the session, taken in turns.
var lagKinds = []string{"logout", "revoke", "rotation"}

// lagKindText says what A does, for the report.
var lagKindText = map[string]string{
	"logout":   "logout (`X-Session-Destroy: true`)",
	"revoke":   "admin revoke by user (`POST /session/revoke`)",
	"rotation": "rotation (a login as another user)",
}

type lagOutcome struct {
	timeout time.Duration
	kinds   []*lagKind
	polls   []time.Duration // every request to B, for its usual latency
	err     error           // the case could not run
}

type lagKind struct {
	name       string
	tries      int
	lags       []time.Duration // of the tries B refused in time
	failures   int             // B still accepted the session at the timeout
	errors     int             // tries that went wrong before the measurement
	firstErr   error
	stale      int // requests B answered with the ended session
	staleTries int // tries with at least one such request
}

// pairCaddy is one of the two instances.
type pairCaddy struct {
	proc        *proc
	site, admin string
}

// startPair starts the two instances: the same binary and Caddyfile, each
// on its own ports, on one Redis with one key_prefix and one realm, so
// that they share sessions.
func startPair(e *env) ([2]pairCaddy, error) {
	var pair [2]pairCaddy
	ports, err := freePorts(4)
	if err != nil {
		return pair, err
	}
	for i, name := range []string{"a", "b"} {
		admin, port := ports[2*i], ports[2*i+1]
		sites := []site{{
			Name:  "session on Redis, instance " + name + " of the invalidation case",
			Store: "redis redis://" + e.redisAddr + "/0", KeyPrefix: "bench-lag:", Realm: "bench-lag", Port: port,
		}}
		p, err := e.startCaddy("caddy-lag-"+name, admin, 0, sites)
		if err != nil {
			return pair, err
		}
		pair[i] = pairCaddy{proc: p, site: "127.0.0.1:" + strconv.Itoa(port), admin: "127.0.0.1:" + strconv.Itoa(admin)}
	}
	return pair, nil
}

func caseInvalidation(cfg config, e *env) *lagOutcome {
	logf("case 7, invalidation lag: two Caddys on one Redis, %d tries of each of %v", cfg.lagTries, lagKinds)
	o := &lagOutcome{timeout: cfg.lagTimeout}
	for _, k := range lagKinds {
		o.kinds = append(o.kinds, &lagKind{name: k})
	}
	pair, err := startPair(e)
	defer func() {
		for _, c := range pair {
			if c.proc != nil {
				c.proc.stop()
			}
		}
	}()
	if err != nil {
		o.err = err
		return o
	}
	a, b := pair[0], pair[1]
	// Each instance gets its own keep-alive connections, so B is polled
	// as fast as it answers.
	clientA := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	clientB := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
	defer clientA.CloseIdleConnections()
	defer clientB.CloseIdleConnections()
	for i := range cfg.lagTries * len(lagKinds) {
		k := o.kinds[i%len(lagKinds)]
		k.tries++
		if err := o.try(cfg, k, a, b, clientA, clientB); err != nil {
			k.errors++
			if k.firstErr == nil {
				k.firstErr = err
				logf("invalidation, %s: %v", k.name, err)
			}
		}
		// Nothing works, so the rest would fail alike.
		if i == len(lagKinds)-1 && !slices.ContainsFunc(o.kinds, func(k *lagKind) bool { return k.errors == 0 }) {
			o.err = fmt.Errorf("every kind failed on its first try; the first: %v", o.kinds[0].firstErr)
			return o
		}
	}
	for _, k := range o.kinds {
		slices.Sort(k.lags)
		logf("invalidation, %s: %d tries, lag p50 %s, max %s, %d still accepted at %s",
			k.name, k.tries, k.percentile(50), k.percentile(100), k.failures, cfg.lagTimeout)
	}
	return o
}

// try logs in on A, uses the session on B, ends it on A one way, and
// measures how long B still accepts it.
func (o *lagOutcome) try(cfg config, k *lagKind, a, b pairCaddy, clientA, clientB *http.Client) error {
	res, _, err := visit(clientA, a.site, "/login", "")
	if err != nil {
		return err
	}
	id := sessionCookie(res)
	if id == "" {
		return fmt.Errorf("a login on A set no session cookie")
	}
	// Twice: a store that caches on B holds the session after either.
	var user string
	for range 2 {
		if user, err = whoami(clientB, b.site, id); err != nil {
			return err
		}
		if user == "" {
			return fmt.Errorf("B did not adopt a session made on A: they do not share sessions")
		}
	}
	switch k.name {
	case "logout":
		_, _, err = visit(clientA, a.site, "/logout", id)
	case "revoke":
		err = revokeUser(clientA, a.admin, user)
	case "rotation":
		res, _, err = visit(clientA, a.site, "/login", id)
		if err == nil {
			if next := sessionCookie(res); next == "" || next == id {
				err = fmt.Errorf("a login as another user on A did not rotate the session")
			}
		}
	}
	if err != nil {
		return err
	}
	ended := time.Now()
	stale := 0
	for {
		begin := time.Now()
		user, err := whoami(clientB, b.site, id)
		o.polls = append(o.polls, time.Since(begin))
		if err != nil {
			return err
		}
		if user == "" {
			k.lags = append(k.lags, time.Since(ended))
			break
		}
		stale++
		if time.Since(ended) > cfg.lagTimeout {
			k.failures++
			break
		}
	}
	k.stale += stale
	if stale > 0 {
		k.staleTries++
	}
	return nil
}

// revokeUser revokes every session of user through the admin API.
func revokeUser(c *http.Client, admin, user string) error {
	body, _ := json.Marshal(map[string]string{"value": user})
	res, err := c.Post("http://"+admin+"/session/revoke", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var answer struct{ Revoked int }
	if res.StatusCode != http.StatusOK || json.Unmarshal(b, &answer) != nil || answer.Revoked < 1 {
		return fmt.Errorf("revoke on A's admin API: %s: %s", res.Status, bytes.TrimSpace(b))
	}
	return nil
}

// percentile of the sorted lags; 100 is the largest.
func (k *lagKind) percentile(p float64) time.Duration {
	if len(k.lags) == 0 {
		return 0
	}
	return k.lags[int(float64(len(k.lags)-1)*p/100)]
}

// pollMedian is the median time of one request to B.
func (o *lagOutcome) pollMedian() time.Duration {
	if len(o.polls) == 0 {
		return 0
	}
	p := slices.Clone(o.polls)
	slices.Sort(p)
	return p[len(p)/2]
}
