package caddysession

import (
	"fmt"
	"sync"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"
)

func init() {
	caddy.RegisterModule(new(App))
}

// App is the `session` app: the session handlers and matchers of one
// config. Handlers and matchers join it when they are provisioned; it is
// never configured by hand. Keeping them per config, not per process, is
// what lets a matcher, the admin API and the realm of a handler see only
// the handlers of their own config and site, also while a reload runs the
// old and the new config side by side.
//
// Once every app of the config is provisioned (at the app's Start, or at
// the first request, whichever comes first), the app walks the HTTP app's
// routes once (wiring.go): it gives each handler without an explicit realm
// the realm of its site, ties each session matcher to its handler, and
// warns about cookies that browsers would send to several realms. A
// matcher it cannot tie is refused there, which fails the config load.
type App struct {
	ctx    caddy.Context
	logger *zap.Logger

	mu       sync.Mutex
	handlers []*Handler
	matchers []*MatchSession

	wireOnce sync.Once
	wireErr  error
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "session",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision keeps the config's context, through which the wiring reaches
// the HTTP app once it is provisioned.
func (a *App) Provision(ctx caddy.Context) error {
	a.ctx = ctx
	a.logger = ctx.Logger()
	return nil
}

// Start wires the handlers and matchers; an error refuses the config.
func (a *App) Start() error { return a.wired() }

// Stop does nothing: the handlers release their stores in Cleanup.
func (a *App) Stop() error { return nil }

// sessionApp returns the session app of the config being provisioned,
// loading it on first use. A handler provisioned on its own, with a
// context that has no config (as the package's unit tests and benchmarks
// do), gets an app of its own, which finds no routes to wire.
func sessionApp(ctx caddy.Context) (app *App, err error) {
	defer func() {
		if recover() != nil { // caddy.Context.App needs a config
			app, err = &App{ctx: ctx, logger: ctx.Logger()}, nil
		}
	}()
	loaded, err := ctx.App("session")
	if err != nil {
		return nil, fmt.Errorf("loading the session app: %v", err)
	}
	return loaded.(*App), nil
}

// activeApp returns the session app of the running config, or nil when it
// has no session handler.
func activeApp() *App {
	app, err := caddy.ActiveContext().AppIfConfigured("session")
	if err != nil {
		return nil
	}
	a, _ := app.(*App)
	return a
}

func (a *App) addHandler(h *Handler) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handlers = append(a.handlers, h)
}

func (a *App) addMatcher(m *MatchSession) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.matchers = append(a.matchers, m)
}

// wired wires the config once and returns the outcome.
func (a *App) wired() error {
	a.wireOnce.Do(func() { a.wireErr = a.wire() })
	return a.wireErr
}

// Handlers returns the config's session handlers, in provisioning order.
func (a *App) Handlers() []*Handler {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*Handler(nil), a.handlers...)
}

// Interface guards
var (
	_ caddy.App         = (*App)(nil)
	_ caddy.Provisioner = (*App)(nil)
)
