// Package strictjson checks the field names of a JSON object before
// encoding/json decodes it. encoding/json matches names case-insensitively
// and keeps the last of duplicates, so {"value": "alice", "Value": "bob"}
// would act on bob while a reader of the request, or a proxy that checked
// it, saw alice.
package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// CheckFieldNames refuses a JSON object whose field names are not spelled
// exactly as one of known, or that gives a field twice; unknown words the
// error for a name that is none of known, in any case. A value that is not
// an object is left to the decoder, which says so.
func CheckFieldNames(raw []byte, known []string, unknown func(name string) error) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := make(map[string]bool, len(known))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		if !slices.Contains(known, name) {
			for _, k := range known {
				if strings.EqualFold(k, name) {
					return fmt.Errorf("field %q is not %q: field names are case-sensitive: write %q", name, k, k)
				}
			}
			return unknown(name)
		}
		if seen[name] {
			return fmt.Errorf("field %q is given twice: give each field once", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}

// CheckUniqueNames refuses a JSON object that gives a name twice, as
// encoding/json would keep the last of them, for a map whose names are
// the caller's data rather than known fields. A value that is not an
// object is left to the decoder.
func CheckUniqueNames(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil
		}
		name, _ := tok.(string)
		if seen[name] {
			return fmt.Errorf("%q is given twice: give each once", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil
		}
	}
	return nil
}
