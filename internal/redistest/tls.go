package redistest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TLSOptions are the options of StartTLS.
type TLSOptions struct {
	// RequireClientCert makes the server refuse clients without a
	// certificate the test CA signed (tls-auth-clients yes). Otherwise it
	// asks for none (tls-auth-clients no).
	RequireClientCert bool
	// Extra are further redis-server options.
	Extra []string
}

// TLSServer is a redis-server that speaks only TLS, on the port of its
// Server (which has no plain port), with certificates from a CA made for
// the test. Do speaks TLS to it with ClientTLSConfig.
type TLSServer struct {
	*Server
	// CAFile is the test CA's certificate, in PEM; CAPool holds it.
	CAFile string
	CAPool *x509.CertPool
	// CertFile and KeyFile are the server's certificate, for 127.0.0.1,
	// ::1 and localhost, and its key, in PEM.
	CertFile, KeyFile string
	// ClientCertFile and ClientKeyFile are a client certificate the CA
	// signed and its key, in PEM, for a server with RequireClientCert.
	ClientCertFile, ClientKeyFile string

	clientCert tls.Certificate
}

// StartTLS starts a redis-server that listens with TLS only, on a free
// loopback port (--port 0 --tls-port <port>), and stops it when the test
// ends. Its CA, certificates and keys are made for the test (ECDSA P-256)
// in a temporary directory.
//
// A redis-server built without TLS skips the test with a message that says
// so, or fails it when CADDY_SESSION_REQUIRE_REDIS is 1.
func StartTLS(t testing.TB, opts TLSOptions) *TLSServer {
	t.Helper()
	bin := lookPath(t)
	if out, ok := tlsProbe(t, bin); !ok {
		skipNoTLS(t, bin, out)
	}
	dir := t.TempDir()
	ca := newCA(t)
	ts := &TLSServer{
		CAFile:         filepath.Join(dir, "ca.crt"),
		CAPool:         x509.NewCertPool(),
		CertFile:       filepath.Join(dir, "server.crt"),
		KeyFile:        filepath.Join(dir, "server.key"),
		ClientCertFile: filepath.Join(dir, "client.crt"),
		ClientKeyFile:  filepath.Join(dir, "client.key"),
	}
	ts.CAPool.AddCert(ca.cert)
	writePEM(t, ts.CAFile, "CERTIFICATE", ca.cert.Raw)
	ca.issue(t, ts.CertFile, ts.KeyFile, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redistest server"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:    []string{"localhost"},
		// Client auth too, for a server that uses its certificate to
		// replicate or to join a cluster over TLS.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	ca.issueClient(t, ts.ClientCertFile, ts.ClientKeyFile)
	var err error
	if ts.clientCert, err = tls.LoadX509KeyPair(ts.ClientCertFile, ts.ClientKeyFile); err != nil {
		t.Fatal(err)
	}
	authClients := "no"
	if opts.RequireClientCert {
		authClients = "yes"
	}
	s, err := launch(t, spec{
		label: "redis-server (TLS)",
		tls:   ts.ClientTLSConfig(),
		extra: append([]string{
			"--tls-cert-file", ts.CertFile,
			"--tls-key-file", ts.KeyFile,
			"--tls-ca-cert-file", ts.CAFile,
			"--tls-auth-clients", authClients,
		}, opts.Extra...),
	})
	if err != nil {
		if noTLS(s.output()) {
			skipNoTLS(t, bin, s.output())
		}
		t.Fatalf("starting redis-server with TLS: %v\n%s", err, s.output())
	}
	ts.Server = s
	return ts
}

// ClientTLSConfig returns a new TLS configuration for clients of the
// server: it trusts the test CA and offers the client certificate. Its
// ServerName is empty, so tls.Dial and go-redis take it from the address
// (the certificate is for 127.0.0.1, ::1 and localhost).
func (ts *TLSServer) ClientTLSConfig() *tls.Config {
	return &tls.Config{
		RootCAs:      ts.CAPool,
		Certificates: []tls.Certificate{ts.clientCert},
		MinVersion:   tls.VersionTLS12,
	}
}

// tlsProbe asks redis-server whether it knows the TLS options: one built
// without TLS refuses --tls-port as a bad directive, one with TLS gets past
// the options and stops because it is told to listen nowhere. The output is
// returned for a skip message.
func tlsProbe(t testing.TB, bin string) (output string, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin,
		"--port", "0", "--tls-port", "0",
		"--dir", t.TempDir(), "--save", "", "--appendonly", "no", "--logfile", "")
	cmd.WaitDelay = time.Second
	// The exit status says nothing: it is 1 both ways.
	out, _ := cmd.CombinedOutput()
	return string(out), !noTLS(string(out))
}

// noTLS tells from redis-server's output whether it was built without TLS.
// Redis up to 7.0 has no TLS options then; 7.2 has them but no TLS
// connection type to listen with.
func noTLS(output string) bool {
	return strings.Contains(output, "Bad directive") && strings.Contains(output, "'tls-port") ||
		strings.Contains(output, "connection listener of tls")
}

// skipNoTLS ends a test that needs TLS from a redis-server without it: a
// skip, or a failure when RequireEnv is set.
func skipNoTLS(t testing.TB, bin, output string) {
	t.Helper()
	msg := bin + " was built without TLS: install a redis-server built with BUILD_TLS=yes (Debian's and Ubuntu's redis-server packages are) to run the Redis TLS tests"
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s (%s=1 makes this a failure)\n%s", msg, RequireEnv, output)
	}
	t.Skip(msg)
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(t testing.TB) *testCA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "redistest CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert, key}
}

// issue signs a certificate from tmpl, which gives its names and uses, for
// a new key, and writes both to certFile and keyFile in PEM.
func (ca *testCA) issue(t testing.TB, certFile, keyFile string, tmpl *x509.Certificate) {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = serial(t)
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
}

// issueClient issues a client certificate.
func (ca *testCA) issueClient(t testing.TB, certFile, keyFile string) {
	t.Helper()
	ca.issue(t, certFile, keyFile, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "redistest client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
