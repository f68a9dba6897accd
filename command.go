package caddysession

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "session",
		Usage: "list|show|revoke|count|export|import|migrate [--address <interface>] [--store <name>] [--json]",
		Short: "Lists, revokes, exports and imports the sessions of the session handler",
		Long: `
Works on the sessions of a running Caddy through its admin API, as
'caddy reload' does: the address is taken from --address if given, else
from the admin option of the config named by --config (and --adapter),
else it is the default, localhost:2019.

Sessions are named by the SHA-256 of their ID, in hex, as 'list' shows
them: no subcommand ever sees or prints a session ID.

  caddy session list                  the live sessions, a page at a time
  caddy session show <hash>           one session; --values adds its values
  caddy session revoke <hash>         end one session
  caddy session revoke --user alice   end every session of a user
  caddy session count                 live sessions per store

  caddy session export --output sessions.jsonl
  caddy session import --input sessions.jsonl

  caddy session migrate               copy a fallback_store into the store
  caddy session migrate --from <store> --to <store>

export and import move sessions whole, as JSON lines (one session per
line, with its hash, realm, times, flash values, user agent, identity key
and values), so that cookies issued before keep opening their sessions
after a move to another store or another Caddy. With --bolt <file> they
work offline, on the bolt file of a Caddy that is not running.

With several session stores in the config, name one with --store. With
--json, each subcommand prints JSON instead of text for people.
`,
		CobraFunc: func(cmd *cobra.Command) {
			f := cmd.PersistentFlags()
			f.String("address", "", "Address of the administration listener, if different from config")
			f.StringP("config", "c", "", "Configuration file to find the admin address in")
			f.StringP("adapter", "a", "", "Name of config adapter to apply")
			f.String("store", "", "Name of the session store, when the config has several")
			f.Bool("json", false, "Print JSON instead of text")
			cmd.AddCommand(listCommand(), showCommand(), revokeCommand(), countCommand(), exportCommand(), importCommand(), migrateCommand())
		},
	})
}
