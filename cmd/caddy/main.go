// Command caddy is Caddy with its standard modules and caddy-session, the
// same binary that `xcaddy build --with github.com/caddy-session/caddy-session`
// produces.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-session/caddy-session"
)

func main() {
	caddycmd.Main()
}
