// Package transfer is the file format of `caddy session export` and
// `caddy session import`: one session per line, as a JSON object that
// carries every field of the record as the store keeps it, so that an
// import puts back exactly what an export took.
//
// A line looks like this (one line in the file, broken here):
//
//	{"v":1,"hash":"9f86d0…","realm":"example.com@:443",
//	 "created":"2025-03-14T09:16:53.589793238Z","last_seen":"…",
//	 "idle_deadline":"…","absolute_deadline":"…","remembered":true,
//	 "flash":{"notice":"Saved."},"user_agent":"Mozilla/5.0 …",
//	 "identity":"user","values":{"cart":"apple","user":"alice"}}
//
// "v" is the version of the line format. A reader refuses a line of a
// version it does not know rather than drop what it cannot read: a
// later version may carry sessions in a sealed form, which this one
// would import as empty. A line is written in the lowest version that
// carries it: 1 for a plain session, VersionSealed for one sealed at rest
// (seal.go), and VersionBytes for one with a string that is not UTF-8
// (bytes.go), such as {"cart":{"base64":"Y2Fm6Q=="}} for "caf\xe9".
package transfer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"github.com/caddy-session/caddy-session/internal/strictjson"
	"github.com/caddy-session/caddy-session/session"
	"github.com/caddy-session/caddy-session/store"
)

// Version is the version of the line format this package writes and
// reads.
const Version = 1

// MaxLine bounds the bytes of one line: far more than a session within
// any sensible limits takes, and a bound on what one line makes a reader
// hold.
const MaxLine = 1 << 20

// Line is one session in the file. Times are RFC 3339 with nanoseconds,
// in UTC.
type Line struct {
	V    int    `json:"v"`
	Hash string `json:"hash"`
	// Realm is the session's realm, "" for one stored before realms.
	Realm            Bytes     `json:"realm"`
	Created          time.Time `json:"created"`
	LastSeen         time.Time `json:"last_seen"`
	IdleDeadline     time.Time `json:"idle_deadline"`
	AbsoluteDeadline time.Time `json:"absolute_deadline"`
	Remembered       bool      `json:"remembered"`
	// Flash holds the flash values not yet handed to the app.
	Flash     map[string]Bytes `json:"flash,omitempty"`
	UserAgent Bytes            `json:"user_agent,omitempty"`
	// ClientNet is the network the session is bound to (bind ip).
	ClientNet Bytes `json:"client_net,omitempty"`
	// Identity is the identity key the session is indexed under, for
	// revocation by user and the list of devices; "" for none.
	Identity Bytes            `json:"identity,omitempty"`
	Values   map[string]Bytes `json:"values"`
	// Successor is set on a forward record only, which no export writes
	// and every import refuses: it is read so that the refusal says so.
	Successor string `json:"successor,omitempty"`
	// Sealed marks a session whose values are sealed at rest (version
	// VersionSealed; see seal.go), and IdentityTag is what it is indexed
	// under then.
	Sealed      bool  `json:"sealed,omitempty"`
	IdentityTag Bytes `json:"identity_tag,omitempty"`
}

// lineFields are the field names of Line, spelled exactly.
var lineFields = func() []string {
	var names []string
	for f := range reflect.TypeFor[Line]().Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	return names
}()

// Of returns the line of e.
func Of(e store.Entry) Line {
	r := e.Record
	l := Line{
		V:                Version,
		Hash:             e.Hash.String(),
		Realm:            Bytes(r.Realm),
		Created:          r.Created.UTC(),
		LastSeen:         r.LastSeen.UTC(),
		IdleDeadline:     r.IdleDeadline.UTC(),
		AbsoluteDeadline: r.AbsoluteDeadline.UTC(),
		Remembered:       r.Remembered,
		Flash:            toBytes(r.Flash),
		UserAgent:        Bytes(r.UserAgent),
		ClientNet:        Bytes(r.ClientNet),
		Identity:         Bytes(e.Identity),
		Values:           toBytes(r.Values),
	}
	if l.Values == nil {
		l.Values = map[string]Bytes{}
	}
	if r.Successor != nil {
		l.Successor = r.Successor.String()
	}
	if r.Sealed {
		sealedLine(&l, r)
	}
	if l.notUTF8() != "" {
		l.V = VersionBytes
	}
	return l
}

// Entry returns the session l describes, or an error that says what is
// wrong with it as a line of the file. It checks the form only; whether
// the session may be imported is store.CheckImport's to say.
func (l Line) Entry() (store.Entry, error) {
	if err := l.checkVersion(); err != nil {
		return store.Entry{}, err
	}
	if l.Sealed {
		return l.sealedEntry()
	}
	return l.plainEntry()
}

// checkVersion checks that l's version is one this package reads, and
// that l is of it: sealed in a line of VersionSealed, a string that is
// not UTF-8 in a line of VersionBytes.
func (l Line) checkVersion() error {
	switch {
	case l.V == 0:
		return errors.New(`"v" is missing: this is not a line of caddy session export`)
	case l.V > VersionBytes:
		return fmt.Errorf(`"v" is %d, a newer format than this Caddy reads (%d): import it with the caddy-session that exported it, or a newer one`, l.V, VersionBytes)
	case l.V < Version:
		return fmt.Errorf(`"v" is %d: this Caddy reads versions %d to %d`, l.V, Version, VersionBytes)
	case l.V == VersionBytes:
		return nil
	case l.V == Version && l.Sealed, l.V == VersionSealed && !l.Sealed:
		return fmt.Errorf(`"v" %d with "sealed" %v: a sealed session is a line of version %d with "sealed": true`, l.V, l.Sealed, VersionSealed)
	}
	if where := l.notUTF8(); where != "" {
		return fmt.Errorf(`%s is {"base64": "..."}, bytes that are not UTF-8, which only a line of version %d carries: "v" is %d; make it %d`, where, VersionBytes, l.V, VersionBytes)
	}
	return nil
}

// plainEntry is Entry for a session that is not sealed, of a line whose
// version checkVersion accepted.
func (l Line) plainEntry() (store.Entry, error) {
	if l.Values == nil {
		return store.Entry{}, errors.New(`"values" is missing: give the session's keys, {} if it has none`)
	}
	h, err := session.ParseHash(l.Hash)
	if err != nil {
		return store.Entry{}, fmt.Errorf(`"hash" %q: %v`, l.Hash, err)
	}
	rec := &session.Record{
		Created:          l.Created,
		LastSeen:         l.LastSeen,
		IdleDeadline:     l.IdleDeadline,
		AbsoluteDeadline: l.AbsoluteDeadline,
		Values:           fromBytes(l.Values),
		Realm:            string(l.Realm),
		Remembered:       l.Remembered,
		UserAgent:        string(l.UserAgent),
		ClientNet:        string(l.ClientNet),
	}
	if len(l.Flash) > 0 {
		rec.Flash = fromBytes(l.Flash)
	}
	if l.Successor != "" {
		next, err := session.ParseHash(l.Successor)
		if err != nil {
			return store.Entry{}, fmt.Errorf(`"successor" %q: %v`, l.Successor, err)
		}
		rec.Successor = &next
	}
	return store.Entry{Hash: h, Record: rec, Identity: string(l.Identity)}, nil
}

// Write writes e to w as one line.
func Write(w io.Writer, e store.Entry) error {
	b, err := json.Marshal(Of(e))
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// LineError is a line of the file that cannot be read.
type LineError struct {
	// Line is its number, counted from the reader's first line.
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Reader reads the sessions of a file, line by line. Empty lines are
// skipped.
type Reader struct {
	r    *bufio.Reader
	line int
}

// NewReader reads from r; first is the number of r's first line, for
// errors (1 for a whole file).
func NewReader(r io.Reader, first int) *Reader {
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), line: first - 1}
}

// Line returns the number of the line Next read last.
func (r *Reader) Line() int { return r.line }

// Next returns the next session, io.EOF after the last, or a *LineError.
func (r *Reader) Next() (store.Entry, error) {
	for {
		raw, err := r.readLine()
		if err != nil {
			return store.Entry{}, err
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		e, err := Parse(raw)
		if err != nil {
			return store.Entry{}, &LineError{Line: r.line, Err: err}
		}
		return e, nil
	}
}

// readLine returns the next line without its end, io.EOF after the last.
func (r *Reader) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := r.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > MaxLine+1 {
			r.line++
			return nil, &LineError{Line: r.line, Err: fmt.Errorf("it is longer than %d bytes", MaxLine)}
		}
		switch {
		case err == nil:
			r.line++
			return bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte{'\n'}), []byte{'\r'}), nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(buf) > 0:
			r.line++
			return buf, nil
		default:
			return nil, err
		}
	}
}

// checkUniqueKeys refuses a line whose values or flash values give a key
// twice: encoding/json would plant the last, where a reader of the file
// may have seen the first.
func checkUniqueKeys(raw []byte) error {
	var maps struct {
		Values json.RawMessage `json:"values"`
		Flash  json.RawMessage `json:"flash"`
	}
	if json.Unmarshal(raw, &maps) != nil {
		return nil // the decoder says what is wrong
	}
	for _, m := range []struct {
		field string
		raw   json.RawMessage
	}{{"values", maps.Values}, {"flash", maps.Flash}} {
		if err := strictjson.CheckUniqueNames(m.raw); err != nil {
			return fmt.Errorf("%q: %v", m.field, err)
		}
	}
	return nil
}

// Parse reads one line. Field names are case-sensitive and given once
// each, and unknown ones are refused: encoding/json would match "Values"
// to "values" and keep the last of two, and an import must plant what the
// file says, read one way only. So is text that encoding/json would read
// as other characters than it spells (checkText).
func Parse(raw []byte) (store.Entry, error) {
	if err := checkText(raw); err != nil {
		return store.Entry{}, err
	}
	if err := strictjson.CheckFieldNames(raw, lineFields, func(name string) error {
		return fmt.Errorf("unknown field %q: this Caddy reads versions %d to %d of the format", name, Version, VersionBytes)
	}); err != nil {
		return store.Entry{}, err
	}
	if err := checkUniqueKeys(raw); err != nil {
		return store.Entry{}, err
	}
	var l Line
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		var be *bytesError
		if errors.As(err, &be) {
			return store.Entry{}, fmt.Errorf("not a session as caddy session export writes it: %s: %v", fieldOf(raw, be.raw), be)
		}
		return store.Entry{}, fmt.Errorf("not a session as caddy session export writes it: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return store.Entry{}, errors.New("one JSON object per line, and nothing after it")
	}
	return l.Entry()
}
