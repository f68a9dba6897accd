package integration_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// curlPath is the curl binary, or a skip (a failure under CI=true) where
// there is none.
func curlPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("curl is missing, and CI needs it: %v", err)
		}
		t.Skipf("curl is missing (apt-get install curl): %v", err)
	}
	return path
}

// curl sends a request with the real curl and returns its status.
func curl(t *testing.T, bin string, args ...string) int {
	t.Helper()
	out, err := exec.Command(bin, append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("curl %q: %v: %s", args, err, out)
	}
	var status int
	if _, err := fmt.Sscan(string(out), &status); err != nil {
		t.Fatalf("curl %q printed %q, not a status", args, out)
	}
	return status
}

// TestCSRFWithCurl sends a POST with every combination of Sec-Fetch-Site,
// Origin and Referer, with curl, to a site without and then with strict,
// and checks each against the rule: Fetch Metadata decides if present,
// else Origin, else Referer, else strict. Then the token, sent by curl
// in the header, a form and a multipart form.
func TestCSRFWithCurl(t *testing.T) {
	bin := curlPath(t)
	s, app := newCSRFSite(t, "", "", "csrf")
	self := s.self()
	fetchSites := []string{"", "same-origin", "none", "same-site", "cross-site"}
	origins := []string{"", self, "https://evil.example", "null"}
	referers := []string{"", self + "/form", "https://evil.example/form"}
	want := func(fetchSite, origin, referer string, strict bool) bool {
		switch fetchSite {
		case "same-origin", "none":
			return true
		case "":
		default:
			return false
		}
		if origin != "" {
			return origin == self
		}
		if referer != "" {
			return strings.HasPrefix(referer, self+"/")
		}
		return !strict
	}
	for _, strict := range []bool{false, true} {
		if strict {
			s.options = "csrf {\n\t\t\tstrict\n\t\t}"
			s.load()
		}
		for _, fetchSite := range fetchSites {
			for _, origin := range origins {
				for _, referer := range referers {
					args := []string{"-X", "POST", "--data", "amount=10"}
					for name, v := range map[string]string{"Sec-Fetch-Site": fetchSite, "Origin": origin, "Referer": referer} {
						if v != "" {
							args = append(args, "-H", name+": "+v)
						}
					}
					before := app.unsafe.Load()
					got := curl(t, bin, append(args, s.url("/transfer"))...)
					ok := want(fetchSite, origin, referer, strict)
					wantStatus, wantCalls := http.StatusForbidden, int64(0)
					if ok {
						wantStatus, wantCalls = http.StatusOK, 1
					}
					if got != wantStatus || app.unsafe.Load()-before != wantCalls {
						t.Errorf("strict %v, Sec-Fetch-Site %q, Origin %q, Referer %q: status %d and %d calls of the app, want %d and %d",
							strict, fetchSite, origin, referer, got, app.unsafe.Load()-before, wantStatus, wantCalls)
					}
				}
			}
		}
	}

	s.options = "csrf {\n\t\t\ttoken\n\t\t}"
	s.load()
	v := login(t, s, "alice")
	tok := v.get("/").seen.Headers.Get("X-Session-Meta-Csrf-Token")
	cookie := []string{"-b", "sid=" + v.sid, "-H", "Sec-Fetch-Site: same-origin"}
	for _, tc := range []struct {
		name string
		args []string
		ok   bool
	}{
		{"the token in the header", []string{"-X", "POST", "-H", "X-CSRF-Token: " + tok}, true},
		{"the token in a form", []string{"--data", "amount=10&csrf_token=" + tok}, true},
		{"the token in a multipart form", []string{"-F", "amount=10", "-F", "csrf_token=" + tok, "-F", "note=@/dev/null"}, true},
		{"no token", []string{"--data", "amount=10"}, false},
		{"a wrong token in the header", []string{"-X", "POST", "-H", "X-CSRF-Token: " + tok + "x"}, false},
		{"a wrong token in a form", []string{"--data", "csrf_token=" + strings.Repeat("A", 43)}, false},
		{"the token, cross-site", []string{"-X", "POST", "-H", "X-CSRF-Token: " + tok, "-H", "Sec-Fetch-Site: cross-site"}, false},
	} {
		args := append(append(append([]string{}, cookie...), tc.args...), s.url("/transfer"))
		if tc.name == "the token, cross-site" {
			args = append(append([]string{"-b", "sid=" + v.sid}, tc.args...), s.url("/transfer"))
		}
		wantStatus := http.StatusForbidden
		if tc.ok {
			wantStatus = http.StatusOK
		}
		if got := curl(t, bin, args...); got != wantStatus {
			t.Errorf("%s: status %d, want %d", tc.name, got, wantStatus)
		}
	}
}
