package integration_test

import (
	"fmt"
	"testing"
)

// holdH2CStreamServer is the Go app over an h2c upstream, streaming as
// apps2Servers' servers do: a greeting, then one event holding the
// secret once the test writes it into the stream's pipe.
func holdH2CStreamServer(t *testing.T) apps2Server {
	t.Helper()
	addr := startH2CApp(t)
	return apps2Server{
		name:    "h2c upstream",
		serve:   fmt.Sprintf("reverse_proxy %s {\n\t\ttransport http {\n\t\t\tversions h2c\n\t\t}\n\t}", addr),
		command: "/emit",
		stream:  pipedStream,
	}
}

// TestAppServersH2CStreamCutWhenItsSessionEnds is
// TestAppServerStreamCutWhenItsSessionEnds over an HTTP/2 upstream
// connection (reverse_proxy's `versions h2c`), where a cut must reset
// one stream of a connection that others share, and the upstream
// response's header and body come as frames: nothing the app streams
// after its session ends reaches the client, and a renewal of the same
// user keeps the stream.
func TestAppServersH2CStreamCutWhenItsSessionEnds(t *testing.T) {
	srv := holdH2CStreamServer(t)
	for _, row := range apps2Ends {
		t.Run(row.name, func(t *testing.T) {
			s := newApps2Site(t, srv, "", "idle_timeout 2h\n\t\ttunnels 1h")
			alice := apps2Login(t, s, srv.command, "alice")
			st, next := srv.stream(t, s, alice)
			row.end(t, s, srv.command, alice)
			next("secret")
			rest, cut := st.rest()
			if row.keeps {
				if cut || rest != "data: secret\n\n" {
					t.Fatalf("after a renewal of the same user the stream gave %q (cut: %v), want the app's next event", rest, cut)
				}
				return
			}
			if rest != "" || !cut {
				t.Fatalf("after its session ended the stream gave %q (cut: %v), want nothing and a cut", rest, cut)
			}
		})
	}
}
