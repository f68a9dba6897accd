'use strict';
// The Express app that integration_test/appserver_express_test.go serves
// with Node behind Caddy with the session handler: node app.js <port>.
//
// It reports what it saw in Node's own representations of the request
// (req.headers, req.rawHeaders, req.trailers, req.rawTrailers), and emits
// the session commands the test asks for in the forms Express and Node
// offer: res.set, res.append, res.setHeader with an array, res.set with
// an object, res.writeEarlyHints, res.addTrailers. It never cleans up a
// name or a value: Node's own handling of them is what the tests look at.
//
// Routes (every value of h, e and t is "Name:value", repeatable, in order):
//
//   /healthz                       {"server": "express/<v> node/<v>"}
//   /emit?via=set&h=...&status=303 the headers of h, by via (see emit); the
//                                  body is what the app saw (see seen)
//   /early-hints?e=...&h=...       a 103 with a Link and the headers of e,
//                                  then /emit's answer with h
//   /trailers?announce=N&t=...&h=... the headers of h, Trailer: N if given,
//                                  a chunked body, then the trailers of t
//   /stream?gate=g&h=...           the headers of h and a first chunk, then
//                                  waits until /release?gate=g (at most a
//                                  minute), then the last chunk
//   /release?gate=g                opens the gate g: {"waiting": the streams
//                                  that were waiting for it}
//   /hold?pipe=p&h=...             reads the named pipe p to its end before
//                                  it answers anything, then answers as
//                                  /emit: a request the test holds inside
//                                  the app, its header not yet written
//   /hold-body?pipe=p&h=...&first=f the headers of h and a Content-Length,
//                                  sent at once (res.flushHeaders) with f,
//                                  if given, then, once the named pipe p
//                                  is read to its end, the rest of the
//                                  body: /emit's report
//   /close?h=...                   the headers of h, Connection: close and
//                                  no Transfer-Encoding: the body ends when
//                                  the connection does, as in HTTP/1.0

const express = require('express');
const fs = require('fs');

const port = Number(process.argv[2]);
const server = `express/${require('express/package.json').version} node/${process.versions.node}`;

// How long a stream waits for its release: a test that failed before
// releasing it must not keep a response open for ever.
const gateTimeout = 60 * 1000;
const gates = new Map(); // name -> {opened, open, waiting}

function gate(name) {
  if (!gates.has(name)) {
    let open;
    const opened = new Promise((resolve) => { open = resolve; });
    gates.set(name, { opened, open, waiting: 0 });
  }
  return gates.get(name);
}

// lines returns the "Name:value" parameters of the query as [name, value].
function lines(req, param) {
  const query = new URL(req.url, 'http://app').searchParams;
  return query.getAll(param).map((line) => {
    const i = line.indexOf(':');
    return [line.slice(0, i), line.slice(i + 1)];
  });
}

function query(req, param) {
  return new URL(req.url, 'http://app').searchParams.get(param);
}

// seen is what the app saw, in each of Node's representations.
function seen(req) {
  return {
    server,
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    trailers: req.trailers,
    rawTrailers: req.rawTrailers,
  };
}

// emit sets the headers in the form via names:
//   set        res.set(name, value) for each: a later one of the same name
//              replaces the earlier
//   append     res.append(name, value) for each: every one is sent
//   setHeader  res.setHeader(name, [values...]) once per name: an array of
//              two or more sends one line for each
//   object     res.set({name: value, ...}): a later one replaces the earlier
function emit(res, via, headers) {
  switch (via || 'set') {
    case 'set':
      for (const [name, value] of headers) res.set(name, value);
      break;
    case 'append':
      for (const [name, value] of headers) res.append(name, value);
      break;
    case 'setHeader': {
      const byName = new Map();
      for (const [name, value] of headers) {
        byName.set(name, [...(byName.get(name) || []), value]);
      }
      for (const [name, values] of byName) {
        res.setHeader(name, values.length === 1 ? values[0] : values);
      }
      break;
    }
    case 'object':
      res.set(Object.fromEntries(headers));
      break;
    default:
      throw new Error(`unknown via ${via}`);
  }
}

const app = express();
app.disable('etag'); // an ETag of the body would answer a repeated request 304

// Every request's body is read to its end before the route runs: Node
// fills in req.trailers only then.
app.use((req, res, next) => {
  req.on('end', () => next());
  req.resume();
});

app.get('/healthz', (req, res) => res.json({ server }));

function answer(req, res) {
  emit(res, query(req, 'via'), lines(req, 'h'));
  res.status(Number(query(req, 'status') || 200)).json(seen(req));
}

app.all('/emit', answer);

app.all('/early-hints', (req, res) => {
  res.writeEarlyHints({
    link: '</app.css>; rel=preload; as=style',
    ...Object.fromEntries(lines(req, 'e')),
  });
  answer(req, res);
});

app.all('/trailers', (req, res) => {
  emit(res, 'set', lines(req, 'h'));
  const announce = query(req, 'announce');
  if (announce) res.set('Trailer', announce);
  res.type('json');
  res.write(JSON.stringify(seen(req)));
  res.addTrailers(Object.fromEntries(lines(req, 't')));
  res.end();
});

app.all('/stream', (req, res) => {
  const g = gate(query(req, 'gate'));
  emit(res, 'set', lines(req, 'h'));
  res.type('text');
  res.write('first\n');
  g.waiting++;
  const timer = setTimeout(g.open, gateTimeout);
  g.opened.then(() => {
    g.waiting--;
    clearTimeout(timer);
    res.end('last\n');
  });
});

app.all('/hold', (req, res) => {
  // Read without blocking the event loop: the requests the test sends
  // meanwhile reach this same process.
  const pipe = fs.createReadStream(query(req, 'pipe'));
  pipe.on('error', (err) => res.status(500).type('text').send(String(err)));
  pipe.on('end', () => answer(req, res));
  pipe.resume();
});

app.all('/hold-body', (req, res) => {
  emit(res, 'set', lines(req, 'h'));
  res.type('json');
  const first = query(req, 'first') || '';
  const body = JSON.stringify(seen(req));
  res.set('Content-Length', String(Buffer.byteLength(first + body)));
  res.flushHeaders();
  if (first) res.write(first);
  const pipe = fs.createReadStream(query(req, 'pipe'));
  pipe.on('error', () => res.destroy());
  pipe.on('end', () => res.end(body));
  pipe.resume();
});

app.all('/release', (req, res) => {
  const g = gate(query(req, 'gate'));
  g.open();
  res.json({ waiting: g.waiting });
});

app.all('/close', (req, res) => {
  emit(res, 'set', lines(req, 'h'));
  res.set('Connection', 'close');
  res.removeHeader('Transfer-Encoding');
  res.type('json');
  const body = JSON.stringify(seen(req));
  res.write(body.slice(0, 1));
  res.end(body.slice(1));
});

const listener = app.listen(port, '127.0.0.1');
// Idle connections stay open longer than Caddy keeps its idle upstream
// connections (2 minutes), as behind any proxy: with Node's default of 5
// seconds, Node may close one just as Caddy sends a request on it.
listener.keepAliveTimeout = 5 * 60 * 1000;
