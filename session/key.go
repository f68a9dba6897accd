package session

import "fmt"

// reservedKeyPrefixes are the beginnings of the names the plugin keeps for
// what it forwards about a session rather than from it: the request headers
// <prefix>Meta-* and <prefix>Flash-*, and the placeholders
// {http.session_meta.*}. A key "meta-created" would be forwarded as
// X-Session-Meta-Created, so no key may begin with them, in either spelling
// ('_' and '-' reach the app as one header).
var reservedKeyPrefixes = [...]string{"meta", "flash"}

// keyVerdict is what is wrong with a key, if anything.
type keyVerdict uint8

const (
	keyOK keyVerdict = iota
	keyMalformed
	keyReserved
)

// judgeKey checks k without allocating: the command parser calls it for
// every key of every response.
func judgeKey(k string) keyVerdict {
	if len(k) == 0 || len(k) > 64 {
		return keyMalformed
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return keyMalformed
		}
	}
	for _, r := range reservedKeyPrefixes {
		if len(k) > len(r) && (k[len(r)] == '-' || k[len(r)] == '_') && asciiEqualFold(k[:len(r)], r) {
			return keyReserved
		}
	}
	return keyOK
}

// ValidKey reports whether k can be a session key: 1 to 64 of a-z 0-9 - _
// (upper case is accepted and means the same key), not beginning with a
// reserved prefix (meta-, flash-, or with '_'). CheckKey says why not.
func ValidKey(k string) bool { return judgeKey(k) == keyOK }

// CheckKey returns nil if k can be a session key, else an error that says
// what to change. It is the one wording of the rule, for the config, the
// matcher, the admin API and the upstream's commands alike.
func CheckKey(k string) error {
	switch judgeKey(k) {
	case keyMalformed:
		return fmt.Errorf("%q is not a session key: use 1 to 64 of a-z 0-9 - _, not beginning with meta- or flash-", k)
	case keyReserved:
		return fmt.Errorf("%q is not a session key: keys beginning with meta- or flash- (or meta_, flash_) are reserved for what the plugin forwards about a session; rename the key", k)
	}
	return nil
}

// asciiEqualFold is strings.EqualFold for ASCII only: Unicode folding
// would match U+212A KELVIN SIGN to 'k', and no header byte is Unicode.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerByte(a[i]) != lowerByte(b[i]) {
			return false
		}
	}
	return true
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// sameKey reports whether a and b are one key once '_' is read as '-', as
// a CGI app reads them; a and b are lowercase.
func sameKey(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if x != y && !(x == '_' && y == '-' || x == '-' && y == '_') {
			return false
		}
	}
	return true
}

// LookupKey returns the key of values that is key in either spelling of
// '_' and '-', and its value: the config names a key one way, the app may
// have set it the other way. key is lowercase.
func LookupKey(values map[string]string, key string) (held, value string, ok bool) {
	if v, ok := values[key]; ok {
		return key, v, true
	}
	if k, found := foldedTwin(values, key, nil); found {
		return k, values[k], true
	}
	return "", "", false
}
