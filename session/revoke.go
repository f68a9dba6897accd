package session

import "strings"

// commandRevoke is X-Session-Revoke: <short hash>, which ends another
// session of the same user (see Patch.Revoke).
const commandRevoke = "revoke"

// parseRevoke reads the one short hash that X-Session-Revoke takes, in any
// case, into the patch. Whether it names a session of the user is for the
// caller to find out, in the store.
func parseRevoke(patch *Patch, name string, values []string) *RuleError {
	if len(values) != 1 {
		return ruleError("conflict", "command header %q is sent %d times; revoke one session per response", name, len(values))
	}
	short := lowerKey(strings.Trim(values[0], " \t"))
	if !validShort(short) {
		return ruleError("invalid_value", "command header %q takes the short hash of one session, 16 hexadecimal digits, as X-Session-Meta-Devices lists them", name)
	}
	patch.Revoke = short
	return nil
}

// validShort reports whether s has the form of Hash.Short: 16 lowercase
// hexadecimal digits.
func validShort(s string) bool {
	if len(s) != 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
