package session

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// TestCandidatesReadOnlyTheCookieOfTheName: a cookie is a candidate only
// if its name is the session cookie's byte for byte, after the Cookie
// header's own white space (SP, HTAB) is cut. A name that only starts or
// ends with other white space, which a browser stores as a name of its
// own and checks no __Host- or __Secure- prefix on, is another cookie: a
// sibling subdomain can set it, and read as the session cookie it would
// defeat the prefix (integration_test: TestHostPrefixCookieNotTossedUnderAnotherName).
func TestCandidatesReadOnlyTheCookieOfTheName(t *testing.T) {
	id1, id2 := strings.Repeat("A", IDLength), strings.Repeat("b", IDLength)
	for _, name := range []string{"sid", "__Host-sid", "__Secure-sid"} {
		ck := &Cookie{Name: name}
		for _, tc := range []struct {
			desc   string
			header []string
			want   []string
		}{
			{"the cookie alone", []string{name + "=" + id1}, []string{id1}},
			{"after another, with a space", []string{"a=1; " + name + "=" + id1}, []string{id1}},
			{"after another, without a space", []string{"a=1;" + name + "=" + id1}, []string{id1}},
			{"with tabs and spaces around it", []string{"a=1;\t " + name + "=" + id1 + " \t; b=2"}, []string{id1}},
			{"quoted", []string{name + `="` + id1 + `"`}, []string{id1}},
			{"U+2000 before the name", []string{"\u2000" + name + "=" + id2 + "; " + name + "=" + id1}, []string{id1}},
			{"U+00A0 before the name", []string{"\u00a0" + name + "=" + id2}, nil},
			{"U+0085 before the name", []string{"a=1; \u0085" + name + "=" + id2}, nil},
			{"U+3000 before the name", []string{"\u3000" + name + "=" + id2, name + "=" + id1}, []string{id1}},
			{"U+FEFF before the name", []string{"\ufeff" + name + "=" + id2}, nil},
			{"vertical tab before the name", []string{"\v" + name + "=" + id2}, nil},
			{"form feed before the name", []string{"\f" + name + "=" + id2}, nil},
			{"U+2000 after the name", []string{name + "\u2000=" + id2}, nil},
			{"a space inside the name", []string{name + " =" + id2}, nil},
			{"U+2000 after the value", []string{name + "=" + id2 + "\u2000"}, nil},
		} {
			t.Run(name+"/"+tc.desc, func(t *testing.T) {
				r := &http.Request{Header: http.Header{"Cookie": tc.header}}
				if got := ck.Candidates(r); !slices.Equal(got, tc.want) {
					t.Fatalf("candidates of %q: %q, want %q", tc.header, got, tc.want)
				}
				// Strip takes more than it reads, never less: nothing
				// read as the session cookie reaches the app.
				ck.Strip(r.Header)
				if got := ck.Candidates(r); len(got) != 0 {
					t.Fatalf("after Strip, candidates %q remain in %q", got, r.Header["Cookie"])
				}
			})
		}
	}
}
