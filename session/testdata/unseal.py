# Opens the sealed fields of a session with its ID, as an upstream given
# the session cookie (forward_cookie) would: the README's example, run by
# TestSealOpensElsewhere as an implementation independent of the plugin's.
# Reads {"id": ..., "fields": {name: base64 of the sealed bytes}} on stdin
# and prints {name: value}.
import base64, hashlib, hmac, json, sys
from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt

def seal_key(session_id):
    # HKDF-SHA256 (RFC 5869), 32 bytes: extract, then one block of expand.
    prk = hmac.new(b"caddy-session seal", session_id.encode(), hashlib.sha256).digest()
    return hmac.new(prk, b"values v1\x01", hashlib.sha256).digest()

def unseal(session_id, field, sealed):
    # field: "v:<key>" for a value, "f:<key>" for a flash value,
    # "m:user-agent" for the User-Agent.
    if sealed[0] != 1:
        raise ValueError("not a sealed field of version 1")
    nonce, box = sealed[1:25], sealed[25:]
    ad = hashlib.sha256(session_id.encode()).digest() + field.encode()
    return crypto_aead_xchacha20poly1305_ietf_decrypt(box, ad, nonce, seal_key(session_id)).decode()

req = json.load(sys.stdin)
print(json.dumps({f: unseal(req["id"], f, base64.b64decode(v)) for f, v in req["fields"].items()}))
