package integration_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// writeSigningKey writes a new Ed25519 private key, PKCS #8 in PEM, to
// each of the files given (copies of one key), and returns the first.
func writeSigningKey(t *testing.T, files ...string) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return files[0]
}

// TestSigningKeyOfTwoRealmsWarnsAtLoad: realms keep one site's signed
// tokens out of another site's app by giving each realm keys of its own,
// except key_file, which is used as given. Two sites of one Caddy that
// name one key file (or copies of it) each publish that key at their
// session_jwks, and each site's app accepts the tokens of the other's
// sessions: an attacker's session on site b opens site a's app. The
// README told the operator to give each site files of its own; nothing
// said so at load. Now a warning does, for that case only.
func TestSigningKeyOfTwoRealmsWarnsAtLoad(t *testing.T) {
	const warning = "two realms publish one signing key"
	const secret = "0123456789abcdef0123456789abcdef-one-secret"
	cases := []struct {
		name string
		// signs gives the sign blocks of sites a and b, and their realm
		// lines, in a temporary directory
		signs      func(t *testing.T, dir string) (a, b string)
		realm      string
		warn, same bool // a warning; one key in both sets
	}{
		{name: "one key file", warn: true, same: true, signs: func(t *testing.T, dir string) (string, string) {
			f := writeSigningKey(t, filepath.Join(dir, "sign.pem"))
			return "key_file " + f, "key_file " + f
		}},
		{name: "copies of one key", warn: true, same: true, signs: func(t *testing.T, dir string) (string, string) {
			a, b := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
			writeSigningKey(t, a, b)
			return "key_file " + a, "key_file " + b
		}},
		{name: "the other's key published", warn: true, signs: func(t *testing.T, dir string) (string, string) {
			a := writeSigningKey(t, filepath.Join(dir, "a.pem"))
			b := writeSigningKey(t, filepath.Join(dir, "b.pem"))
			return "key_file " + a, "key_file " + b + " " + a
		}},
		{name: "key files of their own", signs: func(t *testing.T, dir string) (string, string) {
			return "key_file " + writeSigningKey(t, filepath.Join(dir, "a.pem")), "key_file " + writeSigningKey(t, filepath.Join(dir, "b.pem"))
		}},
		{name: "one secret", signs: func(t *testing.T, dir string) (string, string) {
			return "secret " + secret, "secret " + secret
		}},
		{name: "generated keys", signs: func(t *testing.T, dir string) (string, string) { return "", "" }},
		{name: "one key file, one realm", realm: "realm shared", same: true, signs: func(t *testing.T, dir string) (string, string) {
			f := writeSigningKey(t, filepath.Join(dir, "sign.pem"))
			return "key_file " + f, "key_file " + f
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			logFile := filepath.Join(dir, "caddy.log")
			a, b := c.signs(t, dir)
			site := func(sign string) string {
				return fmt.Sprintf("session_jwks /jwks\n\tsession {\n\t\tstore bolt {db:shared}\n\t\t%s\n\t\tsign {\n\t\t\t%s\n\t\t}\n\t}\n\treverse_proxy {up}", c.realm, sign)
			}
			m := newMultiSite(t, "a", "b")
			m.loadSites(fmt.Sprintf("log {\n\t\toutput file %s\n\t\tformat json\n\t\tlevel INFO\n\t}", logFile),
				[2]string{"a", site(a)}, [2]string{"b", site(b)})
			text := waitForText(t, logFile, `"server running"`)
			if got := strings.Contains(text, warning); got != c.warn {
				t.Errorf("warned %v, want %v:\n%s", got, c.warn, text)
			}
			// What the warning tells of: a key both sites sign with.
			kids := func(set jose.JSONWebKeySet) []string {
				var out []string
				for _, k := range set.Keys {
					out = append(out, k.KeyID)
				}
				return out
			}
			setA := kids(keySetAt(t, fmt.Sprintf("127.0.0.1:%d", m.ports["a"])))
			setB := kids(keySetAt(t, fmt.Sprintf("127.0.0.1:%d", m.ports["b"])))
			if got := setA[0] == setB[0]; got != c.same {
				t.Errorf("sites a and b sign with one key: %v, want %v (a publishes %v, b %v)", got, c.same, setA, setB)
			}
			if !c.warn && c.realm == "" && slices.ContainsFunc(setA, func(k string) bool { return slices.Contains(setB, k) }) {
				t.Errorf("no warning, but two realms publish one key: a %v, b %v", setA, setB)
			}
		})
	}
}
