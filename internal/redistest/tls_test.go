package redistest

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStartTLS checks that the server answers over TLS a client that
// trusts the test CA, and refuses one that does not, one that speaks plain
// RESP, and, when it requires client certificates, one without a
// certificate the CA signed.
func TestStartTLS(t *testing.T) {
	for _, required := range []bool{false, true} {
		name := map[bool]string{false: "no client cert", true: "client cert required"}[required]
		t.Run(name, func(t *testing.T) {
			s := StartTLS(t, TLSOptions{RequireClientCert: required})
			if reply, err := s.Do("PING"); err != nil || reply != "+PONG" {
				t.Fatalf("Do PING: %q, %v", reply, err)
			}
			if want := "rediss://" + s.Addr(); s.URL() != want {
				t.Errorf("URL = %q, want %q", s.URL(), want)
			}

			// A certificate signed by another CA.
			other := newCA(t)
			dir := t.TempDir()
			other.issueClient(t, filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
			strange, err := tls.LoadX509KeyPair(filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"))
			if err != nil {
				t.Fatal(err)
			}

			withCert := s.ClientTLSConfig()
			noCert := s.ClientTLSConfig()
			noCert.Certificates = nil
			wrongCert := s.ClientTLSConfig()
			wrongCert.Certificates = []tls.Certificate{strange}
			noCA := s.ClientTLSConfig()
			noCA.RootCAs = nil // the system's roots, which lack the test CA
			tests := []struct {
				name string
				conf *tls.Config // nil for plain TCP
				ok   bool
			}{
				{"the CA and a client certificate", withCert, true},
				{"the CA and no client certificate", noCert, !required},
				{"the CA and a certificate of another CA", wrongCert, !required},
				{"without the CA", noCA, false},
				{"plain TCP", nil, false},
			}
			for _, tc := range tests {
				err := ping(s.Addr(), tc.conf)
				if tc.ok && err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
				if !tc.ok && err == nil {
					t.Errorf("%s: the server answered PING", tc.name)
				}
				if !tc.ok && err != nil {
					t.Logf("%s: refused: %v", tc.name, err)
				}
				if tc.conf == noCA && err != nil && !strings.Contains(err.Error(), "certificate signed by unknown authority") {
					t.Errorf("%s: %v, want an unknown authority", tc.name, err)
				}
			}
		})
	}
}

// ping sends PING on a new connection, over TLS with conf unless it is nil,
// and returns an error unless the answer is PONG.
func ping(addr string, conf *tls.Config) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if conf != nil {
		conf = conf.Clone()
		conf.ServerName = "127.0.0.1"
		tc := tls.Client(c, conf)
		if err := tc.Handshake(); err != nil {
			return err
		}
		c = tc
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("answer %q", line)
	}
	return nil
}

func TestNoTLS(t *testing.T) {
	tests := []struct {
		name, output string
		noTLS        bool
	}{
		{"7.0 without TLS", "*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\nReading the configuration file, at line 2\n>>> 'tls-port \"0\"'\nBad directive or wrong number of arguments\n", true},
		{"7.2 without TLS", "# Failed finding connection listener of tls\n", true},
		{"with TLS", "# Configuration loaded\n# Configured to not listen anywhere, exiting.\n", false},
		{"another bad directive", ">>> 'tls-auth-clients \"maybe\"'\nargument(s) must be one of the following: yes, no, optional\n>>> 'bogus'\nBad directive or wrong number of arguments\n", false},
	}
	for _, tc := range tests {
		if got := noTLS(tc.output); got != tc.noTLS {
			t.Errorf("%s: noTLS = %v, want %v", tc.name, got, tc.noTLS)
		}
	}
	for _, require := range []string{"", "1"} {
		t.Run("require="+require, func(t *testing.T) {
			t.Setenv(RequireEnv, require)
			r := &recorder{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				skipNoTLS(r, "/usr/bin/redis-server", "output")
			}()
			<-done
			msg, other := r.skipped, r.failed
			if require == "1" {
				msg, other = other, msg
			}
			if !strings.Contains(msg, "built without TLS") || other != "" {
				t.Fatalf("skipped %q, failed %q", r.skipped, r.failed)
			}
		})
	}
}
