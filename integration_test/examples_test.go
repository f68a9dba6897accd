package integration_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddytest"
)

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile("../" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCaddyfileExampleAdaptsToJSONExample keeps the two examples the same
// setup: `caddy adapt` of the Caddyfile gives the JSON.
func TestCaddyfileExampleAdaptsToJSONExample(t *testing.T) {
	adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(readExample(t, "Caddyfile.example")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("adapting Caddyfile.example warned: %v", warnings)
	}
	var got, want any
	if err := json.Unmarshal(adapted, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(readExample(t, "caddy.json.example")), &want); err != nil {
		t.Fatalf("caddy.json.example: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("caddy adapt of Caddyfile.example differs from caddy.json.example; regenerate it with\n" +
			"  go run ./cmd/caddy adapt --config Caddyfile.example --pretty > caddy.json.example")
	}
}

// TestExamplesWork loads each example into a real Caddy and follows the
// README's walk-through against it.
func TestExamplesWork(t *testing.T) {
	admin := fmt.Sprintf("{\n\tadmin localhost:%d\n}\n", adminPort)
	var jsonConfig map[string]any
	if err := json.Unmarshal([]byte(readExample(t, "caddy.json.example")), &jsonConfig); err != nil {
		t.Fatal(err)
	}
	jsonConfig["admin"] = map[string]any{"listen": fmt.Sprintf("localhost:%d", adminPort)}
	jsonText, _ := json.Marshal(jsonConfig)

	for _, example := range []struct{ name, config, adapter string }{
		{"Caddyfile.example", admin + readExample(t, "Caddyfile.example"), "caddyfile"},
		{"caddy.json.example", string(jsonText), "json"},
	} {
		t.Run(example.name, func(t *testing.T) {
			tester := caddytest.NewTester(t)
			tester.InitServer(example.config, example.adapter)
			walkThrough(t, tester.Client)
		})
	}
}

// walkThrough is the README's curl walk-through, step by step.
func walkThrough(t *testing.T, client *http.Client) {
	t.Helper()
	get := func(path string, header ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://localhost:8080"+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		assertNoNamespace(t, res.Header)
		return res, string(body)
	}
	steps := []struct {
		path, want string
		header     []string
	}{
		{path: "/whoami", want: "You are: \n"},
		{path: "/login?user=alice", want: "Welcome, alice. You are logged in. Try /whoami, /cart/add?item=apple, /cart, /logout.\n"},
		{path: "/whoami", want: "You are: alice\n"},
		{path: "/cart/add?item=apple", want: "Added apple to your cart.\n"},
		{path: "/cart/add?item=pear", want: "Added pear to your cart.\n"},
		{path: "/cart", want: "Your cart: apple pear\n"},
		{path: "/whoami", want: "You are: alice\n", header: []string{"X-Session-User", "mallory", "X_Session_User", "mallory"}},
		{path: "/logout", want: "You are logged out.\n"},
		{path: "/whoami", want: "You are: \n"},
	}
	for i, step := range steps {
		res, body := get(step.path, step.header...)
		if res.StatusCode != http.StatusOK || body != step.want {
			t.Fatalf("step %d, GET %s: %d %q, want 200 %q", i+1, step.path, res.StatusCode, body, step.want)
		}
		setsCookie := strings.Contains(res.Header.Get("Set-Cookie"), "sid=")
		if wantCookie := step.path == "/login?user=alice" || step.path == "/logout"; setsCookie != wantCookie {
			t.Fatalf("step %d, GET %s: Set-Cookie %q", i+1, step.path, res.Header.Get("Set-Cookie"))
		}
	}
}
