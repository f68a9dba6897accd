package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestBrowser loads a page, submits its form by a click, and reads the
// page the form led to, with the statuses of both.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		switch r.URL.Path {
		case "/":
			fmt.Fprint(w, `<form method="post" action="/sent"><input name="word" value="hello"><button id="go">go</button></form>`)
		case "/sent":
			r.ParseForm()
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `<p id="out">%s by %s</p>`, r.PostForm.Get("word"), r.Method)
		case "/forbidden":
			w.WriteHeader(http.StatusForbidden) // no body: chromium shows its own error page
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	b := Start(t)
	if status := b.Navigate(srv.URL + "/"); status != http.StatusOK {
		t.Fatalf("the page loaded with %d", status)
	}
	if status := b.Click("#go"); status != http.StatusAccepted {
		t.Fatalf("the form's response came with %d, want 202", status)
	}
	if got := b.Text("#out"); got != "hello by POST" {
		t.Fatalf("the page after the form says %q", got)
	}
	if status := b.Navigate(srv.URL + "/forbidden"); status != http.StatusForbidden {
		t.Fatalf("an empty 403 loaded with %d", status)
	}
	if status := b.Navigate(srv.URL + "/missing"); status != http.StatusNotFound {
		t.Fatalf("a missing page loaded with %d, want 404", status)
	}
}
