"""The WSGI app that integration_test/appserver_wsgi_test.go serves with
gunicorn and with waitress, behind Caddy with the session handler.

It reports what it saw in the server's own representation, the environ,
and emits the session commands the test asks for in the one form WSGI has:
the list of (name, value) pairs given to start_response, duplicates and
all. It never cleans up a name or a value: the server's own handling of
them is what the tests look at.

Routes (every value of h is "Name:value", repeatable, in order; HEAD
answers as GET, with no body, and so does a status that has none):

  /healthz                 {"server": SERVER_SOFTWARE}
  /emit?h=...&status=303   start_response(status, [...h]); the body is
                           what the app saw (see seen)
  /stream?gate=g&h=...     the headers of h and a first chunk, then waits
                           until /release?gate=g (at most a minute), then
                           the last chunk
  /release?gate=g          opens the gate g: {"waiting": the streams
                           that were waiting for it}
  /hold?pipe=p&h=...       reads the named pipe p to its end before it
                           answers anything, then answers as /emit: a
                           request the test holds inside the app, its
                           header not yet written, while it does more
  /close?h=...             the headers of h beside Connection: close,
                           which PEP 3333 forbids an app: each server
                           does something of its own with it
"""

import http
import json
import threading
import urllib.parse

_gates = {}  # name -> [threading.Event, the streams waiting for it]
_gates_lock = threading.Lock()

# How long a stream waits for its release: a test that failed before
# releasing it must not keep a worker thread for ever.
GATE_TIMEOUT = 60


def _gate(name):
    with _gates_lock:
        return _gates.setdefault(name, [threading.Event(), 0])


def _wait(name):
    gate = _gate(name)
    with _gates_lock:
        gate[1] += 1
    gate[0].wait(GATE_TIMEOUT)
    with _gates_lock:
        gate[1] -= 1


def _release(name):
    gate = _gate(name)
    with _gates_lock:
        gate[0].set()
        return gate[1]


def seen(environ):
    """What the app saw: every HTTP_* key of the environ and its value,
    as the server made them, after reading the body to its end (a
    server could only add request trailers to the environ then)."""
    body = environ["wsgi.input"].read()
    return {
        "server": environ.get("SERVER_SOFTWARE", ""),
        "environ": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "body": len(body),
    }


def _headers(query):
    out = []
    for line in query.get("h", []):
        name, _, value = line.partition(":")
        out.append((name, value))
    return out


def _status(query):
    code = int(query.get("status", ["200"])[0])
    return "%d %s" % (code, http.HTTPStatus(code).phrase)


def app(environ, start_response):
    """Answers as routes does, with no body for HEAD, nor for a status
    that has none (1xx, 204, 304): a WSGI app must send none. gunicorn 20
    and waitress 2 write what they get on the kept-alive connection, and
    Caddy's next request on that connection reads those bytes as its
    answer: a 502 now and then (benoitc/gunicorn#2598)."""
    sent = []

    def start(status, headers, exc_info=None):
        sent.append(int(status.split(" ", 1)[0]))
        return start_response(status, headers, exc_info)

    body = routes(environ, start)
    bodiless = sent and (sent[-1] < 200 or sent[-1] in (204, 304))
    if environ.get("REQUEST_METHOD") != "HEAD" and not bodiless:
        return body
    if hasattr(body, "close"):
        body.close()
    return []


def routes(environ, start_response):
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = environ.get("PATH_INFO", "")
    json_type = ("Content-Type", "application/json")

    if path == "/healthz":
        start_response("200 OK", [json_type])
        return [json.dumps({"server": environ.get("SERVER_SOFTWARE", "")}).encode()]

    if path == "/emit":
        body = json.dumps(seen(environ)).encode()
        start_response(_status(query), [json_type] + _headers(query))
        return [body]

    if path == "/stream":
        environ["wsgi.input"].read()
        gate = query["gate"][0]
        start_response("200 OK", [("Content-Type", "text/plain")] + _headers(query))

        def chunks():
            yield b"first\n"
            _wait(gate)
            yield b"last\n"

        return chunks()

    if path == "/hold":
        body = json.dumps(seen(environ)).encode()
        with open(query["pipe"][0], "rb") as pipe:
            pipe.read()
        start_response(_status(query), [json_type] + _headers(query))
        return [body]

    if path == "/release":
        waiting = _release(query["gate"][0])
        start_response("200 OK", [json_type])
        return [json.dumps({"waiting": waiting}).encode()]

    if path == "/close":
        body = json.dumps(seen(environ)).encode()
        start_response("200 OK", [json_type, ("Connection", "close")] + _headers(query))
        # Two chunks and no Content-Length: the body ends when the
        # response does, however the server frames it.
        return iter([body[:1], body[1:]])

    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such route\n"]
