package strictjson

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckFieldNames(t *testing.T) {
	known := []string{"key", "value"}
	unknown := func(name string) error { return errors.New("unknown " + name) }
	for _, tc := range []struct {
		raw, want string // want: a part of the error, "" for none
	}{
		{`{"key": "user", "value": "alice"}`, ""},
		{`{}`, ""},
		{`[1, 2]`, ""},   // not an object: the decoder says so
		{`{"key": `, ""}, // cut short: the decoder says so
		{`{"value": "alice", "Value": "bob"}`, `field "Value" is not "value": field names are case-sensitive`},
		{`{"value": "alice", "value": "bob"}`, `field "value" is given twice`},
		{`{"user": "alice"}`, "unknown user"},
		{`{"key": {"nested": [1, {"Value": 2}]}, "value": "x"}`, ""}, // only the top level is checked
	} {
		err := CheckFieldNames([]byte(tc.raw), known, unknown)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.raw, err, tc.want)
		}
	}
}

func TestCheckUniqueNames(t *testing.T) {
	tests := []struct {
		raw  string
		want string // "" for none
	}{
		{`{"cart":"apple","user":"alice"}`, ""},
		{`{"cart":"apple","Cart":"pear"}`, ""}, // two names: the caller's keys say which are valid
		{`{"cart":"apple","cart":"pear"}`, `"cart" is given twice`},
		{`{}`, ""},
		{`"not an object"`, ""},
	}
	for _, tc := range tests {
		err := CheckUniqueNames([]byte(tc.raw))
		if (err == nil) != (tc.want == "") || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckUniqueNames(%s) = %v, want %q", tc.raw, err, tc.want)
		}
	}
}
