// Runtime tests of opencode-cloudflare's WorkersHost inside workerd (Miniflare), through the
// host-probe Worker. Run with scripts/cloudflare/test-host, which builds the probe first.
//
// What they prove: streamed bodies leave chunk by chunk (out of the Worker, through Host::fetch
// and through a service binding) and whole ones with their length (so a sibling's answer
// arrives whole), fetched bodies arrive byte for byte whether read whole or streamed, a fetched
// body dropped early is cancelled upstream, KV maps store names to bindings and honours the TTL
// floor, vars and secrets resolve (empty means unset), timers, randomness
// and wait_until work, and responses the runtime would refuse become a 500 instead of a crash;
// Host::sql round-trips every value type through D1 and through a counters Durable Object (the
// probe hosts the class as admin does), reports a bad statement as an error, and single-statement
// guarded UPSERTs against one scope's object are exact under concurrency.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import path from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Miniflare, Log, LogLevel } from "miniflare";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const PROBE = process.env.PROBE_BUILD_DIR ?? path.join(ROOT, "target/cf-host-probe/build");
const GAP_MS = 250;

let mf;
let base;
let upstream;
let upstreamUrl;
let endlessClosed = null;
/** The `x-probe` headers the redirect target received: none, when redirects are not followed. */
const redirectTargetSaw = [];

class StderrLog extends Log {
  log(message) {
    process.stderr.write(`${message}\n`);
  }
}

before(async () => {
  assert.ok(existsSync(path.join(PROBE, "index.js")), `build the probe first: ${PROBE}`);
  // An upstream that echoes what it received in headers, then streams 4 events GAP_MS apart;
  // /bytes?n=N answers N bytes of every value with their length; /endless streams an event
  // every 20 ms for 10 s and records whether the client went away before that (endlessClosed).
  upstream = http.createServer((req, res) => {
    const bytes = req.url.match(/^\/bytes\?n=(\d+)$/);
    if (bytes) {
      const body = Buffer.from(Array.from({ length: Number(bytes[1]) }, (_, i) => (i * 7) % 256));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length });
      res.end(body);
      return;
    }
    if (req.url === "/moved") {
      res.writeHead(302, { location: "/elsewhere", "content-type": "text/plain" });
      res.end("moved");
      return;
    }
    if (req.url === "/elsewhere") {
      redirectTargetSaw.push(req.headers["x-probe"] ?? "");
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("followed");
      return;
    }
    if (req.url === "/endless") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      let sent = 0;
      const timer = setInterval(() => res.write(`data: ${sent++}\n\n`), 20);
      const done = setTimeout(() => { clearInterval(timer); res.end(); }, 10_000);
      res.on("close", () => {
        clearInterval(timer);
        clearTimeout(done);
        endlessClosed = sent < 400;
      });
      return;
    }
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "x-seen-method": req.method,
        "x-seen-probe": req.headers["x-probe"] ?? "",
        "x-seen-body": body,
      });
      let i = 0;
      const timer = setInterval(() => {
        res.write(`data: up ${i}\n\n`);
        if (++i === 4) {
          clearInterval(timer);
          res.end();
        }
      }, GAP_MS);
    });
  });
  await new Promise((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  upstreamUrl = `http://127.0.0.1:${upstream.address().port}/sse`;

  mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new StderrLog(LogLevel.WARN),
    workers: [
      {
        name: "probe",
        modules: true,
        scriptPath: path.join(PROBE, "index.js"),
        modulesRoot: PROBE,
        modulesRules: [
          { type: "ESModule", include: ["**/*.js"] },
          { type: "CompiledWasm", include: ["**/*.wasm"] },
        ],
        compatibilityDate: "2026-04-20",
        bindings: { OPENAI_BASE_URL: "http://127.0.0.1:9/v1", PROBE_SECRET: "s3cret", EMPTY: "" },
        // The probe is its own sibling: call_function("self-probe") → binding SELF_PROBE.
        serviceBindings: { SELF_PROBE: "probe" },
        kvNamespaces: { CACHE: "cache", DATA: "data" },
        d1Databases: { DB: "probe-db" },
        // The probe exports the Counters class itself (counters_object!), as admin's Worker does.
        durableObjects: { COUNTERS: { className: "Counters", useSQLite: true } },
      },
    ],
  });
  base = await mf.ready;
});

after(async () => {
  await mf?.dispose();
  upstream?.close();
});

// Fetches a path and records when each chunk arrived, relative to the first one.
async function chunked(pathAndQuery) {
  const response = await fetch(new URL(pathAndQuery, base), { headers: { "accept-encoding": "identity" } });
  const chunks = [];
  if (response.body) {
    const decoder = new TextDecoder();
    let first;
    for await (const value of response.body) {
      const now = performance.now();
      first ??= now;
      chunks.push({ at: now - first, text: decoder.decode(value) });
    }
  }
  return { response, chunks, text: chunks.map((c) => c.text).join("") };
}

function assertStreamed(chunks, count) {
  const events = chunks.filter((c) => c.text.includes("data:"));
  assert.equal(events.length, count, `expected ${count} separate chunks, got ${JSON.stringify(chunks)}`);
  const last = events.at(-1).at;
  assert.ok(last >= (count - 1) * GAP_MS * 0.8, `chunks were not spread out in time: ${JSON.stringify(chunks)}`);
}

test("a streamed body leaves the Worker chunk by chunk", async () => {
  const { response, chunks } = await chunked(`/stream?n=4&ms=${GAP_MS}`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  assertStreamed(chunks, 4);
});

test("Host::fetch sends method, headers and body, and streams the response", async () => {
  const { response, chunks, text } = await chunked(`/proxy?url=${encodeURIComponent(upstreamUrl)}`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-seen-method"), "POST");
  assert.equal(response.headers.get("x-seen-probe"), "1");
  assert.equal(response.headers.get("x-seen-body"), '{"hello":1}');
  assert.match(text, /data: up 3/);
  assertStreamed(chunks, 4);
});

test("Host::fetch hands over bodies byte for byte, read whole when small, streamed when large", async () => {
  const origin = new URL(upstreamUrl).origin;
  // 64 KiB is where the adapter stops reading a declared-length body whole.
  for (const n of [0, 1000, 65536, 65537, 300000]) {
    const response = await fetch(new URL(`/proxy?url=${encodeURIComponent(`${origin}/bytes?n=${n}`)}`, base));
    assert.equal(response.status, 200);
    const body = Buffer.from(await response.arrayBuffer());
    assert.equal(body.length, n, `length for n=${n}`);
    const expected = Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) % 256));
    assert.ok(body.equals(expected), `bytes differ for n=${n}`);
  }
});

test("a fetched body dropped before its end is cancelled upstream", async () => {
  const origin = new URL(upstreamUrl).origin;
  const { response, text } = await chunked(`/peek?url=${encodeURIComponent(`${origin}/endless`)}`);
  assert.equal(response.status, 200);
  assert.match(text, /^data: 0/);
  // The probe answers 300 ms after dropping the body, still inside its request.
  assert.equal(endlessClosed, true, "the upstream kept streaming to a reader that was gone");
});

test("Host::fetch answers a redirect as it is and never follows it with the request's headers", async () => {
  const origin = new URL(upstreamUrl).origin;
  // `manual` here too, so that this test's own client does not follow the probe's answer.
  const url = new URL(`/proxy?url=${encodeURIComponent(`${origin}/moved`)}`, base);
  const response = await fetch(url, { redirect: "manual" });
  assert.equal(response.status, 302);
  assert.equal(await response.text(), "moved");
  assert.deepEqual(redirectTargetSaw, [], "the redirect target was called");
});

test("Host::fetch reports a refused connection and a relative URL as errors", async () => {
  const refused = await chunked(`/proxy?url=${encodeURIComponent("http://127.0.0.1:9/x")}`);
  assert.equal(refused.response.status, 502);
  assert.match(refused.text, /^fetch error: connection failed/);
  const relative = await chunked("/proxy?url=relative");
  assert.equal(relative.response.status, 502);
  assert.match(relative.text, /not absolute/);
});

test("call_function goes through the upper-case service binding and streams", async () => {
  const target = encodeURIComponent(`/stream?n=3&ms=${GAP_MS}`);
  const { response, chunks } = await chunked(`/call?fn=self-probe&path=${target}`);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-probe-body"), "stream");
  assertStreamed(chunks, 3);
  const missing = await chunked("/call?fn=nope");
  assert.equal(missing.response.status, 502);
  assert.equal(missing.text, "call error: no such service: nope");
});

test("a whole body leaves with its length, so a sibling's answer arrives whole", async () => {
  const direct = await chunked("/status?s=418");
  assert.equal(direct.response.headers.get("content-length"), "4");
  const called = await chunked(`/call?fn=self-probe&path=${encodeURIComponent("/status?s=418")}`);
  assert.equal(called.response.status, 418);
  assert.equal(called.response.headers.get("x-probe-body"), "full");
  assert.equal(called.response.headers.get("content-length"), "4");
  assert.equal(called.text, "body");
});

test("KV: store names map to bindings, short TTLs are dropped, stores are apart, delete works", async () => {
  const { response, text } = await chunked("/kv");
  assert.equal(response.status, 200);
  const expected = [
    "put a: Ok(())",
    "put b ttl 5: Ok(())", // Workers KV refuses TTLs under 60 s: the hint is not passed on
    "put data c: Ok(())",
    "get a: Ok(Some([111, 110, 101]))",
    "get missing: Ok(None)",
    "get data c: Ok(Some([116, 104, 114, 101, 101]))",
    "get c from cache: Ok(None)",
    "delete a: Ok(())",
    "delete missing: Ok(())",
    "get a after delete: Ok(None)",
    'no such store: Err(Kv("no KV namespace bound as NOSTORE"))',
    'empty key: Err(Kv("Key name cannot be empty."))',
  ];
  assert.deepEqual(text.split("\n"), expected);
});

test("spawn_background runs after the response through wait_until", async () => {
  const { text } = await chunked("/bg");
  assert.equal(text, "scheduled");
  await new Promise((resolve) => setTimeout(resolve, 600));
  const check = await chunked("/bgcheck");
  assert.equal(check.text, "Ok(Some([100, 111, 110, 101]))");
});

test("vars, secrets, clock, sleep and randomness", async () => {
  const { text } = await chunked("/misc");
  const lines = Object.fromEntries(text.split("\n").map((line) => line.split(/: (.*)/s).slice(0, 2)));
  assert.match(lines.random, /^[0-9a-f]{32}$/);
  assert.ok(Number(lines["zeros in 100000 random bytes"]) < 1000, "random bytes look unfilled");
  assert.ok(Math.abs(Number(lines.now) - Date.now()) < 60_000, "clock is off");
  assert.ok(Number(lines.slept) >= 45, `sleep(50) took ${lines.slept} ms`);
  assert.equal(lines["var OPENAI_BASE_URL"], 'Some("http://127.0.0.1:9/v1")');
  assert.equal(lines["var PROBE_SECRET"], 'Some("s3cret")');
  assert.equal(lines["var EMPTY"], "None");
  assert.equal(lines["var MISSING"], "None");
});

test("null-body statuses drop the body; a status the runtime refuses becomes a 500", async () => {
  for (const status of [204, 304]) {
    const { response, text } = await chunked(`/status?s=${status}`);
    assert.equal(response.status, status);
    assert.equal(text, "");
  }
  const refused = await chunked("/status?s=999");
  assert.equal(refused.response.status, 500);
  assert.match(refused.text, /"code":"internal_error"/);
  const fine = await chunked("/status?s=418");
  assert.equal(fine.response.status, 418);
  assert.equal(fine.text, "body");
});

// What the probe's /sql/types prints, per database: the values bound and read back, the
// storage classes they were stored as, and D1's and SQLite's numbers read back as numbers.
const TYPES = [
  'Ok([[Null, Integer(-42), Integer(1767225600000), Integer(9007199254740991), Real(1.5), Real(-0.001), Text("héllo ✓ \'q\' \\"dq\\" 😀"), Text(""), Blob([0, 1, 127, 128, 255])]])',
  "Ok([])",
  'Ok([[Null, Integer(-42), Integer(1767225600000), Integer(9007199254740991), Real(1.5), Real(-0.001), Text("héllo ✓ \'q\' \\"dq\\" 😀"), Text(""), Blob([0, 1, 127, 128, 255])]])',
  'Ok([[Text("null"), Text("integer"), Text("integer"), Text("integer"), Text("real"), Text("real"), Text("text"), Text("text"), Text("blob")]])',
  // A whole REAL arrives as a JS number like any integer: Integer(2) (Value::as_f64 reads it).
  'Ok([[Integer(2), Real(0.30000000000000004), Text("xy"), Integer(300)]])',
  "Ok([])",
];

for (const db of ["main", "counters:types"]) {
  test(`Host::sql round-trips every value type (${db === "main" ? "D1" : "Durable Object"})`, async () => {
    const { response, text } = await chunked(`/sql/types?db=${encodeURIComponent(db)}`);
    assert.equal(response.status, 200);
    assert.deepEqual(text.split("\n"), TYPES);
  });

  test(`Host::sql reports a bad statement as an error and goes on (${db === "main" ? "D1" : "Durable Object"})`, async () => {
    const { response, text } = await chunked(`/sql/bad?db=${encodeURIComponent(db)}`);
    assert.equal(response.status, 200);
    const [syntax, table, constraint, after] = text.split("\n");
    assert.match(syntax, /^Err\(Sql\(".*syntax error/);
    assert.match(table, /^Err\(Sql\(".*no such table: no_such_table/);
    // D1 has no counters table; the object has it, and refuses the row its NOT NULLs lack.
    assert.match(constraint, db === "main" ? /^Err\(Sql\(".*no such table: counters/ : /^Err\(Sql\(".*NOT NULL constraint failed/);
    assert.equal(after, "Ok([[Integer(1)]])");
  });
}

test("a counters object creates its table when it starts", async () => {
  const { text } = await chunked(`/sql/read?db=${encodeURIComponent("counters:fresh")}`);
  assert.equal(text, "Ok([])");
});

test("30 concurrent guarded UPSERTs against one scope's object admit exactly 10", async () => {
  const db = encodeURIComponent(`key:exact-${Date.now()}`);
  const answers = await Promise.all(Array.from({ length: 30 }, () => chunked(`/sql/upsert?db=${db}`)));
  const texts = answers.map((a) => a.text);
  for (const a of answers) assert.equal(a.response.status, 200);
  const admitted = texts.filter((t) => t !== "Ok([])");
  assert.equal(admitted.length, 10, JSON.stringify(texts));
  assert.deepEqual(admitted.sort(), Array.from({ length: 10 }, (_, i) => `Ok([[Integer(${i + 1})]])`).sort());
  assert.equal((await chunked(`/sql/read?db=${db}`)).text, "Ok([[Integer(10)]])");
  // Another scope is another object, with its own row.
  assert.equal((await chunked(`/sql/read?db=${encodeURIComponent("key:other")}`)).text, "Ok([])");
});
