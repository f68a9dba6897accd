package transfer

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

var now = time.Date(2025, time.March, 14, 9, 26, 53, 589793238, time.FixedZone("UTC+1", 3600))

func entry() store.Entry {
	t := session.Timeouts{Idle: 30 * time.Minute, Absolute: 12 * time.Hour}
	rec := t.NewRecord(now)
	rec.Values = map[string]string{"user": "alice", "cart": "apple"}
	rec.Realm = "example.com@:443"
	rec.Remembered = true
	rec.Flash = map[string]string{"notice": "Saved."}
	rec.UserAgent = "Mozilla/5.0"
	rec.ClientNet = "198.51.100.0/24"
	return store.Entry{Hash: session.HashID("id"), Record: rec, Identity: "user"}
}

func TestRoundTrip(t *testing.T) {
	e := entry()
	var buf bytes.Buffer
	if err := Write(&buf, e); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) || bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("Write wrote %q, want one line", buf.String())
	}
	if !strings.Contains(buf.String(), `"v":1,`) {
		t.Fatalf("the line %s carries no version", buf.String())
	}
	got, err := NewReader(&buf, 1).Next()
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != e.Hash || got.Identity != e.Identity || !store.SameRecord(got.Record, e.Record) {
		t.Fatalf("read back %+v %+v, want %+v %+v", got, got.Record, e, e.Record)
	}
	// A session without flash values reads back with none, as stores give
	// them.
	e.Record.Flash = nil
	buf.Reset()
	_ = Write(&buf, e)
	if got, _ := NewReader(&buf, 1).Next(); got.Record.Flash != nil {
		t.Fatalf("no flash values read back as %#v", got.Record.Flash)
	}
}

func TestReaderLines(t *testing.T) {
	var one bytes.Buffer
	_ = Write(&one, entry())
	line := strings.TrimSuffix(one.String(), "\n")
	// Lines 10 to 14: a session, two empty lines, a session ending in
	// CRLF, and a bad line with no newline at the end.
	buf := bytes.NewBufferString(line + "\n\r\n\n" + line + "\r\n" + `{"v":1}`)
	r := NewReader(buf, 10)
	for i, want := range []int{10, 13} {
		if _, err := r.Next(); err != nil || r.Line() != want {
			t.Fatalf("session %d: %v at line %d, want line %d", i, err, r.Line(), want)
		}
	}
	_, err := r.Next()
	var le *LineError
	if !errors.As(err, &le) || le.Line != 14 {
		t.Fatalf("the last line = %v, want an error on line 14", err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last line: %v, want EOF", err)
	}
}

func TestMalformed(t *testing.T) {
	var good bytes.Buffer
	_ = Write(&good, entry())
	line := strings.TrimSpace(good.String())
	tests := []struct {
		name, line, want string
	}{
		{"not JSON", "hello", "not a session"},
		{"an array", "[1]", "not a session"},
		{"two objects", line + line, "nothing after it"},
		{"unknown field", strings.Replace(line, `"v":1,`, `"v":1,"compressed":"x",`, 1), `unknown field "compressed"`},
		{"field in another case", strings.Replace(line, `"values"`, `"Values"`, 1), "case-sensitive"},
		{"field twice", strings.Replace(line, `"v":1,`, `"v":1,"hash":"00",`, 1), "given twice"},
		{"no version", strings.Replace(line, `"v":1,`, ``, 1), `"v" is missing`},
		{"newer version", strings.Replace(line, `"v":1,`, `"v":4,`, 1), "newer format"},
		{"version 2 not sealed", strings.Replace(line, `"v":1,`, `"v":2,`, 1), `a sealed session is a line of version 2`},
		{"sealed in version 1", strings.Replace(line, `"v":1,`, `"v":1,"sealed":true,`, 1), `a sealed session is a line of version 2`},
		{"sealed value not base64", strings.Replace(strings.Replace(line, `"v":1,`, `"v":2,"sealed":true,`, 1), `"user":"alice"`, `"user":"%%%"`, 1), `not base64`},
		{"bad hash", strings.Replace(line, `"hash":"`, `"hash":"zz`, 1), `"hash"`},
		{"no values", `{"v":1,"hash":"` + session.HashID("x").String() + `"}`, `"values" is missing`},
		{"value not a string", strings.Replace(line, `"cart":"apple"`, `"cart":1`, 1), "not a session"},
		{"bad time", strings.Replace(line, `"created":"`, `"created":"yesterday`, 1), "not a session"},
		{"bad successor", strings.Replace(line, `"v":1,`, `"v":1,"successor":"x",`, 1), `"successor"`},
		{"a key twice", strings.Replace(line, `"cart":"apple"`, `"cart":"apple","cart":"pear"`, 1), `"values": "cart" is given twice`},
		{"a flash key twice", strings.Replace(line, `"flash":{"notice":"Saved."}`, `"flash":{"notice":"a","notice":"b"}`, 1), `"flash": "notice" is given twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReader(strings.NewReader("\n"+tc.line+"\n"), 1).Next()
			var le *LineError
			if !errors.As(err, &le) || le.Line != 2 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reading %s: %v, want an error on line 2 saying %q", tc.line, err, tc.want)
			}
		})
	}
}

func TestLineTooLong(t *testing.T) {
	long := `{"v":1,"values":{"a":"` + strings.Repeat("x", MaxLine) + `"}}` + "\n"
	_, err := NewReader(strings.NewReader(long), 1).Next()
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("a line of %d bytes: %v", len(long), err)
	}
}
