package integration_test

import (
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// adminTransport carries this process's requests to Caddy's admin
// endpoint: caddytest's loads and config reads, which go through
// http.DefaultTransport, and the tests' own. Every change of the config,
// even one refused, replaces the admin server: Caddy binds a new
// SO_REUSEPORT socket for it and closes the old one in a goroutine, after
// the change has been answered. Until then the kernel may hand a new
// connection to the closing socket, which refuses or resets it, and a
// kept-alive connection dies with the old server; caddytest sends its
// POST /load once, so either failed a test now and then (a config loaded
// right after a refused one). So the request after a change waits until
// one socket listens on the port, and each goes on a connection of its
// own.
type adminTransport struct {
	admin http.RoundTripper // no keep-alive
	other http.RoundTripper

	mu      sync.Mutex
	changed bool // a request since the last wait may have replaced the admin server
}

// useAdminTransport puts adminTransport in front of http.DefaultTransport.
func useAdminTransport() {
	base := http.DefaultTransport.(*http.Transport)
	admin := base.Clone()
	admin.DisableKeepAlives = true
	http.DefaultTransport = &adminTransport{admin: admin, other: base}
}

func (a *adminTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Port() != strconv.Itoa(adminPort) {
		return a.other.RoundTrip(r)
	}
	changes := r.Method != http.MethodGet && r.Method != http.MethodHead
	if err := a.settle(changes); err != nil {
		return nil, err
	}
	res, err := a.admin.RoundTrip(r)
	if changes {
		// Again once answered: a request that settled while this one
		// was in flight cleared the mark before the old socket closed.
		a.mu.Lock()
		a.changed = true
		a.mu.Unlock()
	}
	return res, err
}

// settle waits for the old admin socket to close if a change came before,
// and notes whether this request may change the config.
func (a *adminTransport) settle(changes bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.changed {
		// Reading /proc/net/tcp takes milliseconds with the sockets a
		// test run leaves in TIME_WAIT, so only after a change.
		if err := awaitOneListener(adminPort, 10*time.Second); err != nil {
			return fmt.Errorf("admin endpoint: %w", err)
		}
	}
	a.changed = changes
	return nil
}
